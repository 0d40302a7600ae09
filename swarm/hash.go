package swarm

import (
	"context"
	"crypto/sha1"
	"fmt"
	"sync"
)

// hashJob asks a worker to verify a piece assembled in memory and, if it
// verifies, write it to storage.
type hashJob struct {
	index int
	off   int64
	buf   []byte
	want  [20]byte
}

type hashResult struct {
	index int
	buf   []byte
	ok    bool
	err   error // the write failed: fatal
}

// hashWorker verifies and writes pieces until ctx is done. Only a piece that
// matches its hash ever reaches the disk through here.
func hashWorker(ctx context.Context, store Storage, jobs <-chan hashJob, results chan<- hashResult) {
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-jobs:
			r := hashResult{index: j.index, buf: j.buf, ok: sha1.Sum(j.buf) == j.want}
			if r.ok {
				if _, err := store.WriteAt(j.buf, j.off); err != nil {
					r.err = fmt.Errorf("write piece %d: %w", j.index, err)
				}
			}
			select {
			case results <- r:
			case <-ctx.Done():
				return
			}
		}
	}
}

// check verifies what storage already holds, so an interrupted download
// resumes and a seeder proves its data; HashWorkers pieces at a time.
func (t *Torrent) check(ctx context.Context) error {
	n := t.meta.NumPieces()
	indexes := make(chan int)
	verified := make(chan int)
	var wg sync.WaitGroup
	for range t.cfg.HashWorkers {
		wg.Go(func() {
			buf := make([]byte, t.meta.PieceLength)
			for i := range indexes {
				size := t.meta.PieceSize(i)
				if _, err := t.opt.Storage.ReadAt(buf[:size], int64(i)*t.meta.PieceLength); err != nil {
					continue // not on disk yet
				}
				if sha1.Sum(buf[:size]) == t.meta.Pieces[i] {
					verified <- i
				}
			}
		})
	}
	go func() {
		defer close(indexes)
		for i := range n {
			select {
			case indexes <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() { wg.Wait(); close(verified) }()
	for i := range verified {
		t.have.Set(i)
		t.havePieces++
		if t.havePieces%64 == 0 {
			t.publish()
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	t.log.Info("checked existing data", "pieces", t.havePieces, "of", n)
	return nil
}
