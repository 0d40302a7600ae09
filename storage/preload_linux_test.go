package storage

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

func TestPreloadReadiesPagesAndChangesNothing(t *testing.T) {
	const mib = 1 << 20
	dir := t.TempDir()
	d, err := OpenDisk(dir, []FileSpec{{Path: "a", Length: 4 * mib}, {Path: "b", Offset: 4 * mib, Length: mib}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	head := bytes.Repeat([]byte("btclient"), 8<<10)
	if _, err := d.WriteAt(head, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := d.WriteAt([]byte{1}, 4*mib-1); err != nil { // a is full length, with a hole
		t.Fatal(err)
	}
	tests := []struct {
		name string
		off  int64
		n    int
	}{
		{"a hole inside a file", mib, mib},
		{"data already written", 0, len(head)},
		{"across two files", 4*mib - 4096, 8192},
		{"past the torrent", 5 * mib, 10},
		{"before the torrent", -1, 10},
		{"past the written end of a file", 4 * mib, mib},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { d.Preload(tt.off, tt.n) })
	}

	got := make([]byte, 5*mib)
	if n, err := d.ReadAt(got[:4*mib], 0); err != nil || n != 4*mib {
		t.Fatalf("ReadAt = %d, %v", n, err)
	}
	want := make([]byte, 4*mib)
	copy(want, head)
	want[4*mib-1] = 1
	if !bytes.Equal(got[:4*mib], want) {
		t.Fatal("preloading changed file a's bytes")
	}
	if fi, err := os.Stat(filepath.Join(dir, "b")); err != nil || fi.Size() != 0 {
		t.Fatalf("file b: %v, %v; want it still empty", fi, err)
	}

	var fs unix.Statfs_t
	if err := unix.Statfs(dir, &fs); err != nil || fs.Type == unix.TMPFS_MAGIC {
		t.Skip("tmpfs has no read-ahead to preload with")
	}
	t.Run("the hole's pages are in the page cache", func(t *testing.T) {
		f, err := os.Open(filepath.Join(dir, "a"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		// A fresh hole, never read: preload must be what brings it in.
		if _, err := d.WriteAt([]byte{2}, 4*mib-2); err != nil {
			t.Fatal(err)
		}
		if err := unix.Fadvise(int(f.Fd()), 2*mib, mib, unix.FADV_DONTNEED); err != nil {
			t.Fatal(err)
		}
		d.Preload(2*mib, mib)
		m, err := unix.Mmap(int(f.Fd()), 2*mib, mib, unix.PROT_READ, unix.MAP_SHARED)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Munmap(m)
		vec := make([]byte, mib/os.Getpagesize())
		for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			if err := mincore(m, vec); err != nil {
				t.Fatal(err)
			}
			in := 0
			for _, v := range vec {
				in += int(v & 1)
			}
			if in == len(vec) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d of %d pages in the page cache after Preload", in, len(vec))
			}
		}
	})
}

// mincore marks in vec which pages of the mapping m are in memory (x/sys
// has no wrapper for it).
func mincore(m, vec []byte) error {
	_, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0])))
	if errno != 0 {
		return errno
	}
	return nil
}
