package dht

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"btclient/bencode"
)

// KRPC (BEP 5): every packet is one bencoded dictionary. "t" is the
// transaction id, "y" the kind: "q" a query (method in "q", arguments in
// "a"), "r" a response (values in "r"), "e" an error ([code, message]).
const (
	kindQuery    = "q"
	kindResponse = "r"
	kindError    = "e"

	methodPing         = "ping"
	methodFindNode     = "find_node"
	methodGetPeers     = "get_peers"
	methodAnnouncePeer = "announce_peer"

	// BEP 5 error codes.
	errGeneric  = 201
	errServer   = 202
	errProtocol = 203
	errMethod   = 204

	compactNodeLen = 26 // id, IPv4 address, port
	compactPeerLen = 6  // IPv4 address, port
)

// version is sent as "v": two letters for the client, two bytes of version.
const version = "JC\x00\x01"

// message is every KRPC packet as decoded. Keys we do not use ("ip" of BEP
// 42, BEP 33's "scrape" and "noseed", BEP 44's "k", "sig" ...) are ignored;
// "nodes6" and "want" (BEP 32) are read and tolerated, and "ro" (BEP 43)
// keeps a read-only node out of the table.
type message struct {
	T  string    `bencode:"t"`
	Y  string    `bencode:"y"`
	Q  string    `bencode:"q"`
	A  queryArgs `bencode:"a"`
	R  replyArgs `bencode:"r"`
	E  []any     `bencode:"e"`
	V  string    `bencode:"v"`
	RO int64     `bencode:"ro"`
}

type queryArgs struct {
	ID          string   `bencode:"id"`
	Target      string   `bencode:"target"`
	InfoHash    string   `bencode:"info_hash"`
	Port        int64    `bencode:"port"`
	ImpliedPort int64    `bencode:"implied_port"`
	Token       string   `bencode:"token"`
	Want        []string `bencode:"want"`
}

type replyArgs struct {
	ID     string   `bencode:"id"`
	Nodes  string   `bencode:"nodes"`
	Nodes6 string   `bencode:"nodes6"`
	Token  string   `bencode:"token"`
	Values []string `bencode:"values"`
}

var errMalformed = errors.New("dht: malformed message")

// decodeMessage parses one packet. It fails on anything that is not a
// dictionary with a transaction id and a known kind, or whose values have
// the wrong types; the bencode layer bounds nesting and lengths.
func decodeMessage(b []byte) (*message, error) {
	if len(b) == 0 || b[0] != 'd' {
		return nil, fmt.Errorf("%w: not a dictionary", errMalformed)
	}
	var m message
	if err := bencode.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%w: %v", errMalformed, err)
	}
	if m.T == "" || len(m.T) > 64 {
		return nil, fmt.Errorf("%w: transaction id of %d bytes", errMalformed, len(m.T))
	}
	switch m.Y {
	case kindQuery:
		if m.Q == "" {
			return nil, fmt.Errorf("%w: query without a method", errMalformed)
		}
	case kindResponse, kindError:
	default:
		return nil, fmt.Errorf("%w: unknown kind %q", errMalformed, truncate(m.Y))
	}
	return &m, nil
}

// errorReply reads an "e" list: [code, message]; anything else is code 0.
func (m *message) errorReply() (code int64, msg string) {
	if len(m.E) > 0 {
		code, _ = m.E[0].(int64)
	}
	if len(m.E) > 1 {
		msg, _ = m.E[1].(string)
	}
	return code, truncate(msg)
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// encodeQuery, encodeReply and encodeError build the three kinds of packet.
func encodeQuery(tid, method string, args map[string]any) ([]byte, error) {
	return bencode.Marshal(map[string]any{"t": tid, "y": kindQuery, "q": method, "a": args, "v": version})
}

func encodeReply(tid string, r map[string]any) ([]byte, error) {
	return bencode.Marshal(map[string]any{"t": tid, "y": kindResponse, "r": r, "v": version})
}

func encodeError(tid string, code int, msg string) ([]byte, error) {
	return bencode.Marshal(map[string]any{"t": tid, "y": kindError, "e": []any{code, msg}, "v": version})
}

// nodeInfo is a node as the wire and the table know it.
type nodeInfo struct {
	ID   ID
	Addr netip.AddrPort
}

// appendCompactNode appends the 26-byte compact form of an IPv4 node.
func appendCompactNode(b []byte, n nodeInfo) []byte {
	b = append(b, n.ID[:]...)
	return appendCompactAddr(b, n.Addr)
}

func appendCompactAddr(b []byte, a netip.AddrPort) []byte {
	ip := a.Addr().Unmap().As4()
	b = append(b, ip[:]...)
	return binary.BigEndian.AppendUint16(b, a.Port())
}

// parseCompactNodes reads a "nodes" string. Its length must be a multiple
// of 26: anything else is junk and the whole reply is refused.
func parseCompactNodes(s string) ([]nodeInfo, error) {
	if len(s)%compactNodeLen != 0 {
		return nil, fmt.Errorf("%w: nodes of %d bytes is not a multiple of %d", errMalformed, len(s), compactNodeLen)
	}
	out := make([]nodeInfo, 0, len(s)/compactNodeLen)
	for i := 0; i < len(s); i += compactNodeLen {
		var n nodeInfo
		copy(n.ID[:], s[i:i+20])
		n.Addr = parseCompactAddr(s[i+20 : i+26])
		out = append(out, n)
	}
	return out, nil
}

// parseCompactAddr reads a 6-byte IPv4 address and port.
func parseCompactAddr(s string) netip.AddrPort {
	ip := netip.AddrFrom4([4]byte{s[0], s[1], s[2], s[3]})
	return netip.AddrPortFrom(ip, binary.BigEndian.Uint16([]byte(s[4:6])))
}

// parsePeers reads "values": 6-byte IPv4 peers; other lengths (18-byte IPv6
// peers of BEP 32) and unusable addresses are skipped, at most max kept.
func parsePeers(values []string, max int) []netip.AddrPort {
	var out []netip.AddrPort
	for _, v := range values {
		if len(out) >= max {
			break
		}
		if len(v) != compactPeerLen {
			continue
		}
		if a := parseCompactAddr(v); usable(a) {
			out = append(out, a)
		}
	}
	return out
}
