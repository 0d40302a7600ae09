package storage

import (
	"os"

	"golang.org/x/sys/unix"
)

// reserve allocates n bytes of disk for f without changing its size
// (fallocate with KEEP_SIZE), so pieces are written into allocated extents:
// ext4's delayed allocation otherwise books every 4 KiB block as it is
// first written, 0.08 CPU-s of 0.3 per GiB written (2026-11-30), and the
// file is laid out in fewer extents. The size stays, so the check on start
// still ends at the data actually written. It is best-effort: where the
// filesystem cannot, or the disk is full, writes go on as they would have.
func reserve(f *os.File, n int64) {
	_ = control(f, func(fd int) error {
		return unix.Fallocate(fd, unix.FALLOC_FL_KEEP_SIZE, 0, n)
	})
}
