package storage

import (
	"fmt"
	"sync"
)

// DefaultCacheWindow is how much of what a Disk brought into the page cache
// it leaves there. Past it, pages are written back and evicted, so the pages
// the kernel frees are the ones the next reads and writes take. Touching a
// page the kernel has not handed out lately costs far more than reusing one
// it just freed: in this project's VM, whose freed memory goes back to the
// host, such a page costs a host fault, and 1 GiB took 1.8 s to write or
// read through the page cache against 0.3-0.4 s in a window (2026-11-30).
// Anywhere, a download or an upload then no longer pushes everything else
// out of the page cache.
//
// A page that was in the page cache before the Disk first touched it is
// never evicted: it is another program's (or the same file read before),
// and dropping it would make them, and the Disk, read it from disk again.
// Residency is checked (mincore) once per chunk as it enters the window;
// pages the Disk wrote are its own whatever was there before.
const DefaultCacheWindow = 64 << 20

// chunkSize is the unit of eviction: the largest folio the page cache
// holds (a PMD, 2 MiB, on x86-64). Eviction drops only the folios that lie
// wholly inside its range, and readahead fills the cache with large ones,
// so evicting just the bytes that were read would leave most of them.
const chunkSize = 2 << 20

// writebackBatch: a write this large is handed to the disk at once; smaller
// ones are, together, once this many bytes of them have been written.
const writebackBatch = 1 << 20

// pageSize is the unit of residency (mincore's); chunkPages pages make a chunk.
const (
	pageSize   = 4096
	chunkPages = chunkSize / pageSize
)

// pageSet is a set of the pages of one chunk.
type pageSet [chunkPages / 64]uint64

func (s *pageSet) add(i int)      { s[i/64] |= 1 << (i % 64) }
func (s *pageSet) remove(i int)   { s[i/64] &^= 1 << (i % 64) }
func (s *pageSet) has(i int) bool { return s[i/64]&(1<<(i%64)) != 0 }
func (s *pageSet) empty() bool    { return *s == pageSet{} }

