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
	index  int
	off    int64
	blocks [][]byte // the piece, block by block
	want   [20]byte
}

type hashResult struct {
	index int
	ok    bool
	err   error // the write failed: fatal
}

// blocksWriter is storage that writes a piece's blocks in one call.
type blocksWriter interface {
	WriteBlocksAt(blocks [][]byte, off int64) (int, error)
}

// writeBlocks writes blocks back to back at off.
func writeBlocks(store Storage, blocks [][]byte, off int64) error {
	if w, ok := store.(blocksWriter); ok {
		_, err := w.WriteBlocksAt(blocks, off)
		return err
	}
	for _, b := range blocks {
		if _, err := store.WriteAt(b, off); err != nil {
			return err
		}
		off += int64(len(b))
	}
	return nil
}

// hashWorker verifies and writes pieces until ctx is done. Only a piece that
// matches its hash ever reaches the disk through here.
func hashWorker(ctx context.Context, store Storage, jobs <-chan hashJob, results chan<- hashResult) {
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-jobs:
			h := sha1.New()
			for _, b := range j.blocks {
				h.Write(b)
			}
			var sum [20]byte
			r := hashResult{index: j.index, ok: [20]byte(h.Sum(sum[:0])) == j.want}
			if r.ok {
				if err := writeBlocks(store, j.blocks, j.off); err != nil {
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

// startHashing starts the workers that verify and write pieces; storage is open.
func (l *loop) startHashing() {
	l.hashing = true
	for range l.t.cfg.HashWorkers {
		l.wg.Go(func() { hashWorker(l.ctx, l.t.store, l.jobs, l.results) })
	}
}

// check verifies what storage already holds, so an interrupted download
// resumes and a seeder proves its data; HashWorkers pieces at a time.
// Pieces that trusted resume data lists as verified are not read.
func (t *Torrent) check(ctx context.Context) error {
	n := t.meta.NumPieces()
	var todo []int
	for i := range n {
		if t.opt.Verified.Has(i) {
			t.have.Set(i)
			t.havePieces++
		} else {
			todo = append(todo, i)
		}
	}
	t.hashedOnStart = len(todo)
	indexes := make(chan int)
	verified := make(chan int)
	var wg sync.WaitGroup
	for range min(t.cfg.HashWorkers, len(todo)) {
		wg.Go(func() {
			buf := make([]byte, t.meta.PieceLength)
			for i := range indexes {
				size := t.meta.PieceSize(i)
				if _, err := t.store.ReadAt(buf[:size], int64(i)*t.meta.PieceLength); err != nil {
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
		for _, i := range todo {
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
	t.log.Info("checked existing data", "pieces", t.havePieces, "of", n, "hashed", len(todo))
	return nil
}
