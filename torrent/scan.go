package torrent

import (
	"bytes"
	"slices"
	"strconv"
)

// Limits of the bencode scanner. Real torrents nest about five levels deep.
const (
	maxDepth  = 64
	maxValues = 8 << 20
)

// span is the half-open byte range [start, end) of one bencoded value.
type span struct{ start, end int }

// scanner checks that data is one well-formed, bounded bencode value and
// finds the raw bytes of the top-level "info" value. It exists because
// bencode-go neither reports raw spans nor bounds nesting or string lengths,
// so data goes to bencode-go only after the scanner has accepted it.
type scanner struct {
	data   []byte
	pos    int
	values int
}

// scanTorrent validates data and returns the span of the top-level "info"
// value; ok is false when the top-level dictionary has no "info" key.
func scanTorrent(data []byte) (info span, ok bool, err error) {
	s := &scanner{data: data}
	if len(data) == 0 {
		return span{}, false, errorf(ErrSyntax, "empty data")
	}
	if data[0] != 'd' {
		return span{}, false, s.errorf("top level is not a dictionary")
	}
	s.pos = 1
	var keys [][]byte
	for {
		if s.pos >= len(data) {
			return span{}, false, s.errorf("unterminated dictionary")
		}
		if data[s.pos] == 'e' {
			s.pos++
			break
		}
		key, err := s.key()
		if err != nil {
			return span{}, false, err
		}
		keys = append(keys, key)
		start := s.pos
		if err := s.value(1); err != nil {
			return span{}, false, err
		}
		if string(key) == "info" {
			info, ok = span{start, s.pos}, true
		}
	}
	if err := checkDuplicateKeys(keys); err != nil {
		return span{}, false, s.errorf("%v", err)
	}
	if s.pos != len(data) {
		return span{}, false, s.errorf("%d bytes of trailing data", len(data)-s.pos)
	}
	return info, ok, nil
}

func (s *scanner) errorf(format string, a ...any) error {
	return errorf(ErrSyntax, "bencode: offset %d: "+format, append([]any{s.pos}, a...)...)
}

// value scans one value at s.pos, nested depth levels below the top.
func (s *scanner) value(depth int) error {
	if depth > maxDepth {
		return s.errorf("nested deeper than %d levels", maxDepth)
	}
	s.values++
	if s.values > maxValues {
		return s.errorf("more than %d values", maxValues)
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
		s.pos++
		var keys [][]byte
		for {
			if s.pos >= len(s.data) {
				return s.errorf("unterminated dictionary")
			}
			if s.data[s.pos] == 'e' {
				s.pos++
				if err := checkDuplicateKeys(keys); err != nil {
					return s.errorf("%v", err)
				}
				return nil
			}
			key, err := s.key()
			if err != nil {
				return err
			}
			keys = append(keys, key)
			if err := s.value(depth + 1); err != nil {
				return err
			}
		}
	default:
		return s.errorf("unexpected byte %q", c)
	}
}

// key scans a dictionary key, which must be a string.
func (s *scanner) key() ([]byte, error) {
	if c := s.data[s.pos]; c < '0' || c > '9' {
		return nil, s.errorf("dictionary key is not a string")
	}
	return s.str()
}

// integer scans i<digits>e: an optional minus sign, at least one digit, and a
// value that fits in an int64.
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

// checkDuplicateKeys rejects a dictionary that repeats a key: decoders
// disagree on which value wins, and the info hash must mean one thing.
func checkDuplicateKeys(keys [][]byte) error {
	if slices.IsSortedFunc(keys, bytes.Compare) {
		for i := 1; i < len(keys); i++ {
			if bytes.Equal(keys[i-1], keys[i]) {
				return errorf(ErrSyntax, "duplicate dictionary key %q", truncate(keys[i]))
			}
		}
		return nil
	}
	sorted := slices.Clone(keys)
	slices.SortFunc(sorted, bytes.Compare)
	return checkDuplicateKeys(sorted)
}
