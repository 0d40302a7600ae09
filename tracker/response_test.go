package tracker

import (
	"reflect"
	"strings"
	"testing"
)

// decodeDict is the one entry from a tracker's bytes into bencode; the
// bencode package bounds the input, decodeDict adds what trackers need.
func TestDecodeDict(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    map[string]any
		wantErr string
	}{
		{name: "reads integers, strings, lists and dictionaries", in: "d1:ali1ei-42ee1:bd1:c0:e1:d4:spame",
			want: map[string]any{"a": []any{int64(1), int64(-42)}, "b": map[string]any{"c": ""}, "d": "spam"}},
		{name: "allows a trailing newline", in: "d1:ai1ee\n", want: map[string]any{"a": int64(1)}},
		{name: "allows trailing spaces and CRLF", in: "d1:ai1ee \r\n", want: map[string]any{"a": int64(1)}},
		{name: "rejects trailing data", in: "d1:ai1eei2e", wantErr: "trailing data"},
		{name: "rejects whitespace before the reply", in: " d1:ai1ee", wantErr: "unexpected byte"},
		{name: "rejects a reply that is not a dictionary", in: "i1e", wantErr: "want a dictionary"},
		{name: "rejects a string longer than the input", in: "d1:a99999999999:xe", wantErr: "runs past the end"},
		{name: "rejects a negative string length", in: "d1:a-1:xe", wantErr: "unexpected byte"},
		{name: "rejects an integer that overflows", in: "d1:ai99999999999999999999ee", wantErr: "out of range"},
		{name: "rejects an empty integer", in: "d1:aiee", wantErr: "bad integer"},
		{name: "rejects a plus sign", in: "d1:ai+1ee", wantErr: "bad integer"},
		{name: "rejects an unterminated list", in: "d1:ali1e", wantErr: "unterminated list"},
		{name: "rejects an unterminated dictionary", in: "d1:ai1e", wantErr: "unterminated dictionary"},
		{name: "rejects an integer dictionary key", in: "di1ei2ee", wantErr: "key is not a string"},
		{name: "rejects a duplicate key", in: "d1:ai1e1:ai2ee", wantErr: "duplicate dictionary key"},
		{name: "rejects deep nesting", in: "d1:a" + strings.Repeat("l", 1000) + strings.Repeat("e", 1001), wantErr: "nested deeper"},
		{name: "rejects empty input", in: "", wantErr: "unexpected end"},
		{name: "rejects a stray byte", in: "x", wantErr: "unexpected byte"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeDict([]byte(tt.in))
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

func TestServerRepliesSortKeysBytewiseAndDecode(t *testing.T) {
	// Scrape keys are raw info hashes: bytes above 0x7f sort after ASCII.
	reply := scrapeReply{Files: map[string]scrapeFile{
		"\xff" + strings.Repeat("b", 19): {Complete: 1},
		strings.Repeat("a", 20):          {Downloaded: 2},
	}}
	got := string(encodeReply(reply))
	want := "d5:filesd20:" + strings.Repeat("a", 20) + "d8:completei0e10:downloadedi2e10:incompletei0ee" +
		"20:\xff" + strings.Repeat("b", 19) + "d8:completei1e10:downloadedi0e10:incompletei0eeee"
	if got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if _, err := decodeDict([]byte(got)); err != nil {
		t.Fatal(err)
	}
	if got, want := string(failureBody("no")), "d14:failure reason2:noe"; got != want {
		t.Fatalf("failure body %q, want %q", got, want)
	}
}
