package swarm

import "context"

// Event is the lifecycle event an announce carries.
type Event int

// Lifecycle events, as in BEP 3.
const (
	EventNone Event = iota
	EventStarted
	EventCompleted
	EventStopped
)

func (e Event) String() string {
	return [...]string{"", "started", "completed", "stopped"}[e]
}

// Announce tells a peer source about this client.
type Announce struct {
	InfoHash   [20]byte
	PeerID     [20]byte
	Port       int
	Uploaded   int64
	Downloaded int64
	Left       int64
	Event      Event
	// Private is set for a BEP 27 private torrent: only its trackers may
	// be told about it, never the overlay, the DHT or PEX.
	Private bool
}

// PeerSource finds peers for a torrent: the overlay, a tracker, or a chain of
// them. Announce reports this client and returns peer-wire addresses
// (host:port) worth dialing.
type PeerSource interface {
	Announce(ctx context.Context, a Announce) ([]string, error)
}
