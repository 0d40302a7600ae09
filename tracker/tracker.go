// Package tracker talks to BitTorrent trackers: a client that announces to
// and scrapes HTTP trackers (BEP 3, BEP 23) and UDP trackers (BEP 15), and an
// in-memory HTTP tracker server that real clients can announce to.
//
// client.go builds HTTP requests and picks HTTP or UDP by the URL's scheme,
// response.go parses HTTP replies, udp.go is the UDP wire format and
// udpclient.go its exchanges (retransmission, connection ids); server.go
// answers /announce and /scrape and swarm.go keeps the peers. Both sides
// bencode through btclient/bencode.
package tracker

import (
	"net/netip"
	"strconv"
	"time"
)

// Event is the announce event of BEP 3; the zero value is a regular announce.
type Event string

// The events a client reports.
const (
	EventNone      Event = ""
	EventStarted   Event = "started"
	EventCompleted Event = "completed"
	EventStopped   Event = "stopped"
)

// AnnounceRequest is what a client tells the tracker about itself.
type AnnounceRequest struct {
	InfoHash, PeerID [20]byte
	Port             uint16
	Uploaded         int64
	Downloaded       int64
	Left             int64
	Event            Event
	// NumWant is how many peers to ask for; 0 lets the tracker choose.
	NumWant int
	// IP is sent as the ip parameter when set; most trackers use the address
	// the request came from instead.
	IP string
}

// Peer is one peer in a tracker reply.
type Peer struct {
	IP   netip.Addr
	Port uint16
	// ID is the peer id, present only in replies in the dictionary model.
	ID []byte
}

// String returns host:port, with brackets around IPv6 hosts.
func (p Peer) String() string {
	return netip.AddrPortFrom(p.IP, p.Port).String()
}

// AnnounceResponse is a tracker's successful reply to an announce.
type AnnounceResponse struct {
	// Interval is how long to wait before the next regular announce; zero
	// when the tracker did not say.
	Interval time.Duration
	// MinInterval is the shortest wait the tracker tolerates; zero when not given.
	MinInterval time.Duration
	Peers       []Peer
	// Complete and Incomplete count seeders and leechers; zero when not given.
	Complete   int
	Incomplete int
	// Warning is the tracker's `warning message`, if any.
	Warning string
}

// ScrapeStats are one torrent's counts in a scrape reply.
type ScrapeStats struct {
	// Complete is the number of seeders, Incomplete of leechers, and
	// Downloaded how many times the torrent has been completed.
	Complete, Downloaded, Incomplete int
}

// FailureError is a tracker's refusal: its `failure reason`.
type FailureError struct {
	Reason string
}

func (e *FailureError) Error() string {
	return "tracker failure: " + strconv.Quote(e.Reason)
}
