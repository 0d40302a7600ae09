package torrent

import (
	"bytes"
	"crypto/sha1"
	"encoding/base32"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"btclient/bencode"
)

// Magnet is what a magnet link (BEP 9) tells about a torrent before its
// metadata is known.
type Magnet struct {
	InfoHash [20]byte
	// Name is the display name (dn); empty when the link has none.
	Name string
	// Trackers are the tr parameters in order; each may be http(s) or udp.
	Trackers []string
	// Peers are the x.pe peer addresses (host:port).
	Peers []string
}

// maxMagnetLen bounds the link ParseMagnet reads; real ones are a few KB.
const maxMagnetLen = 64 << 10

// IsMagnet reports whether s looks like a magnet link rather than a path.
func IsMagnet(s string) bool {
	return len(s) >= 7 && strings.EqualFold(s[:7], "magnet:")
}

// ParseMagnet parses a magnet URI: xt=urn:btih: with 40 hex or 32 base32
// characters, dn, every tr and x.pe. Unknown parameters are ignored.
func ParseMagnet(uri string) (*Magnet, error) {
	m, err := parseMagnet(uri)
	if err != nil {
		return nil, fmt.Errorf("torrent: magnet link: %w", err)
	}
	return m, nil
}

func parseMagnet(uri string) (*Magnet, error) {
	if len(uri) > maxMagnetLen {
		return nil, errorf(ErrMagnet, "longer than %d bytes", maxMagnetLen)
	}
	if !IsMagnet(uri) {
		return nil, errorf(ErrMagnet, "does not start with magnet:")
	}
	rest := uri[len("magnet:"):]
	rest, _, _ = strings.Cut(rest, "#")
	rest = strings.TrimPrefix(rest, "?")
	q, err := url.ParseQuery(rest)
	if err != nil {
		return nil, errorf(ErrMagnet, "bad query: %v", err)
	}
	m := &Magnet{}
	found, sawV2 := false, false
	for key, vals := range q {
		// xt may be numbered (xt.1, xt.2) when a link names several hashes.
		if key != "xt" && !strings.HasPrefix(key, "xt.") {
			continue
		}
		for _, v := range vals {
			lower := strings.ToLower(v)
			switch {
			case strings.HasPrefix(lower, "urn:btih:"):
				h, err := parseBTIH(v[len("urn:btih:"):])
				if err != nil {
					return nil, err
				}
				if found && h != m.InfoHash {
					return nil, errorf(ErrMagnet, "two different btih info hashes")
				}
				m.InfoHash, found = h, true
			case strings.HasPrefix(lower, "urn:btmh:"):
				sawV2 = true
			}
		}
	}
	if !found {
		if sawV2 {
			return nil, errorf(ErrMagnet, "only a BitTorrent v2 hash (urn:btmh); btclient speaks v1 (urn:btih)")
		}
		return nil, errorf(ErrMagnet, "no xt=urn:btih: info hash")
	}
	m.Name = q.Get("dn")
	for _, tr := range q["tr"] {
		u, err := url.Parse(tr)
		if err != nil || u.Host == "" {
			return nil, errorf(ErrMagnet, "tr %q is not a tracker URL", tr)
		}
		m.Trackers = append(m.Trackers, tr)
	}
	for _, pe := range q["x.pe"] {
		if err := checkPeerAddr(pe); err != nil {
			return nil, errorf(ErrMagnet, "x.pe %q: %v", pe, err)
		}
		m.Peers = append(m.Peers, pe)
	}
	return m, nil
}

// parseBTIH decodes a v1 info hash: 40 hex or 32 base32 characters.
func parseBTIH(s string) ([20]byte, error) {
	var h [20]byte
	switch len(s) {
	case 40:
		if _, err := hex.Decode(h[:], []byte(s)); err != nil {
			return h, errorf(ErrMagnet, "info hash %q is not hex", s)
		}
	case 32:
		b, err := base32.StdEncoding.DecodeString(strings.ToUpper(s))
		if err != nil || len(b) != 20 {
			return h, errorf(ErrMagnet, "info hash %q is not base32", s)
		}
		copy(h[:], b)
	default:
		return h, errorf(ErrMagnet, "info hash %q is %d characters, want 40 (hex) or 32 (base32)", truncate(s), len(s))
	}
	return h, nil
}

