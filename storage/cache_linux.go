package storage

import (
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// startWriteback hands n bytes at off of f to the disk without waiting (n
// = 0: to the end of the file).
// It is advice: should it fail, waitWritten still writes the range.
func startWriteback(f *os.File, off, n int64) {
	_ = control(f, func(fd int) error {
		return unix.SyncFileRange(fd, off, n, unix.SYNC_FILE_RANGE_WRITE)
	})
}

// waitWritten returns once n bytes at off of f are on the disk, or the
// error that kept them off it.
func waitWritten(f *os.File, off, n int64) error {
	return control(f, func(fd int) error {
		const all = unix.SYNC_FILE_RANGE_WAIT_BEFORE | unix.SYNC_FILE_RANGE_WRITE | unix.SYNC_FILE_RANGE_WAIT_AFTER
		return unix.SyncFileRange(fd, off, n, all)
	})
}

// dropCached evicts the clean pages of n bytes at off of f from the page
// cache. It is advice: pages the kernel will not drop stay.
func dropCached(f *os.File, off, n int64) {
	_ = control(f, func(fd int) error {
		return unix.Fadvise(fd, off, n, unix.FADV_DONTNEED)
	})
}

// prefetch starts reading n bytes at off of f into the page cache without
// waiting. It is advice.
func prefetch(f *os.File, off, n int64) {
	_ = control(f, func(fd int) error {
		return unix.Fadvise(fd, off, n, unix.FADV_WILLNEED)
	})
}

// setReadahead turns the kernel's readahead on f on or off. It is advice.
func setReadahead(f *os.File, on bool) {
	advice := unix.FADV_RANDOM
	if on {
		advice = unix.FADV_NORMAL
	}
	_ = control(f, func(fd int) error { return unix.Fadvise(fd, 0, 0, advice) })
}

// residentPages reports which pages of n bytes at off of f are in the page
// cache: bit i of the result is page off/pageSize+i. Pages past the end of
// the file are not. The answer is advice too: on an error, every page is
// reported resident, so nothing of it is ever evicted.
func residentPages(f *os.File, off, n int64) pageSet {
	var set pageSet
	all := allPages
	fi, err := f.Stat()
	if err != nil {
		return all()
	}
	n = min(n, fi.Size()-off)
	if n <= 0 {
		return set
	}
	var vec [chunkPages]byte
	err = control(f, func(fd int) error {
		m, err := unix.Mmap(fd, off, int(n), unix.PROT_READ, unix.MAP_SHARED)
		if err != nil {
			return err
		}
		defer unix.Munmap(m)
		// x/sys has no wrapper for mincore.
		if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
			return errno
		}
		return nil
	})
	if err != nil {
		return all()
	}
	for i := 0; i < int((n+pageSize-1)/pageSize) && i < chunkPages; i++ {
		if vec[i]&1 != 0 {
			set.add(i)
		}
	}
	return set
}

// control runs fn on f's descriptor; a file closed meanwhile has nothing
// left to write back or evict, so that is no error.
func control(f *os.File, fn func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return nil
	}
	return ferr
}
