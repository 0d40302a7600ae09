package tracker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strings"
	"time"
	"unicode"
)

// This file is the wire format of the UDP tracker protocol (BEP 15): the
// requests the client sends and the checks every reply passes before any of
// it is believed. udpclient.go moves the packets.

// udpProtocolID is the magic connection id of a connect request.
const udpProtocolID = 0x41727101980

// The actions of BEP 15.
const (
	udpConnect  uint32 = 0
	udpAnnounce uint32 = 1
	udpScrape   uint32 = 2
	udpError    uint32 = 3
)

// Sizes and bounds of the UDP protocol.
const (
	udpHeaderLen        = 8  // action, transaction id
	udpConnectReplyLen  = 16 // header, connection id
	udpAnnounceReplyMin = 20 // header, interval, leechers, seeders
	udpScrapeEntryLen   = 12 // seeders, completed, leechers
	// udpMaxScrapeHashes is how many info hashes fit one scrape request in
	// a 1500-byte packet, BEP 15's own limit.
	udpMaxScrapeHashes = 74
	// udpMaxReply bounds a reply datagram: an announce reply with 200 IPv6
	// peers is 3,620 bytes. Anything longer is dropped unread.
	udpMaxReply = 16 << 10
	// udpMaxErrorMessage bounds the part of an error reply kept in a
	// FailureError.
	udpMaxErrorMessage = 512
)

// errUDPReply marks a reply that carries our transaction id and the awaited
// action but is malformed: the tracker is broken and is not asked again.
var errUDPReply = errors.New("malformed UDP tracker reply")

func udpEvent(e Event) (uint32, error) {
	switch e {
	case EventNone:
		return 0, nil
	case EventCompleted:
		return 1, nil
	case EventStarted:
		return 2, nil
	case EventStopped:
		return 3, nil
	default:
		return 0, fmt.Errorf("unknown event %q", e)
	}
}

func connectRequest(tid uint32) []byte {
	b := make([]byte, 16)
	binary.BigEndian.PutUint64(b[0:], udpProtocolID)
	binary.BigEndian.PutUint32(b[8:], udpConnect)
	binary.BigEndian.PutUint32(b[12:], tid)
	return b
}

// announceRequest is the 98-byte announce of BEP 15, then the tracker URL's
// path and query as BEP 41 URLData options (a passkey may live there).
func announceRequest(connID uint64, tid uint32, req AnnounceRequest, key uint32, urlData string) ([]byte, error) {
	event, err := udpEvent(req.Event)
	if err != nil {
		return nil, err
	}
	b := make([]byte, 98, 98+len(urlData)+2*(len(urlData)/255+1))
	binary.BigEndian.PutUint64(b[0:], connID)
	binary.BigEndian.PutUint32(b[8:], udpAnnounce)
	binary.BigEndian.PutUint32(b[12:], tid)
	copy(b[16:36], req.InfoHash[:])
	copy(b[36:56], req.PeerID[:])
	binary.BigEndian.PutUint64(b[56:], uint64(max(req.Downloaded, 0)))
	binary.BigEndian.PutUint64(b[64:], uint64(max(req.Left, 0)))
	binary.BigEndian.PutUint64(b[72:], uint64(max(req.Uploaded, 0)))
	binary.BigEndian.PutUint32(b[80:], event)
	// The IP field holds only an IPv4 address; 0 tells the tracker to use
	// the address the packet came from.
	if ip, err := netip.ParseAddr(req.IP); err == nil && ip.Unmap().Is4() {
		a := ip.Unmap().As4()
		copy(b[84:88], a[:])
	}
	binary.BigEndian.PutUint32(b[88:], key)
	numWant := int32(-1) // the tracker's default
	if req.NumWant > 0 {
		numWant = int32(min(req.NumWant, math.MaxInt32))
	}
	binary.BigEndian.PutUint32(b[92:], uint32(numWant))
	binary.BigEndian.PutUint16(b[96:], req.Port)
	for rest := urlData; rest != ""; {
		chunk := rest[:min(len(rest), 255)]
		rest = rest[len(chunk):]
		b = append(b, 2, byte(len(chunk)))
		b = append(b, chunk...)
	}
	return b, nil
}

func scrapeRequest(connID uint64, tid uint32, hashes [][20]byte) []byte {
	b := make([]byte, 16, 16+20*len(hashes))
	binary.BigEndian.PutUint64(b[0:], connID)
	binary.BigEndian.PutUint32(b[8:], udpScrape)
	binary.BigEndian.PutUint32(b[12:], tid)
	for _, h := range hashes {
		b = append(b, h[:]...)
	}
	return b
}

// replyVerdict is what a datagram means to an exchange waiting for action
// want under transaction tid.
type replyVerdict int

