package overlay

import (
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestLineReader(t *testing.T) {
	long := strings.Repeat("x", 40<<10) // longer than the bufio buffer
	tests := []struct {
		name      string
		in        string
		max       int
		budgetMax int64
		want      []string
		err       error
	}{
		{"short lines", "a\nbb\r\n\n", 100, 1 << 20, []string{"a", "bb", ""}, io.EOF},
		{"a line of exactly max bytes", "abcd\n", 4, 1 << 20, []string{"abcd"}, io.EOF},
		{"a line over max closes", "abcde\nok\n", 4, 1 << 20, nil, errLineTooLong},
		{"a long line within max and budget", long + "\n", 64 << 10, 1 << 20, []string{long}, io.EOF},
		{"a long line beyond the shared budget", long + "\n", 64 << 10, 8 << 10, nil, errors.New("budget")},
		{"a long line beyond max", long + "\n", 32 << 10, 1 << 20, nil, errLineTooLong},
		{"a last line without newline", "a\nb", 100, 1 << 20, []string{"a"}, io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var budget atomic.Int64
			lr := newLineReader(strings.NewReader(tt.in), tt.max, &budget, tt.budgetMax)
			var got []string
			var err error
			for {
				var line []byte
				if line, err = lr.readLine(); err != nil {
					break
				}
				got = append(got, string(line))
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("lines = %q, want %q", got, tt.want)
			}
			if tt.err.Error() == "budget" {
				if err == nil || !strings.Contains(err.Error(), "budget") {
					t.Errorf("err = %v, want budget exhausted", err)
				}
			} else if !errors.Is(err, tt.err) {
				t.Errorf("err = %v, want %v", err, tt.err)
			}
			if budget.Load() != 0 {
				t.Errorf("budget not returned: %d", budget.Load())
			}
		})
	}
}

func TestSealAndOpen(t *testing.T) {
	key := []byte("k")
	now := time.Now().UnixMilli()
	body := []byte(`{"type":"ping"}`)
	line := seal(key, body, now)
	tests := []struct {
		name string
		line []byte
		key  []byte
		now  int64
		ok   bool
	}{
		{"fresh and correct", line, key, now, true},
		{"wrong key", line, []byte("other"), now, false},
		{"replayed after the max age", line, key, now + 31_000, false},
		{"body changed", []byte(strings.Replace(string(line), "ping", "pong", 1)), key, now, false},
		{"not an envelope", body, key, now, false},
	}
	for _, tt := range tests {
		got, err := open(tt.key, tt.line, tt.now, 30_000)
		if ok := err == nil && string(got) == string(body); ok != tt.ok {
			t.Errorf("%s: open = %q, %v; want ok=%v", tt.name, got, err, tt.ok)
		}
	}
}

func TestProviderJSON(t *testing.T) {
	var p Provider
	for _, in := range []string{
		`{"addr":"1.2.3.4:5","peer_id":"x","left":7,"last_seen":1700000000000}`,
		`{"addr":"1.2.3.4:5","peer_id":"x","left":7,"last_seen":"2023-11-14T22:13:20Z"}`,
	} {
		if err := p.UnmarshalJSON([]byte(in)); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if !p.LastSeen.Equal(t0) || p.Addr != "1.2.3.4:5" || p.Left != 7 {
			t.Fatalf("%s: got %+v", in, p)
		}
	}
	out, _ := p.MarshalJSON()
	if string(out) != `{"addr":"1.2.3.4:5","peer_id":"x","left":7,"last_seen":1700000000000}` {
		t.Fatalf("marshal = %s", out)
	}
	if err := p.UnmarshalJSON([]byte(`{"addr":"a:1","last_seen":"yesterday"}`)); err == nil {
		t.Fatalf("bad last_seen accepted")
	}
}
