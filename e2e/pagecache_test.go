package e2e

import (
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"btclient/internal/pagecache"
)

// A seeder must be a good neighbour in the page cache: a file that another
// program had in memory is still all in memory after btclient checked it
// at start-up and after it served it whole to a leecher.
func TestSeederLeavesACachedFileCached(t *testing.T) {
	src := t.TempDir()
	var fs unix.Statfs_t
	if err := unix.Statfs(src, &fs); err != nil || fs.Type == unix.TMPFS_MAGIC {
		t.Skip("tmpfs keeps its pages in memory whatever the advice")
	}
	// Bigger than the cache window (64 MiB), which is all an eviction of
	// other programs' pages would leave.
	const size = 192 << 20
	content := randomFile(t, src, "data.bin", size)
	tor := makeTorrent(t, content, "--piece-length", "256KiB")
	f, err := os.Open(content)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, f); err != nil { // another program reads it all
		t.Fatal(err)
	}
	f.Close()
	if got := residentBytes(t, content); got != size {
		t.Fatalf("before btclient: %d of %d bytes cached; the test needs all of them", got, size)
	}

	peer, _, _ := seeder(t, "seeder", src, tor)
	if got := residentBytes(t, content); got != size {
		t.Fatalf("after the seeder's start-up check: %d of %d bytes cached; want all", got, size)
	}
	dst := t.TempDir()
	l := leecher(t, "leecher", dst, tor, "", peer)
	if code := l.wait(2 * time.Minute); code != 0 {
		t.Fatalf("leecher exit status %d", code)
	}
	sameFile(t, content, filepath.Join(dst, "data.bin"))
	if got := residentBytes(t, content); got != size {
		t.Fatalf("after the seeder served it once: %d of %d bytes cached; want all", got, size)
	}
	t.Logf("measured: the leecher's copy has %d MiB in the page cache", residentBytes(t, filepath.Join(dst, "data.bin"))>>20)
}

// residentBytes counts the bytes of path in the page cache (what fincore
// prints), with mincore over a mapping of the file.
func residentBytes(t *testing.T, path string) int64 {
	t.Helper()
	n, err := pagecache.ResidentBytes(path)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