func checkPeerAddr(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return err
	}
	if host == "" {
		return fmt.Errorf("no host")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q out of range", port)
	}
	return nil
}

// truncate shortens hostile input quoted in an error message.
func truncate(s string) string {
	if len(s) > 48 {
		return s[:48] + "…"
	}
	return s
}

// String returns the magnet URI: xt, then dn, every tr and every x.pe.
func (m *Magnet) String() string {
	var b strings.Builder
	b.WriteString("magnet:?xt=urn:btih:")
	b.WriteString(hex.EncodeToString(m.InfoHash[:]))
	if m.Name != "" {
		b.WriteString("&dn=")
		b.WriteString(url.QueryEscape(m.Name))
	}
	for _, tr := range m.Trackers {
		b.WriteString("&tr=")
		b.WriteString(url.QueryEscape(tr))
	}
	for _, pe := range m.Peers {
		b.WriteString("&x.pe=")
		b.WriteString(url.QueryEscape(pe))
	}
	return b.String()
}

// Magnet returns the magnet link of m: its info hash, name and every tracker.
func (m *MetaInfo) Magnet() *Magnet {
	mg := &Magnet{InfoHash: m.InfoHash, Name: m.Name}
	for _, tier := range m.Trackers() {
		mg.Trackers = append(mg.Trackers, tier...)
	}
	return mg
}

// MaxInfoSize bounds an info dictionary fetched from peers (BEP 9's
// metadata_size). The largest real torrents hold a few MB of piece hashes.
const MaxInfoSize = 16 << 20

// ParseInfo builds a MetaInfo from the raw bytes of an info dictionary, as
// fetched from peers for a magnet link. The bytes must hash to infoHash.
// Trackers are not part of the info dictionary: the caller adds them.
func ParseInfo(info []byte, infoHash [20]byte) (*MetaInfo, error) {
	if len(info) > MaxInfoSize {
		return nil, fmt.Errorf("torrent: info dictionary: %w", errorf(ErrTooLarge, "%d bytes, more than %d", len(info), MaxInfoSize))
	}
	if sha1.Sum(info) != infoHash {
		return nil, fmt.Errorf("torrent: info dictionary: %w", errorf(ErrInvalid, "does not hash to %x", infoHash))
	}
	v, err := bencode.Decode(info)
	if err != nil {
		return nil, fmt.Errorf("torrent: info dictionary: %w", errorf(ErrSyntax, "%v", err))
	}
	d, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("torrent: info dictionary: %w", errorf(ErrInvalid, "not a dictionary"))
	}
	m := &MetaInfo{InfoHash: infoHash, InfoBytes: bytes.Clone(info)}
	if err := m.parseInfo(d); err != nil {
		return nil, fmt.Errorf("torrent: info: %w", err)
	}
	return m, nil
}

// SetTrackers sets the tracker tiers of m from a flat list (a magnet's tr
// parameters), one tier each, as other clients do for magnets.
func (m *MetaInfo) SetTrackers(urls []string) {
	m.Announce, m.AnnounceList = "", nil
	for _, u := range urls {
		if m.Announce == "" {
			m.Announce = u
		}
		m.AnnounceList = append(m.AnnounceList, []string{u})
	}
}

// Encode returns m as a .torrent file: the info dictionary byte for byte as
// it was parsed (so the info hash stays), and the trackers, comment and
// creator outside it.
func (m *MetaInfo) Encode() ([]byte, error) {
	outer := map[string]any{}
	if m.Announce != "" {
		outer["announce"] = m.Announce
	}
	if len(m.AnnounceList) > 0 {
		outer["announce-list"] = m.AnnounceList
	}
	if m.Comment != "" {
		outer["comment"] = m.Comment
	}
	if m.CreatedBy != "" {
		outer["created by"] = m.CreatedBy
	}
	if m.CreationDate != 0 {
		outer["creation date"] = m.CreationDate
	}
	if len(m.URLList) > 0 {
		outer["url-list"] = m.URLList
	}
	fields := make(map[string][]byte, len(outer)+1)
	for k, v := range outer {
		b, err := bencode.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("torrent: encode %s: %w", k, err)
		}
		fields[k] = b
	}
	fields["info"] = m.InfoBytes
	return bencode.AppendDict(nil, fields), nil
}
