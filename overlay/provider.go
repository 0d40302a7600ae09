package overlay

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"
)

// Provider is one peer that serves a torrent.
//
// On the wire it is {"addr","peer_id","left","last_seen","stopped"} with
// last_seen in unix milliseconds (an RFC 3339 string is accepted on input).
type Provider struct {
	// Addr is the peer-wire address host:port where the provider accepts
	// BitTorrent connections; the store keeps one entry per Addr.
	Addr string
	// PeerID is the provider's BitTorrent peer id.
	PeerID string
	// Left is the number of bytes the provider still lacks; 0 is a seeder.
	Left int64
	// LastSeen is when the provider last announced; the newest entry for an
	// Addr wins and entries older than the TTL are dropped.
	LastSeen time.Time
	// Stopped marks a tombstone: the provider left cleanly. Last-writer-wins
	// spreads it like any entry, and lookups never return it.
	Stopped bool
}

type wireProvider struct {
	Addr     string          `json:"addr"`
	PeerID   string          `json:"peer_id,omitempty"`
	Left     int64           `json:"left"`
	LastSeen json.RawMessage `json:"last_seen"`
	Stopped  bool            `json:"stopped,omitempty"`
}

// MarshalJSON writes the wire form, with LastSeen in unix milliseconds.
func (p Provider) MarshalJSON() ([]byte, error) {
	return json.Marshal(wireProvider{
		Addr:     p.Addr,
		PeerID:   p.PeerID,
		Left:     p.Left,
		LastSeen: json.RawMessage(strconv.FormatInt(p.LastSeen.UnixMilli(), 10)),
		Stopped:  p.Stopped,
	})
}

// UnmarshalJSON reads the wire form; last_seen may be unix milliseconds or an
// RFC 3339 string.
func (p *Provider) UnmarshalJSON(b []byte) error {
	var w wireProvider
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	t, err := parseLastSeen(w.LastSeen)
	if err != nil {
		return fmt.Errorf("provider %q: %w", w.Addr, err)
	}
	*p = Provider{Addr: w.Addr, PeerID: w.PeerID, Left: w.Left, LastSeen: t, Stopped: w.Stopped}
	return nil
}

func parseLastSeen(raw json.RawMessage) (time.Time, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return time.Time{}, errors.New("last_seen missing")
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return time.Time{}, fmt.Errorf("last_seen: %w", err)
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return time.Time{}, fmt.Errorf("last_seen: %w", err)
		}
		return t, nil
	}
	ms, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("last_seen: not unix milliseconds: %w", err)
	}
	return time.UnixMilli(ms), nil
}

// maxPeerIDLen bounds a peer id kept in the store (BitTorrent's are 20 bytes).
const maxPeerIDLen = 64

// validate checks what a provider entry must have to be stored.
func (p Provider) validate() error {
	host, port, err := net.SplitHostPort(p.Addr)
	if err != nil {
		return fmt.Errorf("provider addr %q: %w", p.Addr, err)
	}
	if host == "" || len(p.Addr) > 300 {
		return fmt.Errorf("provider addr %q: bad host", p.Addr)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n <= 0 || n > 65535 {
		return fmt.Errorf("provider addr %q: bad port", p.Addr)
	}
	if len(p.PeerID) > maxPeerIDLen {
		return fmt.Errorf("provider %q: peer id longer than %d bytes", p.Addr, maxPeerIDLen)
	}
	if p.Left < 0 {
		return fmt.Errorf("provider %q: negative left", p.Addr)
	}
	if p.LastSeen.IsZero() || p.LastSeen.Unix() <= 0 {
		return fmt.Errorf("provider %q: no last_seen", p.Addr)
	}
	return nil
}

// ParseInfoHash reads an info hash written as 40 hex characters.
func ParseInfoHash(s string) ([20]byte, error) {
	var ih [20]byte
	if len(s) != 40 {
		return ih, fmt.Errorf("info hash %q: want 40 hex characters", s)
	}
	if _, err := hex.Decode(ih[:], []byte(s)); err != nil {
		return ih, fmt.Errorf("info hash %q: %w", s, err)
	}
	return ih, nil
}

func hexHash(ih [20]byte) string { return hex.EncodeToString(ih[:]) }
