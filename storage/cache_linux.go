package storage

import (
	"os"

	"golang.org/x/sys/unix"
)

// startWriteback hands n bytes at off of f to the disk without waiting.
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
