package index

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Bounds of what is indexed and searched.
const (
	// MaxWordBytes is the longest word indexed; longer ones are dropped.
	MaxWordBytes = 64
	// MaxWordsPerEntry bounds the words one torrent is published under
	// (its name's first, then its files').
	MaxWordsPerEntry = 32
	// MaxQueryWords bounds the words of one search.
	MaxQueryWords = 8
	// MaxQueryBytes bounds the text of one search.
	MaxQueryBytes = 1024
	// MaxNameBytes bounds a name as stored and shown.
	MaxNameBytes = 256
)

// Words returns the search words of s in order, each once: runs of letters
// and digits, lower-cased, with accents folded (canción → cancion, Ångström
// → angstrom). Words of one byte and words longer than MaxWordBytes are
// dropped. Scripts written without spaces (Chinese, Japanese) give one word
// per run of characters.
func Words(s string) []string {
	var (
		out  []string
		seen = map[string]bool{}
		b    strings.Builder
	)
	flush := func() {
		w := b.String()
		b.Reset()
		if len(w) < 2 || len(w) > MaxWordBytes || seen[w] {
			return
		}
		seen[w] = true
		out = append(out, w)
	}
	// NFKD splits accented letters into a base letter and combining marks,
	// which are then left out; compatibility forms (ﬁ, full-width letters)
	// become their plain letters.
	for _, r := range norm.NFKD.String(strings.ToValidUTF8(s, " ")) {
		switch {
		case unicode.Is(unicode.Mn, r):
			// a combining mark: folded away
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			if b.Len() <= MaxWordBytes {
				b.WriteRune(unicode.ToLower(r))
			} else {
				b.WriteString("~") // keeps it too long: dropped at flush
			}
		default:
			flush()
		}
	}
	flush()
	return out
}

// CleanName makes a name safe to store and show: valid UTF-8, control
// characters (newlines, escapes) and path separators replaced by spaces,
// trimmed, and cut at MaxNameBytes on a character boundary.
func CleanName(s string) string {
	if len(s) > 4*MaxNameBytes {
		s = s[:4*MaxNameBytes] // enough for the cut below, whatever follows
	}
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '/' || r == '\\' || r == utf8.RuneError || unicode.Is(unicode.Cf, r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, " "))
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > MaxNameBytes {
		cut := MaxNameBytes
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	return s
}
