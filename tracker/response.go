package tracker

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"net/netip"
	"time"

	"btclient/bencode"
)

// maxInterval bounds the intervals a tracker may ask for; anything longer is
// treated as garbage rather than trusted.
const maxInterval = 7 * 24 * time.Hour

// parseAnnounceResponse parses the bencoded body of an announce reply. A
// `failure reason` becomes a *FailureError.
func parseAnnounceResponse(body []byte) (*AnnounceResponse, error) {
	dict, err := decodeDict(body)
	if err != nil {
		return nil, err
	}
	if err := failure(dict); err != nil {
		return nil, err
	}
	resp := &AnnounceResponse{}
	if resp.Warning, err = optString(dict, "warning message"); err != nil {
		return nil, err
	}
	if resp.Interval, err = optInterval(dict, "interval"); err != nil {
		return nil, err
	}
	if resp.MinInterval, err = optInterval(dict, "min interval"); err != nil {
		return nil, err
	}
	if resp.Complete, err = optCount(dict, "complete"); err != nil {
		return nil, err
	}
	if resp.Incomplete, err = optCount(dict, "incomplete"); err != nil {
		return nil, err
	}
	switch peers := dict["peers"].(type) {
	case nil:
	case string:
		if resp.Peers, err = parseCompactPeers(peers, 4); err != nil {
			return nil, fmt.Errorf("peers: %w", err)
		}
	case []any:
		if resp.Peers, err = parseDictPeers(peers); err != nil {
			return nil, fmt.Errorf("peers: %w", err)
		}
	default:
		return nil, fmt.Errorf("peers: unexpected %s", typeName(peers))
	}
	switch peers6 := dict["peers6"].(type) {
	case nil:
	case string:
		p6, err := parseCompactPeers(peers6, 16)
		if err != nil {
			return nil, fmt.Errorf("peers6: %w", err)
		}
		resp.Peers = append(resp.Peers, p6...)
	default:
		return nil, fmt.Errorf("peers6: unexpected %s", typeName(peers6))
	}
	return resp, nil
}

// parseScrapeResponse parses the bencoded body of a scrape reply.
func parseScrapeResponse(body []byte) (map[[20]byte]ScrapeStats, error) {
	dict, err := decodeDict(body)
	if err != nil {
		return nil, err
	}
	if err := failure(dict); err != nil {
		return nil, err
	}
	files, ok := dict["files"].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("files: missing or %s", typeName(dict["files"]))
	}
	out := make(map[[20]byte]ScrapeStats, len(files))
	for k, v := range files {
		if len(k) != 20 {
			return nil, fmt.Errorf("files: key of %d bytes, want a 20-byte info hash", len(k))
		}
		f, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("files[%x]: %s, want a dictionary", k, typeName(v))
		}
		var st ScrapeStats
		if st.Complete, err = optCount(f, "complete"); err != nil {
			return nil, fmt.Errorf("files[%x]: %w", k, err)
		}
		if st.Downloaded, err = optCount(f, "downloaded"); err != nil {
			return nil, fmt.Errorf("files[%x]: %w", k, err)
		}
		if st.Incomplete, err = optCount(f, "incomplete"); err != nil {
			return nil, fmt.Errorf("files[%x]: %w", k, err)
		}
		out[[20]byte([]byte(k))] = st
	}
	return out, nil
}

// decodeDict decodes a reply body that must be one bencoded dictionary. Only
// whitespace may follow it: some trackers end their reply with a newline.
func decodeDict(body []byte) (map[string]any, error) {
	n, err := bencode.Scan(body)
	if err != nil {
		return nil, err
	}
	if rest := bytes.TrimSpace(body[n:]); len(rest) > 0 {
		return nil, fmt.Errorf("bencode: %d bytes of trailing data at offset %d", len(rest), n)
	}
	v, err := bencode.Decode(body[:n])
	if err != nil {
		return nil, err
	}
	dict, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("reply is a bencoded %s, want a dictionary", typeName(v))
	}
	return dict, nil
}