// cacheWindow remembers the file ranges a Disk touched, oldest first. Past
// limit bytes, the oldest leave the window, and a chunk of a file none of
// whose bytes are left in it is evicted whole.
type cacheWindow struct {
	limit int64

	mu     sync.Mutex
	held   int64
	ranges []touchedRange     // oldest first
	chunks map[chunkKey]int64 // bytes in the window, by chunk
	// before holds, for each chunk measured, its pages that were in the
	// page cache before the Disk touched them (and that it has not written
	// since): those are never evicted. A chunk is measured as it enters the
	// window, and the next one with it, before the Disk's own reads pull it
	// in by readahead; a record leaves with its chunk, or with the chunk
	// before it when it never entered the window itself.
	before map[chunkKey]*pageSet
	failed error // see add
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

// touch is called before n bytes at off of f are read or written, and add
// after, with the same range, whatever the outcome. touch measures which
// pages of the chunks the range covers, and of the chunk after them, were
// in the page cache already, and counts the range in its chunks. A written
// range's pages are the Disk's own from then on.
func (w *cacheWindow) touch(f *diskFile, off, n int64, written bool) {
	if w.limit <= 0 || n <= 0 {
		return
	}
	first, last := off/chunkSize, (off+n-1)/chunkSize+1
	for index := first; index <= last && index*chunkSize < f.Length; index++ {
		key := chunkKey{f, index}
		w.mu.Lock()
		_, known := w.before[key]
		w.mu.Unlock()
		if known {
			continue
		}
		// Measured unlocked: a read that races it and brings the pages in
		// first only makes them look like another program's, kept.
		set := residentPages(f.f, index*chunkSize, chunkSize)
		w.mu.Lock()
		if w.before == nil {
			w.before = make(map[chunkKey]*pageSet)
		}
		if _, known := w.before[key]; !known {
			w.before[key] = &set
		}
		w.mu.Unlock()
		if !written {
			// The kernel's readahead is off (see setAccess): it would
			// pull in chunks not measured yet, up to read_ahead_kb
			// (8 MiB here) past the read. This is ours, to the measured.
			prefetch(f.f, index*chunkSize, chunkSize)
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.chunks == nil {
		w.chunks = make(map[chunkKey]int64)
	}
	// Counted from now, so that no eviction takes their records while
	// they are read or written.
	eachChunk(off, n, func(index, k int64) { w.chunks[chunkKey{f, index}] += k })
	if !written {
		return
	}
	for p := off / pageSize; p*pageSize < off+n; p++ {
		if set := w.before[chunkKey{f, p * pageSize / chunkSize}]; set != nil {
			set.remove(int(p % chunkPages))
		}
	}
}

// add records that n bytes at off in f, touched before, were read or
// written; it takes the oldest ranges out of the window past its limit. A
// written range is handed to the disk at once. The first written range that later
// fails to reach the disk is lost data: every write from then on gets that
// error.
func (w *cacheWindow) add(f *diskFile, off, n int64, written bool) error {
	if w.limit <= 0 || n <= 0 {
		return nil
	}
	if written {
		if n >= writebackBatch {
			startWriteback(f.f, off, n)
		} else if f.unstarted.Add(n) >= writebackBatch {
			// Small writes (pieces of 16-64 KiB) are handed over together:
			// a system call each was a quarter of a 16 KiB download's CPU.
			f.unstarted.Store(0)
			startWriteback(f.f, 0, 0) // the whole file's dirty pages
		}
	}
	w.mu.Lock()
	w.ranges = append(w.ranges, touchedRange{f: f, off: off, n: n, written: written})
	w.held += n
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

// evictOldest takes the oldest range (with its neighbours) out of the
// window if the window is over its limit, and evicts the chunks that leaves
// empty. It reports whether it took one.
func (w *cacheWindow) evictOldest() bool {
	w.mu.Lock()
	if w.held <= w.limit || len(w.ranges) == 0 {
		w.mu.Unlock()
		return false
	}
	// The oldest range and those after it of the same kind in the same
	// stretch of the file go together, up to writebackBatch bytes: small
	// pieces (16 KiB) would otherwise cost a wait (a system call) each.
	var buf [64]touchedRange // 1 MiB of 16 KiB pieces
	taken := append(buf[:0], w.ranges[0])
	lo, hi, bytes := w.ranges[0].off, w.ranges[0].off+w.ranges[0].n, w.ranges[0].n
	for len(taken) < len(buf) && len(w.ranges) > len(taken) && bytes < writebackBatch {
		q := w.ranges[len(taken)]
		if q.f != taken[0].f || q.written != taken[0].written || q.off+q.n < lo-writebackBatch || q.off > hi+writebackBatch {
			break
		}
		taken = append(taken, q)
		lo, hi, bytes = min(lo, q.off), max(hi, q.off+q.n), bytes+q.n
	}
	clear(w.ranges[:len(taken)])
	w.ranges = w.ranges[len(taken):]
	w.held -= bytes
	w.mu.Unlock()

	r := taken[0]
	var err error
	if r.written {
		// The span may take in pages of ranges still in the window: waiting
		// for them to be written early costs nothing but that wait.
		err = waitWritten(r.f.f, lo, hi-lo)
	}
	type emptied struct {
		index int64
		keep  *pageSet // nil: none of it was cached before
	}
	var ebuf [4]emptied
	empty := ebuf[:0]
	w.mu.Lock()
	if err != nil && w.failed == nil {
		w.failed = fmt.Errorf("storage: write back %s at %d: %w", r.f.Path, lo, err)
	}
	for _, t := range taken {
		eachChunk(t.off, t.n, func(index, k int64) {
			key := chunkKey{r.f, index}
			if w.chunks[key] -= k; w.chunks[key] <= 0 {
				delete(w.chunks, key)
				keep := w.before[key]
				if keep != nil && keep.empty() {
					keep = nil
				}
				empty = append(empty, emptied{index, keep})
				delete(w.before, key)
				next := chunkKey{r.f, index + 1}
				if w.chunks[next] <= 0 {
					delete(w.before, next)
				}
			}
		})
	}
	w.mu.Unlock()
	// A write into one of these chunks that has not reached add yet is safe:
	// dirty pages are never dropped, and a dropped read is only read again.
	for _, e := range empty {
		base := e.index * chunkSize
		if e.keep == nil {
			dropCached(r.f.f, base, chunkSize)
			continue
		}
		// Drop the runs of pages between the kept ones.
		for i := 0; i < chunkPages; {
			for i < chunkPages && e.keep.has(i) {
				i++
			}
			j := i
			for j < chunkPages && !e.keep.has(j) {
				j++
			}
			if j > i {
				dropCached(r.f.f, base+int64(i)*pageSize, int64(j-i)*pageSize)
			}
			i = j
		}
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

// allPages is the set of every page of a chunk.
func allPages() pageSet {
	var s pageSet
	for i := range s {
		s[i] = ^uint64(0)
	}
	return s
}
