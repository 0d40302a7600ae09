package storage

import (
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// iovMax is the most buffers one pwritev takes (IOV_MAX on Linux).
const iovMax = 1024

// pwritev writes bufs back to back at off in f, in as few system calls as
// the kernel allows.
func pwritev(f *os.File, bufs [][]byte, off int64) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, err
	}
	total := 0
	var werr error
	copied := false
	err = rc.Write(func(fd uintptr) bool {
		for len(bufs) > 0 {
			k, err := unix.Pwritev(int(fd), bufs[:min(len(bufs), iovMax)], off)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				werr = err
				return true
			}
			if k == 0 {
				werr = io.ErrShortWrite
				return true
			}
			total += k
			off += int64(k)
			for k > 0 {
				if k >= len(bufs[0]) {
					k -= len(bufs[0])
					bufs = bufs[1:]
					continue
				}
				if !copied { // the caller's slice stays as it was
					bufs, copied = append([][]byte(nil), bufs...), true
				}
				bufs[0] = bufs[0][k:]
				k = 0
			}
		}
		return true
	})
	if werr != nil {
		return total, werr
	}
	return total, err
}
