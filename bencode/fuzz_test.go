package bencode

import (
	"bytes"
	"testing"
)

// FuzzDecode: whatever the input, Decode returns a value or an error, never
// panics; what it accepts re-encodes to a value that decodes the same.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{"i1e", "4:spam", "le", "de", "d1:ali1ei2ee1:b0:e", "d1:ad1:bl1:cee", "i-0e", "i00e"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := Decode(data)
		if err != nil {
			return
		}
		enc, err := Marshal(v)
		if err != nil {
			t.Fatalf("re-encode %#v: %v", v, err)
		}
		v2, err := Decode(enc)
		if err != nil {
			t.Fatalf("re-encoded %q does not decode: %v", enc, err)
		}
		enc2, _ := Marshal(v2)
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("not stable: %q then %q", enc, enc2)
		}
		var s sample
		_ = Unmarshal(data, &s) // must not panic
		raw, ok, err := Field(data, "name")
		if err == nil && ok && !bytes.Contains(data, raw) {
			t.Fatal("a field's raw bytes are not part of the input")
		}
	})
}
