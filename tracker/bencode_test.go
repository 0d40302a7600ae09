package tracker

import (
	"reflect"
	"strings"
	"testing"
)

func TestDecodeBencode(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    any
		wantErr string
	}{
		{name: "reads an integer", in: "i-42e", want: int64(-42)},
		{name: "reads a string", in: "4:spam", want: "spam"},
		{name: "reads nested lists and dictionaries", in: "d1:ali1ei2ee1:bd1:c0:ee",
			want: map[string]any{"a": []any{int64(1), int64(2)}, "b": map[string]any{"c": ""}}},
		{name: "allows a trailing newline", in: "i1e\n", want: int64(1)},
		{name: "rejects trailing data", in: "i1ei2e", wantErr: "trailing data"},
		{name: "rejects a string longer than the input", in: "99999999999:x", wantErr: "exceeds"},
		{name: "rejects a negative string length", in: "-1:x", wantErr: "unexpected byte"},
		{name: "rejects an integer that overflows", in: "i99999999999999999999e", wantErr: "bad integer"},
		{name: "rejects an empty integer", in: "ie", wantErr: "empty integer"},
		{name: "rejects a plus sign", in: "i+1e", wantErr: "bad integer"},
		{name: "rejects an unterminated list", in: "li1e", wantErr: "unterminated list"},
		{name: "rejects an unterminated dictionary", in: "d1:ai1e", wantErr: "unterminated dictionary"},
		{name: "rejects an integer dictionary key", in: "di1ei2ee", wantErr: "key is not a string"},
		{name: "rejects deep nesting", in: strings.Repeat("l", 1000) + strings.Repeat("e", 1000), wantErr: "nested too deeply"},
		{name: "rejects empty input", in: "", wantErr: "unexpected end"},
		{name: "rejects a stray byte", in: "x", wantErr: "unexpected byte"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeBencode([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestAppendBencodeSortsKeysAndRoundTrips(t *testing.T) {
	v := map[string]any{"b": 1, "a": []any{"x", int64(-3)}, "c": []byte{0, 1}}
	got := string(appendBencode(nil, v))
	want := "d1:al1:xi-3ee1:bi1e1:c2:\x00\x01e"
	if got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if _, err := decodeBencode([]byte(got)); err != nil {
		t.Fatal(err)
	}
}
