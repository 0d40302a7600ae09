package storage

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"btclient/internal/pagecache"
)

func TestCacheWindowBoundsThePageCache(t *testing.T) {
	const mib = 1 << 20
	const piece = 256 << 10
	layout := []FileSpec{{Path: "a", Length: 24 * mib}, {Path: "b", Offset: 24 * mib, Length: 8 * mib}}
	const total = 32 * mib
	// A chunk only partly out of the window stays, at most one at each end
	// of the window in each file.
	const slack = 2 * 2 * chunkSize
	tests := []struct {
		name        string
		window      int64
		minResident int
		maxResident int
	}{
		{"no window leaves all of it cached", 0, total, total},
		{"a window keeps no more than itself", 4 * mib, 0, 4*mib + slack},
	}
	for _, tt := range tests {
		t.Run(tt.name+", writing", func(t *testing.T) {
			dir := t.TempDir()
			skipOnTmpfs(t, dir)
			d := openWindowed(t, dir, layout, tt.window)
			buf := make([]byte, piece)
			for off := 0; off < total; off += piece {
				rand.Read(buf)
				if _, err := d.WriteBlocksAt([][]byte{buf}, int64(off)); err != nil {
					t.Fatal(err)
				}
			}
			checkResident(t, dir, layout, tt.minResident, tt.maxResident)
		})
		t.Run(tt.name+", reading", func(t *testing.T) {
			dir := t.TempDir()
			skipOnTmpfs(t, dir)
			w := openWindowed(t, dir, layout, 0)
			buf := make([]byte, piece)
			for off := 0; off < total; off += piece {
				rand.Read(buf)
				if _, err := w.WriteAt(buf, int64(off)); err != nil {
					t.Fatal(err)
				}
			}
			for _, fs := range layout { // a seeder's data went to disk long ago
				f, err := os.OpenFile(filepath.Join(dir, fs.Path), os.O_RDWR, 0)
				if err != nil {
					t.Fatal(err)
				}
				if err := f.Sync(); err != nil {
					t.Fatal(err)
				}
				f.Close()
			}
			for _, fs := range layout { // and left the page cache since
				dropFile(t, filepath.Join(dir, fs.Path))
			}
			checkResident(t, dir, layout, 0, 0)
			r := openWindowed(t, dir, layout, tt.window)
			for off := 0; off < total; off += piece {
				if _, err := r.ReadAt(buf, int64(off)); err != nil {
					t.Fatal(err)
				}
			}
			checkResident(t, dir, layout, tt.minResident, tt.maxResident)
		})
	}
}

func TestCacheWindowLeavesWhatWasCachedBefore(t *testing.T) {
	const mib = 1 << 20
	const piece = 256 << 10
	layout := []FileSpec{{Path: "a", Length: 24 * mib}, {Path: "b", Offset: 24 * mib, Length: 8 * mib}}
	const total = 32 * mib
	const window = 4 * mib
	const slack = 2 * 2 * chunkSize
	tests := []struct {
		name string
		// cached says which bytes of the torrent are in the page cache
		// before the Disk reads it all.
		cached   func(off int) bool
		min, max int
	}{
		{"all of it cached stays cached", func(int) bool { return true }, total, total},
		{"every other 4 MiB cached: those stay, the rest leaves", func(off int) bool { return off/(4*mib)%2 == 0 },
			total / 2, total/2 + window + slack},
		{"none of it cached: the window's worth stays", func(int) bool { return false }, 0, window + slack},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			skipOnTmpfs(t, dir)
			w := openWindowed(t, dir, layout, 0)
			buf := make([]byte, piece)
			for off := 0; off < total; off += piece {
				rand.Read(buf)
				if _, err := w.WriteAt(buf, int64(off)); err != nil {
					t.Fatal(err)
				}
			}
			for _, fs := range layout {
				dropFile(t, filepath.Join(dir, fs.Path))
			}
			other := 0
			for _, fs := range layout { // another program reads these, no more
				f, err := os.Open(filepath.Join(dir, fs.Path))
				if err != nil {
					t.Fatal(err)
				}
				if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_RANDOM); err != nil {
					t.Fatal(err)
				}
				for off := fs.Offset; off < fs.Offset+fs.Length; off += piece {
					if tt.cached(int(off)) {
						if _, err := f.ReadAt(buf, off-fs.Offset); err != nil {
							t.Fatal(err)
						}
						other += piece
					}
				}
				f.Close()
			}
			checkResident(t, dir, layout, other, other)
			r := openWindowed(t, dir, layout, window)
			for range 2 {
				for off := 0; off < total; off += piece {
					if _, err := r.ReadAt(buf, int64(off)); err != nil {
						t.Fatal(err)
					}
				}
			}
			checkResident(t, dir, layout, tt.min, tt.max)
		})
	}
}

// dropFile writes path back and evicts all of it from the page cache.
func dropFile(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		t.Fatal(err)
	}
}

func openWindowed(t *testing.T, dir string, layout []FileSpec, window int64) *Disk {
	t.Helper()
	d, err := OpenDisk(dir, layout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	d.setCacheWindow(window)
	return d
}

func skipOnTmpfs(t *testing.T, dir string) {
	t.Helper()
	var fs unix.Statfs_t
	if err := unix.Statfs(dir, &fs); err != nil || fs.Type == unix.TMPFS_MAGIC {
		t.Skip("tmpfs keeps its pages in memory whatever the advice")
	}
}

// checkResident fails t unless the layout's files have between lo and hi
// bytes in the page cache.
func checkResident(t *testing.T, dir string, layout []FileSpec, lo, hi int) {
	t.Helper()
	in := 0
	for _, fs := range layout {
		in += resident(t, filepath.Join(dir, fs.Path))
	}
	if in < lo || in > hi {
		t.Fatalf("%d MiB in the page cache; want %d to %d MiB", in>>20, lo>>20, hi>>20)
	}
}

// resident counts the bytes of path in the page cache.
func resident(t *testing.T, path string) int {
	t.Helper()
	n, err := pagecache.ResidentBytes(path)
	if err != nil {
		t.Fatal(err)
	}
	return int(n)
}
