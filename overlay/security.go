package overlay

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"
)

// The swarm-key envelope: {"ts":<unix ms>,"mac":"<hex>","body":<message>}.
// The MAC covers a domain label, the timestamp and the body bytes exactly as
// sent, so no canonical JSON form is needed; the timestamp bounds replays.

const macLabel = "btclient-overlay-v1\n"

type envelope struct {
	TS   int64           `json:"ts"`
	MAC  string          `json:"mac"`
	Body json.RawMessage `json:"body"`
}

func mac(key []byte, ts int64, body []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(macLabel))
	h.Write([]byte(strconv.FormatInt(ts, 10)))
	h.Write([]byte{'\n'})
	h.Write(body)
	return h.Sum(nil)
}

// seal wraps a JSON body in an authenticated envelope stamped nowMS.
func seal(key, body []byte, nowMS int64) []byte {
	sum := mac(key, nowMS, body)
	out := make([]byte, 0, len(body)+120)
	out = append(out, `{"ts":`...)
	out = strconv.AppendInt(out, nowMS, 10)
	out = append(out, `,"mac":"`...)
	out = hex.AppendEncode(out, sum)
	out = append(out, `","body":`...)
	out = append(out, body...)
	return append(out, '}')
}

// open checks an envelope's MAC and age and returns its body.
func open(key, line []byte, nowMS, maxAgeMS int64) ([]byte, error) {
	var env envelope
	if err := json.Unmarshal(line, &env); err != nil {
		return nil, errUnauthenticated
	}
	got, err := hex.DecodeString(env.MAC)
	if err != nil || len(env.Body) == 0 {
		return nil, errUnauthenticated
	}
	if !hmac.Equal(got, mac(key, env.TS, env.Body)) {
		return nil, errUnauthenticated
	}
	if d := nowMS - env.TS; d > maxAgeMS || d < -maxAgeMS {
		return nil, errors.New("authenticated message too old or from the future")
	}
	return env.Body, nil
}
