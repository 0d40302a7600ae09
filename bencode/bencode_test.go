package bencode

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	deep := strings.Repeat("l", MaxDepth+2) + strings.Repeat("e", MaxDepth+2)
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"accepts an integer", "i-42e", true},
		{"accepts a string", "4:spam", true},
		{"accepts an empty string", "0:", true},
		{"accepts nested lists and dictionaries", "d1:ald1:bi1eee1:ci0ee", true},
		{"accepts keys in any order", "d1:bi1e1:ai2ee", true},
		{"rejects empty input", "", false},
		{"rejects trailing data", "i1ei2e", false},
		{"rejects an unterminated list", "l1:a", false},
		{"rejects an unterminated dictionary", "d1:ai1e", false},
		{"rejects a non-string key", "di1ei2ee", false},
		{"rejects a duplicate key", "d1:ai1e1:ai2ee", false},
		{"rejects a duplicate key out of order", "d1:bi1e1:ai1e1:bi2ee", false},
		{"rejects a string longer than the data", "10:abc", false},
		{"rejects a huge string length", "99999999999999999999999:a", false},
		{"rejects a negative string length", "-1:a", false},
		{"rejects an empty integer", "ie", false},
		{"rejects a bare minus", "i-e", false},
		{"rejects an integer beyond int64", "i9223372036854775808e", false},
		{"rejects an integer with junk", "i12x3e", false},
		{"rejects nesting beyond the bound", deep, false},
		{"rejects an unknown type byte", "x", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Check([]byte(tt.in))
			if tt.ok && err != nil {
				t.Fatalf("Check(%q) = %v, want nil", tt.in, err)
			}
			if !tt.ok {
				if err == nil {
					t.Fatalf("Check(%q) = nil, want an error", tt.in)
				}
				if !errors.Is(err, ErrSyntax) {
					t.Fatalf("Check(%q) = %v, not ErrSyntax", tt.in, err)
				}
			}
		})
	}
}

func TestScanStopsAtTheFirstValue(t *testing.T) {
	data := []byte("d8:msg_typei1e5:piecei0eeRAW BYTES")
	n, err := Scan(data)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(data[n:]); got != "RAW BYTES" {
		t.Fatalf("rest = %q", got)
	}
}

func TestField(t *testing.T) {
	data := []byte("d8:announce3:url4:infod4:name1:xe5:otheri1ee")
	raw, ok, err := Field(data, "info")
	if err != nil || !ok || string(raw) != "d4:name1:xe" {
		t.Fatalf("Field(info) = %q, %v, %v", raw, ok, err)
	}
	if _, ok, err := Field(data, "name"); ok || err != nil {
		t.Fatalf("a nested key is not a top-level field: ok %v err %v", ok, err)
	}
	if _, _, err := Field([]byte("l4:infoe"), "info"); err == nil {
		t.Fatal("a list has no fields")
	}
	if _, _, err := Field([]byte("d4:infoi1ee junk"), "info"); err == nil {
		t.Fatal("trailing data is rejected")
	}
}

func TestDecode(t *testing.T) {
	v, err := Decode([]byte("d1:ali1ei-2ee1:b3:xyze"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"a": []any{int64(1), int64(-2)}, "b": "xyz"}
	if !reflect.DeepEqual(v, want) {
		t.Fatalf("Decode = %#v, want %#v", v, want)
	}
}

type sample struct {
	Name  string         `bencode:"name"`
	Size  int64          `bencode:"size"`
	Tags  []string       `bencode:"tags,omitempty"`
	Extra map[string]int `bencode:"m,omitempty"`
}

func TestRoundTrip(t *testing.T) {
	in := sample{Name: "a b", Size: 1 << 40, Tags: []string{"x", ""}, Extra: map[string]int{"ut_pex": 1}}
	data, err := Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if want := "d1:md6:ut_pexi1ee4:name3:a b4:sizei1099511627776e4:tagsl1:x0:ee"; string(data) != want {
		t.Fatalf("Marshal = %s, want %s (keys sorted)", data, want)
	}
	var out sample
	if err := Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip: %#v != %#v", out, in)
	}
}

func TestUnmarshalRejectsAWrongTypeInsteadOfPanicking(t *testing.T) {
	var s sample
	err := Unmarshal([]byte("d4:namei7ee"), &s)
	if !errors.Is(err, ErrSyntax) {
		t.Fatalf("an integer for a string field: err = %v, want ErrSyntax", err)
	}
	if err := Unmarshal([]byte("d4:name1:xe"), s); err == nil {
		t.Fatal("a non-pointer is refused")
	}
}

func TestUnmarshalIgnoresUnknownKeys(t *testing.T) {
	var s sample
	if err := Unmarshal([]byte("d7:unknownld1:xi1eee4:name1:ne"), &s); err != nil {
		t.Fatal(err)
	}
	if s.Name != "n" {
		t.Fatalf("name = %q", s.Name)
	}
}

func TestUnmarshalPrefix(t *testing.T) {
	var m struct {
		Type  int64 `bencode:"msg_type"`
		Piece int64 `bencode:"piece"`
	}
	rest, err := UnmarshalPrefix([]byte("d8:msg_typei1e5:piecei3eeDATA"), &m)
	if err != nil {
		t.Fatal(err)
	}
	if m.Type != 1 || m.Piece != 3 || string(rest) != "DATA" {
		t.Fatalf("got %+v rest %q", m, rest)
	}
	if _, err := UnmarshalPrefix([]byte("d8:msg_typei1e"), &m); err == nil {
		t.Fatal("an unterminated dictionary is refused")
	}
}
