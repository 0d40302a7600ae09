package storage

import (
	"fmt"
	"sync"
)

// DefaultCacheWindow is how much of what a Disk last read or wrote it leaves
// in the page cache. Past it, pages are written back and evicted, so the
// pages the kernel frees are the ones the next reads and writes take.
// Touching a page the kernel has not handed out lately costs far more than
// reusing one it just freed: in this project's VM, whose freed memory goes
// back to the host, such a page costs a host fault, and 1 GiB took 1.8 s to
// write or read through the page cache against 0.3-0.4 s in a window
// (2026-11-30). Anywhere, a download or an upload then no longer pushes
// everything else out of the page cache.
const DefaultCacheWindow = 64 << 20

// chunkSize is the unit of eviction: the largest folio the page cache
// holds (a PMD, 2 MiB, on x86-64). Eviction drops only the folios that lie
// wholly inside its range, and readahead fills the cache with large ones,
// so evicting just the bytes that were read would leave most of them.
const chunkSize = 2 << 20

// cacheWindow remembers the file ranges a Disk touched, oldest first. Past
// limit bytes, the oldest leave the window, and a chunk of a file none of
// whose bytes are left in it is evicted whole.
type cacheWindow struct {
	limit int64

	mu     sync.Mutex
	held   int64
	ranges []touchedRange     // oldest first
	chunks map[chunkKey]int64 // bytes in the window, by chunk
	failed error              // see add
}

// touchedRange is a range of a file that was read or written.
type touchedRange struct {
	f       *diskFile
	off, n  int64
	written bool
}

// chunkKey names one chunkSize-aligned chunk of a file.
type chunkKey struct {
	f     *diskFile
	index int64
}

// add records that n bytes at off in f were read or written; a written
// range is handed to the disk at once. The first written range that later
// fails to reach the disk is lost data: every write from then on gets that
// error.
func (w *cacheWindow) add(f *diskFile, off, n int64, written bool) error {
	if w.limit <= 0 || n <= 0 {
		return nil
	}
	if written {
		startWriteback(f.f, off, n)
	}
	w.mu.Lock()
	if w.chunks == nil {
		w.chunks = make(map[chunkKey]int64)
	}
	w.ranges = append(w.ranges, touchedRange{f: f, off: off, n: n, written: written})
	w.held += n
	eachChunk(off, n, func(index, k int64) { w.chunks[chunkKey{f, index}] += k })
	w.mu.Unlock()
	for w.evictOldest() {
	}
	if !written {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.failed
}

// evictOldest takes the oldest range out of the window if the window is
// over its limit, and evicts the chunks that leaves empty. It reports
// whether it took one.
func (w *cacheWindow) evictOldest() bool {
	w.mu.Lock()
	if w.held <= w.limit || len(w.ranges) == 0 {
		w.mu.Unlock()
		return false
	}
	r := w.ranges[0]
	w.ranges[0] = touchedRange{}
	w.ranges = w.ranges[1:]
	w.held -= r.n
	w.mu.Unlock()

	var err error
	if r.written {
		err = waitWritten(r.f.f, r.off, r.n)
	}
	var emptied [4]int64
	empty := emptied[:0]
	w.mu.Lock()
	if err != nil && w.failed == nil {
		w.failed = fmt.Errorf("storage: write back %s at %d: %w", r.f.Path, r.off, err)
	}
	eachChunk(r.off, r.n, func(index, k int64) {
		key := chunkKey{r.f, index}
		if w.chunks[key] -= k; w.chunks[key] <= 0 {
			delete(w.chunks, key)
			empty = append(empty, index)
		}
	})
	w.mu.Unlock()
	// A write into one of these chunks that has not reached add yet is safe:
	// dirty pages are never dropped, and a dropped read is only read again.
	for _, index := range empty {
		dropCached(r.f.f, index*chunkSize, chunkSize)
	}
	return true
}

// eachChunk calls fn with every chunk that n bytes at off cover and how
// many of those bytes lie in it.
func eachChunk(off, n int64, fn func(index, k int64)) {
	for end := off + n; off < end; {
		index := off / chunkSize
		k := min(end, (index+1)*chunkSize) - off
		fn(index, k)
		off += k
	}
}
