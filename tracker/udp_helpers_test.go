package tracker

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
)

// udpRequest is one datagram a fake UDP tracker received.
type udpRequest struct {
	from   netip.AddrPort
	raw    []byte
	connID uint64 // the protocol id in a connect request
	action uint32
	tid    uint32
}

// fakeUDPTracker is a UDP tracker inside the test, on a real loopback
// socket. For every datagram it calls answer and sends what it returns back
// to the sender, in order, so it can be honest, silent or hostile.
type fakeUDPTracker struct {
	conn   *net.UDPConn
	url    string
	answer func(udpRequest) [][]byte

	mu       sync.Mutex
	requests []udpRequest
}

func newFakeUDPTracker(t *testing.T, network, addr string, answer func(udpRequest) [][]byte) *fakeUDPTracker {
	t.Helper()
	pc, err := net.ListenPacket(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	ft := &fakeUDPTracker{conn: pc.(*net.UDPConn), answer: answer}
	ft.url = "udp://" + pc.LocalAddr().String() + "/announce"
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 64<<10)
		for {
			n, from, err := ft.conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return // closed by the cleanup
			}
			req := udpRequest{from: from, raw: append([]byte(nil), buf[:n]...)}
			if n >= 16 {
				req.connID = binary.BigEndian.Uint64(buf[0:])
				req.action = binary.BigEndian.Uint32(buf[8:])
				req.tid = binary.BigEndian.Uint32(buf[12:])
			}
			ft.mu.Lock()
			ft.requests = append(ft.requests, req)
			ft.mu.Unlock()
			for _, reply := range ft.answer(req) {
				if _, err := ft.conn.WriteToUDPAddrPort(reply, from); err != nil && !errors.Is(err, net.ErrClosed) {
					t.Errorf("fake UDP tracker: send: %v", err)
				}
			}
		}
	}()
	t.Cleanup(func() {
		ft.conn.Close()
		<-done
	})
	return ft
}

// received returns the requests so far with the given action.
func (ft *fakeUDPTracker) received(action uint32) []udpRequest {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	var out []udpRequest
	for _, r := range ft.requests {
		if r.action == action {
			out = append(out, r)
		}
	}
	return out
}

// udpReply builds a reply datagram: action, transaction id, then body.
func udpReply(action, tid uint32, body ...[]byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, action)
	b = binary.BigEndian.AppendUint32(b, tid)
	for _, p := range body {
		b = append(b, p...)
	}
	return b
}

func be32(v ...uint32) []byte {
	var b []byte
	for _, x := range v {
		b = binary.BigEndian.AppendUint32(b, x)
	}
	return b
}

func be64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// honestUDP answers as a correct tracker does: connect with connID,
// announces (made with connID) with peers, scrapes with counts derived from
// the position of each hash (seeders i+1, completed i+2, leechers i+3).
// Requests with another connection id get an error reply, as opentracker's.
func honestUDP(connID uint64, peers []byte) func(udpRequest) [][]byte {
	return func(r udpRequest) [][]byte {
		switch {
		case r.action == udpConnect && r.connID == udpProtocolID:
			return [][]byte{udpReply(udpConnect, r.tid, be64(connID))}
		case r.connID != connID:
			return [][]byte{udpReply(udpError, r.tid, []byte("Connection ID missmatch.\x00"))}
		case r.action == udpAnnounce:
			return [][]byte{udpReply(udpAnnounce, r.tid, be32(1800, 2, 3), peers)}
		case r.action == udpScrape:
			var body []byte
			for i := range (len(r.raw) - 16) / 20 {
				body = append(body, be32(uint32(i+1), uint32(i+2), uint32(i+3))...)
			}
			return [][]byte{udpReply(udpScrape, r.tid, body)}
		}
		return nil
	}
}