const (
	// replyIgnore: not an answer to this exchange (another transaction,
	// another action, too short to be the answer, or over the size bound).
	// It is dropped and the wait goes on.
	replyIgnore replyVerdict = iota
	// replyAnswer: the answer, to be parsed by the action's parser.
	replyAnswer
	// replyFailure: the tracker's error reply to this exchange.
	replyFailure
)

// udpMinReply is the shortest answer to each request action.
var udpMinReply = map[uint32]int{
	udpConnect:  udpConnectReplyLen,
	udpAnnounce: udpAnnounceReplyMin,
	udpScrape:   udpHeaderLen,
}

// classifyReply decides whether a datagram answers the exchange. Only a
// datagram with the exchange's transaction id is believed at all; like
// libtorrent, the client drops one too short to be the awaited answer.
func classifyReply(p []byte, tid, want uint32) replyVerdict {
	if len(p) < udpHeaderLen || len(p) > udpMaxReply {
		return replyIgnore
	}
	if binary.BigEndian.Uint32(p[4:]) != tid {
		return replyIgnore
	}
	switch binary.BigEndian.Uint32(p[0:]) {
	case want:
		if len(p) < udpMinReply[want] {
			return replyIgnore
		}
		return replyAnswer
	case udpError:
		return replyFailure
	default:
		return replyIgnore
	}
}

// parseUDPError turns an error reply into the tracker's refusal, its
// message made printable and cut to udpMaxErrorMessage bytes.
func parseUDPError(p []byte) *FailureError {
	msg := p[udpHeaderLen:min(len(p), udpHeaderLen+udpMaxErrorMessage)]
	reason := strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, strings.ToValidUTF8(string(msg), "?"))
	return &FailureError{Reason: strings.TrimSpace(reason)}
}

func parseConnectReply(p []byte) (uint64, error) {
	if len(p) < udpConnectReplyLen {
		return 0, fmt.Errorf("%w: connect reply of %d bytes, want %d", errUDPReply, len(p), udpConnectReplyLen)
	}
	return binary.BigEndian.Uint64(p[8:]), nil
}

// parseAnnounceReply reads an announce reply. Peers are 6 bytes each from
// an IPv4 tracker and 18 from an IPv6 one (the practice of libtorrent and
// opentracker); entries with port 0 cannot be dialled and are dropped.
func parseAnnounceReply(p []byte, v6 bool) (*AnnounceResponse, error) {
	if len(p) < udpAnnounceReplyMin {
		return nil, fmt.Errorf("%w: announce reply of %d bytes, want at least %d", errUDPReply, len(p), udpAnnounceReplyMin)
	}
	interval := binary.BigEndian.Uint32(p[8:])
	if int64(interval) > int64(maxInterval/time.Second) {
		return nil, fmt.Errorf("%w: interval of %d seconds is out of range", errUDPReply, interval)
	}
	leechers, seeders := binary.BigEndian.Uint32(p[12:]), binary.BigEndian.Uint32(p[16:])
	if leechers > math.MaxInt32 || seeders > math.MaxInt32 {
		return nil, fmt.Errorf("%w: peer counts %d and %d are out of range", errUDPReply, leechers, seeders)
	}
	addrLen := 4
	if v6 {
		addrLen = 16
	}
	peers, err := parseCompactPeers(string(p[udpAnnounceReplyMin:]), addrLen)
	if err != nil {
		return nil, fmt.Errorf("%w: peers: %v", errUDPReply, err)
	}
	return &AnnounceResponse{
		Interval:   time.Duration(interval) * time.Second,
		Peers:      peers,
		Complete:   int(seeders),
		Incomplete: int(leechers),
	}, nil
}

// parseScrapeReply reads the counts of a scrape reply, one entry per hash
// asked for, in the order asked.
func parseScrapeReply(p []byte, hashes [][20]byte, into map[[20]byte]ScrapeStats) error {
	if want := udpHeaderLen + udpScrapeEntryLen*len(hashes); len(p) != want {
		return fmt.Errorf("%w: scrape reply of %d bytes for %d torrents, want %d", errUDPReply, len(p), len(hashes), want)
	}
	for i, h := range hashes {
		e := p[udpHeaderLen+udpScrapeEntryLen*i:]
		seeders, completed, leechers := binary.BigEndian.Uint32(e[0:]), binary.BigEndian.Uint32(e[4:]), binary.BigEndian.Uint32(e[8:])
		if seeders > math.MaxInt32 || completed > math.MaxInt32 || leechers > math.MaxInt32 {
			return fmt.Errorf("%w: counts of %x are out of range", errUDPReply, h)
		}
		into[h] = ScrapeStats{Complete: int(seeders), Downloaded: int(completed), Incomplete: int(leechers)}
	}
	return nil
}
