package index

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func FuzzWords(f *testing.F) {
	for _, s := range []string{"Canción de cuna", "日本語 ファイル", "a\x00b", "\xff\xfe", strings.Repeat("é", 100)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, w := range Words(s) {
			if len(w) < 2 || len(w) > MaxWordBytes || !utf8.ValidString(w) || strings.ContainsAny(w, " \x00/") {
				t.Fatalf("Words(%q) gave %q", s, w)
			}
		}
		n := CleanName(s)
		if len(n) > MaxNameBytes || !utf8.ValidString(n) || strings.ContainsAny(n, "/\\\n\r\x00") {
			t.Fatalf("CleanName(%q) = %q", s, n)
		}
	})
}

func FuzzMerge(f *testing.F) {
	f.Add("0123456789abcdef0123456789abcdef01234567", `{"n":"x","s":1,"f":1}`, "127.0.0.1:1")
	f.Add("zz", `{"n":1}`, "")
	f.Fuzz(func(t *testing.T, id, value, origin string) {
		rs := merge([][]Record{{{Origin: origin, ID: id, Value: []byte(value)}}}, 10)
		for _, r := range rs {
			if r.Providers != 1 || len(r.Name) > MaxNameBytes || r.Size < 0 {
				t.Fatalf("merge gave %+v", r)
			}
		}
	})
}
