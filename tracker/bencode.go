package tracker

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
)

// This file holds the small bencode codec the tracker needs. Decoding works on
// a byte slice already bounded by the caller, checks every length against the
// bytes that remain and limits nesting, so hostile input cannot make it
// allocate more than it was given or recurse without bound.
//
// Decoded values are int64, string, []any and map[string]any.

// maxBencodeDepth bounds list/dictionary nesting; tracker replies nest three
// levels at most.
const maxBencodeDepth = 32

var errBencodeDepth = errors.New("bencode: nested too deeply")

// decodeBencode decodes exactly one value that fills data, allowing only
// trailing whitespace (some trackers end their reply with a newline).
func decodeBencode(data []byte) (any, error) {
	d := decoder{data: data}
	v, err := d.value(0)
	if err != nil {
		return nil, err
	}
	if rest := bytes.TrimSpace(data[d.pos:]); len(rest) > 0 {
		return nil, fmt.Errorf("bencode: %d bytes of trailing data at offset %d", len(rest), d.pos)
	}
	return v, nil
}

type decoder struct {
	data []byte
	pos  int
}

func (d *decoder) errorf(format string, a ...any) error {
	return fmt.Errorf("bencode: offset %d: %s", d.pos, fmt.Sprintf(format, a...))
}

func (d *decoder) value(depth int) (any, error) {
	if depth > maxBencodeDepth {
		return nil, errBencodeDepth
	}
	if d.pos >= len(d.data) {
		return nil, d.errorf("unexpected end of data")
	}
	switch c := d.data[d.pos]; {
	case c == 'i':
		d.pos++
		return d.integer('e')
	case c >= '0' && c <= '9':
		return d.str()
	case c == 'l':
		d.pos++
		var list []any
		for {
			if d.pos >= len(d.data) {
				return nil, d.errorf("unterminated list")
			}
			if d.data[d.pos] == 'e' {
				d.pos++
				return list, nil
			}
			v, err := d.value(depth + 1)
			if err != nil {
				return nil, err
			}
			list = append(list, v)
		}
	case c == 'd':
		d.pos++
		dict := make(map[string]any)
		for {
			if d.pos >= len(d.data) {
				return nil, d.errorf("unterminated dictionary")
			}
			if d.data[d.pos] == 'e' {
				d.pos++
				return dict, nil
			}
			if c := d.data[d.pos]; c < '0' || c > '9' {
				return nil, d.errorf("dictionary key is not a string")
			}
			k, err := d.str()
			if err != nil {
				return nil, err
			}
			v, err := d.value(depth + 1)
			if err != nil {
				return nil, err
			}
			dict[k] = v
		}
	default:
		return nil, d.errorf("unexpected byte %q", c)
	}
}

// integer reads decimal digits (with an optional minus sign) up to end.
func (d *decoder) integer(end byte) (int64, error) {
	i := bytes.IndexByte(d.data[d.pos:], end)
	if i < 0 {
		return 0, d.errorf("unterminated integer")
	}
	digits := d.data[d.pos : d.pos+i]
	if len(digits) == 0 {
		return 0, d.errorf("empty integer")
	}
	for j, c := range digits {
		if (c < '0' || c > '9') && (c != '-' || j != 0) {
			return 0, d.errorf("bad integer %q", digits)
		}
	}
	n, err := strconv.ParseInt(string(digits), 10, 64)
	if err != nil {
		return 0, d.errorf("bad integer %q", digits)
	}
	d.pos += i + 1
	return n, nil
}

func (d *decoder) str() (string, error) {
	n, err := d.integer(':')
	if err != nil {
		return "", err
	}
	if n < 0 || n > int64(len(d.data)-d.pos) {
		return "", d.errorf("string length %d exceeds the %d bytes left", n, len(d.data)-d.pos)
	}
	s := string(d.data[d.pos : d.pos+int(n)])
	d.pos += int(n)
	return s, nil
}

// appendBencode appends the encoding of v, which may be int, int64, string,
// []byte, []any or map[string]any (keys written in sorted order).
func appendBencode(b []byte, v any) []byte {
	switch v := v.(type) {
	case int:
		return appendBencodeInt(b, int64(v))
	case int64:
		return appendBencodeInt(b, v)
	case string:
		b = strconv.AppendInt(b, int64(len(v)), 10)
		b = append(b, ':')
		return append(b, v...)
	case []byte:
		b = strconv.AppendInt(b, int64(len(v)), 10)
		b = append(b, ':')
		return append(b, v...)
	case []any:
		b = append(b, 'l')
		for _, e := range v {
			b = appendBencode(b, e)
		}
		return append(b, 'e')
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, 'd')
		for _, k := range keys {
			b = appendBencode(b, k)
			b = appendBencode(b, v[k])
		}
		return append(b, 'e')
	default:
		// Only this package calls appendBencode, with the types above.
		panic(fmt.Sprintf("tracker: cannot bencode %T", v))
	}
}

func appendBencodeInt(b []byte, n int64) []byte {
	b = append(b, 'i')
	b = strconv.AppendInt(b, n, 10)
	return append(b, 'e')
}
