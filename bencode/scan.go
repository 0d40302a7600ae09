package bencode

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
)

// Bounds every scan obeys. Real torrents nest about five levels deep; a
// 16 MiB torrent holds far fewer than MaxValues values.
const (
	MaxDepth  = 64
	MaxValues = 8 << 20
)

// ErrSyntax is the kind of every error about malformed or out-of-bounds
// input; match it with errors.Is.
var ErrSyntax = errors.New("malformed bencode")

// SyntaxError says what is wrong with the input and where.
type SyntaxError struct {
	Offset int
	Msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("bencode: offset %d: %s", e.Offset, e.Msg)
}

func (e *SyntaxError) Unwrap() error { return ErrSyntax }

// Span is the half-open byte range [Start, End) of one value in its input.
type Span struct{ Start, End int }

// scanner walks one value, checking it against the bounds above. It never
// allocates in proportion to a length it read, only to what it has seen.
type scanner struct {
	data   []byte
	pos    int
	values int
	// want, when set, is a top-level dictionary key whose value's span is
	// recorded in found.
	want  string
	found *Span
}

func (s *scanner) errorf(format string, a ...any) error {
	return &SyntaxError{Offset: s.pos, Msg: fmt.Sprintf(format, a...)}
}

// Scan checks the one value at the start of data and returns its length;
// what follows it is not looked at.
func Scan(data []byte) (int, error) {
	s := &scanner{data: data}
	if err := s.value(0); err != nil {
		return 0, err
	}
	return s.pos, nil
}

// Check reports whether data is exactly one well-formed value within the bounds.
func Check(data []byte) error {
	n, err := Scan(data)
	if err != nil {
		return err
	}
	if n != len(data) {
		return &SyntaxError{Offset: n, Msg: fmt.Sprintf("%d bytes of trailing data", len(data)-n)}
	}
	return nil
}

// Field checks that data is exactly one dictionary and returns the raw bytes
// of the value under key (a sub-slice of data), or ok false when the
// dictionary has no such key. A torrent's info hash is the SHA-1 of
// Field(data, "info").
func Field(data []byte, key string) (raw []byte, ok bool, err error) {
	if len(data) == 0 {
		return nil, false, &SyntaxError{Msg: "empty data"}
	}
	if data[0] != 'd' {
		return nil, false, &SyntaxError{Msg: "top level is not a dictionary"}
	}
	var sp Span
	s := &scanner{data: data, want: key, found: &sp}
	if err := s.value(0); err != nil {
		return nil, false, err
	}
	if s.pos != len(data) {
		return nil, false, &SyntaxError{Offset: s.pos, Msg: fmt.Sprintf("%d bytes of trailing data", len(data)-s.pos)}
	}
	if sp.End == 0 {
		return nil, false, nil
	}
	return data[sp.Start:sp.End], true, nil
}

// value scans one value at s.pos, nested depth levels below the top.
func (s *scanner) value(depth int) error {
	if depth > MaxDepth {
		return s.errorf("nested deeper than %d levels", MaxDepth)
	}
	s.values++
	if s.values > MaxValues {
		return s.errorf("more than %d values", MaxValues)
	}
	if s.pos >= len(s.data) {
		return s.errorf("unexpected end of data")
	}
	switch c := s.data[s.pos]; {
	case c == 'i':
		return s.integer()
	case c >= '0' && c <= '9':
		_, err := s.str()
		return err
	case c == 'l':
		s.pos++
		for {
			if s.pos >= len(s.data) {
				return s.errorf("unterminated list")
			}
			if s.data[s.pos] == 'e' {
				s.pos++
				return nil
			}
			if err := s.value(depth + 1); err != nil {
				return err
			}
		}
	case c == 'd':
		return s.dict(depth)
	default:
		return s.errorf("unexpected byte %q", c)
	}
}

func (s *scanner) dict(depth int) error {
	s.pos++
	var keys [][]byte
	for {
		if s.pos >= len(s.data) {
			return s.errorf("unterminated dictionary")
		}
		if s.data[s.pos] == 'e' {
			s.pos++
			if dup := duplicateKey(keys); dup != nil {
				return s.errorf("duplicate dictionary key %q", truncate(dup))
			}
			return nil
		}
		if c := s.data[s.pos]; c < '0' || c > '9' {
			return s.errorf("dictionary key is not a string")
		}
		key, err := s.str()
		if err != nil {
			return err
		}
		keys = append(keys, key)
		start := s.pos
		if err := s.value(depth + 1); err != nil {
			return err
		}
		if depth == 0 && s.found != nil && string(key) == s.want {
			*s.found = Span{start, s.pos}
		}
	}
}

// integer scans i<digits>e: an optional minus sign, at least one digit, and
// a value that fits in an int64.
func (s *scanner) integer() error {
	start := s.pos + 1
	end := bytes.IndexByte(s.data[start:], 'e')
	if end < 0 {
		return s.errorf("unterminated integer")
	}
	digits := s.data[start : start+end]
	d := digits
	if len(d) > 0 && d[0] == '-' {
		d = d[1:]
	}
	if len(d) == 0 || !allDigits(d) {
		return s.errorf("bad integer %q", truncate(digits))
	}
	if _, err := strconv.ParseInt(string(digits), 10, 64); err != nil {
		return s.errorf("integer %q out of range", truncate(digits))
	}
	s.pos = start + end + 1
	return nil
}

// str scans <length>:<bytes> and returns the bytes.
func (s *scanner) str() ([]byte, error) {
	colon := bytes.IndexByte(s.data[s.pos:], ':')
	if colon < 0 {
		return nil, s.errorf("string length without ':'")
	}
	digits := s.data[s.pos : s.pos+colon]
	if len(digits) == 0 || !allDigits(digits) {
		return nil, s.errorf("bad string length %q", truncate(digits))
	}
	n, err := strconv.ParseInt(string(digits), 10, 64)
	rest := int64(len(s.data) - s.pos - colon - 1)
	if err != nil || n > rest {
		return nil, s.errorf("string length %s runs past the end of the data (%d bytes left)", truncate(digits), rest)
	}
	start := s.pos + colon + 1
	s.pos = start + int(n)
	return s.data[start:s.pos], nil
}

func allDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// truncate shortens hostile input quoted in an error message.
func truncate(b []byte) string {
	if len(b) > 24 {
		return string(b[:24]) + "…"
	}
	return string(b)
}

// duplicateKey returns a key that a dictionary repeats, or nil: decoders
// disagree on which value wins, and a hashed dictionary must mean one thing.
func duplicateKey(keys [][]byte) []byte {
	if !slices.IsSortedFunc(keys, bytes.Compare) {
		keys = slices.Clone(keys)
		slices.SortFunc(keys, bytes.Compare)
	}
	for i := 1; i < len(keys); i++ {
		if bytes.Equal(keys[i-1], keys[i]) {
			return keys[i]
		}
	}
	return nil
}
