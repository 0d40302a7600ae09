package swarm

import (
	"bytes"
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"btclient/peerwire"
)

func TestTakeRunCoalescesAdjacentRequests(t *testing.T) {
	const b = 16 << 10
	at := func(block int) upload {
		return upload{index: 0, begin: uint32(block * b), length: b, off: int64(block * b)}
	}
	tests := []struct {
		name     string
		queued   []upload
		maxBytes int
		want     int // requests in the first run
	}{
		{"empty", nil, 4 * b, 0},
		{"one", []upload{at(0)}, 4 * b, 1},
		{"adjacent", []upload{at(0), at(1), at(2)}, 4 * b, 3},
		{"stops at a gap", []upload{at(0), at(1), at(5), at(6)}, 4 * b, 2},
		{"stops at maxBytes", []upload{at(0), at(1), at(2), at(3), at(4)}, 4 * b, 4},
		{"backwards is not adjacent", []upload{at(3), at(2)}, 4 * b, 1},
		{"one larger than maxBytes", []upload{{length: 8 * b}, at(8)}, 4 * b, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := newOutbox()
			o.uploads = append(o.uploads, tt.queued...)
			run, _ := o.takeRun(nil, tt.maxBytes)
			if len(run) != tt.want {
				t.Fatalf("run of %d, want %d", len(run), tt.want)
			}
			if len(o.uploads) != len(tt.queued)-tt.want {
				t.Fatalf("%d left queued, want %d", len(o.uploads), len(tt.queued)-tt.want)
			}
			if tt.want > 0 && len(o.uploads) > 0 && o.uploads[0] != tt.queued[tt.want] {
				t.Fatalf("queue resumes at %+v, want %+v", o.uploads[0], tt.queued[tt.want])
			}
		})
	}
}

// slowStorage serves reads after a delay that shrinks with the offset, so
// later reads finish first, and records how many overlapped.
type slowStorage struct {
	Storage
	inFlight, maxInFlight atomic.Int32
}

func (s *slowStorage) ReadAt(p []byte, off int64) (int, error) {
	n := s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	for {
		m := s.maxInFlight.Load()
		if n <= m || s.maxInFlight.CompareAndSwap(m, n) {
			break
		}
	}
	time.Sleep(time.Duration(20-off/(64<<10)%20) * time.Millisecond)
	return s.Storage.ReadAt(p, off)
}

func TestSeederReadsAheadAndAnswersInRequestOrder(t *testing.T) {
	data, m := testTorrent(t, 2<<20, 64<<10)
	store := &slowStorage{Storage: newMemStorage(len(data), data)}
	seed, addr := session(t, DefaultConfig(), m, store)
	waitDone(t, seed, 10*time.Second)
	nc := dialSession(t, addr, m)
	c := peerwire.NewConn(nc, peerwire.DefaultConnConfig(m.NumPieces()))
	if err := c.WriteMessage(peerwire.Message{ID: peerwire.Interested}); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	for {
		msg, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("waiting for unchoke: %v", err)
		}
		if msg.ID == peerwire.Unchoke {
			break
		}
	}
	// One block of every piece, last piece first: none adjacent, so each is
	// its own storage read.
	var want []peerwire.Message
	for i := m.NumPieces() - 1; i >= 0; i-- {
		r := peerwire.Message{ID: peerwire.Request, Index: uint32(i), Begin: 16 << 10, Length: 16 << 10}
		want = append(want, r)
		if err := c.WriteMessage(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, r := range want {
		msg, err := c.ReadMessage()
		for err == nil && msg.ID != peerwire.Piece {
			msg, err = c.ReadMessage()
		}
		if err != nil {
			t.Fatalf("waiting for piece %d: %v", r.Index, err)
		}
		off := int(r.Index)*(64<<10) + int(r.Begin)
		if msg.Index != r.Index || msg.Begin != r.Begin || !bytes.Equal(msg.Block, data[off:off+int(r.Length)]) {
			t.Fatalf("got block %d/%d, want %d/%d with its data", msg.Index, msg.Begin, r.Index, r.Begin)
		}
	}
	if got := store.maxInFlight.Load(); got < 2 {
		t.Errorf("at most %d storage read in flight, want reads overlapping", got)
	}
}

// gatedStorage holds every read until open is closed.
type gatedStorage struct {
	Storage
	started chan struct{}
	open    chan struct{}
}

func (s *gatedStorage) ReadAt(p []byte, off int64) (int, error) {
	s.started <- struct{}{}
	<-s.open
	return s.Storage.ReadAt(p, off)
}

func TestChokeDropsBlocksAlreadyBeingRead(t *testing.T) {
	data, m := testTorrent(t, 1<<20, 64<<10)
	store := &gatedStorage{Storage: newMemStorage(len(data), data), started: make(chan struct{}, 8), open: make(chan struct{})}
	ours, theirs := net.Pipe()
	defer theirs.Close()
	p := &peer{conn: peerwire.NewConn(ours, peerwire.DefaultConnConfig(m.NumPieces())), out: newOutbox()}
	p.out.setStore(store)
	ctx, cancel := context.WithCancel(context.Background())
	var uploaded atomic.Int64
	var pool sync.Pool
	pool.New = func() any { b := make([]byte, maxRead); return &b }
	var wg sync.WaitGroup
	wg.Go(func() { writeLoop(ctx, p, &uploaded, time.Minute, limits{}, &pool) })
	defer func() { cancel(); wg.Wait() }()

	block := func(piece int) upload {
		return upload{index: uint32(piece), length: 16 << 10, off: int64(piece) * (64 << 10)}
	}
	p.out.queueUpload(block(1))
	p.out.queueUpload(block(3))
	<-store.started
	p.out.chokeUploads()
	theirConn := peerwire.NewConn(theirs, peerwire.DefaultConnConfig(m.NumPieces()))
	msg, err := theirConn.ReadMessage()
	if err != nil || msg.ID != peerwire.Choke {
		t.Fatalf("got %v, %v; want a choke", msg.ID, err)
	}
	p.out.queueUpload(block(5)) // asked after an unchoke
	close(store.open)
	msg, err = theirConn.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	if msg.ID != peerwire.Piece || msg.Index != 5 {
		t.Fatalf("got %v for piece %d; want only the block asked after the choke (5)", msg.ID, msg.Index)
	}
	cancel()
	wg.Wait()
	if got := uploaded.Load(); got != 16<<10 {
		t.Errorf("uploaded %d bytes, want one block", got)
	}
}