// failure returns the tracker's refusal, if the reply is one.
func failure(dict map[string]any) error {
	v, ok := dict["failure reason"]
	if !ok {
		return nil
	}
	reason, ok := v.(string)
	if !ok {
		return fmt.Errorf("failure reason: unexpected %s", typeName(v))
	}
	return &FailureError{Reason: reason}
}

// parseCompactPeers parses BEP 23 (addrLen 4) or BEP 7 peers6 (addrLen 16)
// strings: each peer is its address then a big-endian port. Port-0 entries
// cannot be dialled and are dropped.
func parseCompactPeers(s string, addrLen int) ([]Peer, error) {
	size := addrLen + 2
	if len(s)%size != 0 {
		return nil, fmt.Errorf("compact list of %d bytes is not a multiple of %d", len(s), size)
	}
	peers := make([]Peer, 0, len(s)/size)
	for i := 0; i < len(s); i += size {
		b := []byte(s[i : i+size])
		ip, _ := netip.AddrFromSlice(b[:addrLen])
		ip = ip.Unmap()
		port := binary.BigEndian.Uint16(b[addrLen:])
		if port == 0 {
			continue
		}
		peers = append(peers, Peer{IP: ip, Port: port})
	}
	return peers, nil
}

// parseDictPeers parses the original model: a list of dictionaries with ip,
// port and peer id. Entries that cannot be dialled (a DNS name, a bad port)
// are skipped; entries of the wrong shape make the whole reply garbage.
func parseDictPeers(list []any) ([]Peer, error) {
	peers := make([]Peer, 0, len(list))
	for i, v := range list {
		d, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("entry %d: %s, want a dictionary", i, typeName(v))
		}
		ipStr, ok := d["ip"].(string)
		if !ok {
			return nil, fmt.Errorf("entry %d: ip: missing or %s", i, typeName(d["ip"]))
		}
		port, ok := d["port"].(int64)
		if !ok {
			return nil, fmt.Errorf("entry %d: port: missing or %s", i, typeName(d["port"]))
		}
		var id []byte
		switch pid := d["peer id"].(type) {
		case nil:
		case string:
			id = []byte(pid)
		default:
			return nil, fmt.Errorf("entry %d: peer id: unexpected %s", i, typeName(pid))
		}
		ip, err := netip.ParseAddr(ipStr)
		if err != nil || port <= 0 || port > math.MaxUint16 {
			continue
		}
		peers = append(peers, Peer{IP: ip.Unmap(), Port: uint16(port), ID: id})
	}
	return peers, nil
}

func optString(dict map[string]any, key string) (string, error) {
	switch v := dict[key].(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	default:
		return "", fmt.Errorf("%s: unexpected %s", key, typeName(v))
	}
}

func optInterval(dict map[string]any, key string) (time.Duration, error) {
	switch v := dict[key].(type) {
	case nil:
		return 0, nil
	case int64:
		if v < 0 || v > int64(maxInterval/time.Second) {
			return 0, fmt.Errorf("%s: %d seconds is out of range", key, v)
		}
		return time.Duration(v) * time.Second, nil
	default:
		return 0, fmt.Errorf("%s: unexpected %s", key, typeName(v))
	}
}

func optCount(dict map[string]any, key string) (int, error) {
	switch v := dict[key].(type) {
	case nil:
		return 0, nil
	case int64:
		if v < 0 || v > math.MaxInt32 {
			return 0, fmt.Errorf("%s: %d is out of range", key, v)
		}
		return int(v), nil
	default:
		return 0, fmt.Errorf("%s: unexpected %s", key, typeName(v))
	}
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "nothing"
	case int64:
		return "integer"
	case string:
		return "string"
	case []any:
		return "list"
	case map[string]any:
		return "dictionary"
	default:
		return fmt.Sprintf("%T", v)
	}
}
