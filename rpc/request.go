package rpc

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// request is one RPC call: a method, its arguments and an optional tag the
// response echoes.
type request struct {
	Method string
	Args   args
	// Tag is echoed as it came when it is an integer, omitted otherwise.
	Tag *int64
}

// response is what every call answers: "success" or an error message in
// Result, with the method's arguments.
type response struct {
	Arguments any    `json:"arguments"`
	Result    string `json:"result"`
	Tag       *int64 `json:"tag,omitempty"`
}

// errNoMethod answers a body that is not a request object with a method.
var errNoMethod = errors.New("no method name")

// maxArgs bounds the keys of an arguments object and the entries of a list
// argument (ids, fields): far beyond what any client sends.
const maxArgs = 100_000

// decodeRequest parses a request body. A body that is not a JSON object
// with a string method is errNoMethod (Transmission's answer); arguments
// that are not an object are an error naming them.
func decodeRequest(body []byte) (request, error) {
	var raw struct {
		Method    *string         `json:"method"`
		Arguments json.RawMessage `json:"arguments"`
		Tag       json.RawMessage `json:"tag"`
	}
	if err := json.Unmarshal(body, &raw); err != nil || raw.Method == nil {
		return request{}, errNoMethod
	}
	req := request{Method: *raw.Method, Args: args{}}
	if len(raw.Tag) > 0 {
		if n, err := strconv.ParseInt(string(raw.Tag), 10, 64); err == nil {
			req.Tag = &n
		}
	}
	a, err := decodeArgs(raw.Arguments)
	if err != nil {
		return req, err
	}
	req.Args = a
	return req, nil
}

// args are a request's arguments, decoded on demand by the typed getters.
type args map[string]json.RawMessage

func decodeArgs(raw json.RawMessage) (args, error) {
	a := args{}
	if len(raw) == 0 || string(raw) == "null" {
		return a, nil
	}
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, errors.New("arguments must be an object")
	}
	if len(a) > maxArgs {
		return nil, errors.New("too many arguments")
	}
	return a, nil
}

// has reports whether the argument is present (and not null).
func (a args) has(key string) bool {
	v, ok := a[key]
	return ok && string(v) != "null"
}

// str returns a string argument; ok is false when it is absent.
func (a args) str(key string) (s string, ok bool, err error) {
	if !a.has(key) {
		return "", false, nil
	}
	if err := json.Unmarshal(a[key], &s); err != nil {
		return "", false, fmt.Errorf("argument %q must be a string", key)
	}
	return s, true, nil
}

// integer returns a whole-number argument (100 and 100.0 alike).
func (a args) integer(key string) (n int64, ok bool, err error) {
	if !a.has(key) {
		return 0, false, nil
	}
	bad := fmt.Errorf("argument %q must be a whole number", key)
	var num json.Number
	dec := json.NewDecoder(bytes.NewReader(a[key]))
	dec.UseNumber()
	if err := dec.Decode(&num); err != nil {
		return 0, false, bad
	}
	if n, err := num.Int64(); err == nil {
		return n, true, nil
	}
	f, err := num.Float64()
	if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, false, bad
	}
	return int64(f), true, nil
}

// boolean returns a boolean argument; like Transmission, 0 and 1 count.
func (a args) boolean(key string) (b bool, ok bool, err error) {
	if !a.has(key) {
		return false, false, nil
	}
	switch strings.TrimSpace(string(a[key])) {
	case "true", "1":
		return true, true, nil
	case "false", "0":
		return false, true, nil
	}
	return false, false, fmt.Errorf("argument %q must be a boolean", key)
}

// strings returns a list-of-strings argument.
func (a args) strings(key string) (list []string, ok bool, err error) {
	if !a.has(key) {
		return nil, false, nil
	}
	if err := json.Unmarshal(a[key], &list); err != nil {
		return nil, false, fmt.Errorf("argument %q must be a list of strings", key)
	}
	if len(list) > maxArgs {
		return nil, false, fmt.Errorf("argument %q is too long", key)
	}
	return list, true, nil
}

// idSelector is what a request's ids argument selects.
type idSelector struct {
	all            bool // no ids: every torrent
	recentlyActive bool // "recently-active"
	ids            []int
	hashes         [][20]byte
}

// ids decodes the ids argument: absent (every torrent), a number, a hash
// string, "recently-active", or a list of numbers and hash strings.
func (a args) ids() (idSelector, error) {
	if !a.has("ids") {
		return idSelector{all: true}, nil
	}
	raw := bytes.TrimSpace(a["ids"])
	bad := errors.New(`argument "ids" must be a torrent id, a hash string, "recently-active" or a list of ids and hash strings`)
	var sel idSelector
	add := func(v any) error {
		switch v := v.(type) {
		case json.Number:
			n, err := v.Int64()
			if err != nil || n < 0 || n > math.MaxInt32 {
				return bad
			}
			sel.ids = append(sel.ids, int(n))
		case string:
			if v == "recently-active" || v == "recently_active" {
				sel.recentlyActive = true
				return nil
			}
			ih, err := parseHash(v)
			if err != nil {
				return err
			}
			sel.hashes = append(sel.hashes, ih)
		default:
			return bad
		}
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return sel, bad
	}
	if list, ok := v.([]any); ok {
		if len(list) > maxArgs {
			return sel, errors.New(`argument "ids" is too long`)
		}
		for _, e := range list {
			if err := add(e); err != nil {
				return sel, err
			}
		}
		return sel, nil
	}
	return sel, add(v)
}

// parseHash reads a 40-character hex info hash.
func parseHash(s string) ([20]byte, error) {
	var ih [20]byte
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 20 {
		return ih, fmt.Errorf("%q is neither a torrent id nor a 40-character hash string", truncate(s, 64))
	}
	copy(ih[:], b)
	return ih, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
