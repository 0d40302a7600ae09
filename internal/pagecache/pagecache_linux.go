// Package pagecache tells how much of a file is in the page cache, as
// fincore does: what tests of btclient's cache policy measure.
package pagecache

import (
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ResidentBytes counts the bytes of the file at path that are in the page
// cache (mincore over a read-only mapping; whole pages).
func ResidentBytes(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if fi.Size() == 0 {
		return 0, fmt.Errorf("pagecache: %s is empty", path)
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(fi.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return 0, fmt.Errorf("pagecache: map %s: %w", path, err)
	}
	defer unix.Munmap(m)
	page := os.Getpagesize()
	vec := make([]byte, (len(m)+page-1)/page)
	// x/sys has no wrapper for mincore.
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		return 0, fmt.Errorf("pagecache: mincore %s: %w", path, errno)
	}
	var n int64
	for _, v := range vec {
		n += int64(v & 1)
	}
	return min(n*int64(page), fi.Size()), nil // the last page counts only what the file holds
}
