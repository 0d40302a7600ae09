//go:build !linux

package storage

import "os"

// pwritev writes bufs back to back at off in f.
func pwritev(f *os.File, bufs [][]byte, off int64) (int, error) {
	total := 0
	for _, b := range bufs {
		k, err := f.WriteAt(b, off)
		total += k
		if err != nil {
			return total, err
		}
		off += int64(k)
	}
	return total, nil
}
