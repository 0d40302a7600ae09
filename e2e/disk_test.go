package e2e

import (
	"btclient/internal/testwait"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// diskNeedMount skips (or, under CI, fails) a test that must mount tmpfs
// file systems when the test process cannot.
func diskNeedMount(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if isCI() {
			t.Fatal("disk tests mount tmpfs and need root (CI is set, so this is a failure)")
		}
		t.Skip("disk tests mount tmpfs and need root; run as root (or set CI=true to make this a failure)")
	}
}

// diskTmpfs mounts a tmpfs with opts on a fresh directory and unmounts it
// when the test ends (after the processes started later are killed).
func diskTmpfs(t *testing.T, flags uintptr, opts string) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", flags, opts); err != nil {
		if isCI() {
			t.Fatalf("mount tmpfs on %s (%s): %v", dir, opts, err)
		}
		t.Skipf("cannot mount tmpfs on %s (%s): %v; the disk tests need CAP_SYS_ADMIN (set CI=true to make this a failure)", dir, opts, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

func diskRemount(t *testing.T, dir string, flags uintptr, opts string) {
	t.Helper()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_REMOUNT|flags, opts); err != nil {
		t.Fatalf("remount %s (%s): %v", dir, opts, err)
	}
}

// diskErrorLine returns the "btclient: …" lines of a process's output
// (its slog lines start with "time=").
func diskErrorLines(out string) []string {
	var lines []string
	for l := range strings.Lines(out) {
		if strings.HasPrefix(l, "btclient: ") {
			lines = append(lines, strings.TrimSpace(l))
		}
	}
	return lines
}

// diskWantFailure checks that p exited 1 with one clear error line that
// mentions every one of words, and did not panic.
func diskWantFailure(t *testing.T, p *proc, d time.Duration, words ...string) string {
	t.Helper()
	code := p.wait(d)
	out := p.out.String()
	if code != 1 {
		t.Errorf("exit status %d, want 1\n%s", code, tail(out, 3000))
	}
	if strings.Contains(out, "panic:") || strings.Contains(out, "goroutine ") {
		t.Errorf("the client panicked:\n%s", tail(out, 3000))
	}
	lines := diskErrorLines(out)
	if len(lines) != 1 {
		t.Fatalf("want one \"btclient: …\" error line, got %d:\n%s", len(lines), tail(out, 3000))
	}
	for _, w := range words {
		if !strings.Contains(lines[0], w) {
			t.Errorf("error line %q does not mention %q", lines[0], w)
		}
	}
	return lines[0]
}

// diskWatch polls status until p exits and returns the largest done seen.
func diskWatch(p *proc, statusAddr string, d time.Duration) int64 {
	var maxDone int64
	deadline := time.Now().Add(d)
	for !p.exited() && time.Now().Before(deadline) {
		if st, ok := getStatus(statusAddr); ok {
			maxDone = max(maxDone, st.Done)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return maxDone
}

// TestDiskFullThenResume downloads 16 MiB into an 8 MiB tmpfs: the client
// must stop with exit status 1 and one error line about the lack of space,
// never having reported more than the disk holds; once the tmpfs is grown,
// a restart resumes from exactly the verified pieces and ends byte-identical.
func TestDiskFullThenResume(t *testing.T) {
	diskNeedMount(t)
	const size = 16 << 20
	src := t.TempDir()
	content, tor, meta := randomTorrent(t, src, size)
	// Rate-limited, so the status polls see the download progress.
	seedAddr, _, _ := chaosSeeder(t, "seeder", src, tor, "--max-upload-rate", "4MiB")
	dir := diskTmpfs(t, 0, "size=8m")
	path := filepath.Join(dir, "data.bin")
	statusAddr := chaosAddr(t)

	started := time.Now()
	l := leecher(t, "leecher on a full disk", dir, tor, statusAddr, seedAddr)
	maxDone := diskWatch(l, statusAddr, time.Minute)
	line := diskWantFailure(t, l, 10*time.Second, "no space left on device")
	_, pieces, verified := crashVerified(t, meta, path)
	t.Logf("measured: disk full: exit 1 after %v with %q; max done reported %d, %d pieces (%d bytes) verify on the 8 MiB tmpfs",
		time.Since(started).Round(time.Millisecond), line, maxDone, pieces, verified)
	if maxDone > verified {
		t.Errorf("client reported done=%d but only %d bytes verify on disk", maxDone, verified)
	}
	if maxDone >= size {
		t.Errorf("client reported the download complete (%d) on a disk that cannot hold it", maxDone)
	}
	if verified == 0 {
		t.Errorf("nothing verified on disk before the disk filled up")
	}

	// Space comes back: the restart resumes from exactly what verifies.
	diskRemount(t, dir, 0, "size=64m")
	gate := newCrashGate(t, seedAddr)
	l2 := btclient(t, "leecher after remount", "-o", dir, "-p", "0", "--quiet", "--seed=false",
		"--discovery-mode", "tracker", "--peer", gate.addr(), "--status", statusAddr, tor)
	var first status
	testwait.Until(t, 30*time.Second, "the restarted client to check its data", func() bool {
		st, ok := getStatus(statusAddr)
		if ok && st.State != "checking" {
			first = st
			return true
		}
		return l2.exited()
	})
	if first.Done != verified || first.HavePieces != pieces {
		t.Errorf("restarted client reports done=%d (%d pieces) after its check, %d bytes (%d pieces) verify on disk",
			first.Done, first.HavePieces, verified, pieces)
	}
	gate.open()
	var downloaded int64
	for !l2.exited() {
		if st, ok := getStatus(statusAddr); ok {
			downloaded = st.Downloaded
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code := l2.wait(time.Second); code != 0 {
		t.Fatalf("resumed leecher exit status %d", code)
	}
	sameFile(t, content, path)
	t.Logf("measured: disk full: resumed run downloaded %d bytes for the %d missing", downloaded, size-verified)
	if downloaded > size-verified+2<<20 {
		t.Errorf("resumed run downloaded %d bytes, but only %d were missing", downloaded, size-verified)
	}
}

// TestDiskReadOnly points the download at a read-only file system, empty
// and holding a partial download: a clear error and exit status 1.
func TestDiskReadOnly(t *testing.T) {
	diskNeedMount(t)
	const size = 16 << 20
	src := t.TempDir()
	_, tor, meta := randomTorrent(t, src, size)
	seedAddr, _, _ := chaosSeeder(t, "seeder", src, tor, "--max-upload-rate", "4MiB")

	t.Run("empty", func(t *testing.T) {
		dir := diskTmpfs(t, syscall.MS_RDONLY, "size=8m")
		started := time.Now()
		l := leecher(t, "leecher on a read-only disk", dir, tor, "", seedAddr)
		line := diskWantFailure(t, l, 20*time.Second, "read-only file system")
		t.Logf("measured: read-only dir: exit 1 after %v with %q", time.Since(started).Round(time.Millisecond), line)
	})

	t.Run("partial download", func(t *testing.T) {
		dir := diskTmpfs(t, 0, "size=64m")
		path := filepath.Join(dir, "data.bin")
		status := chaosAddr(t)
		l := leecher(t, "leecher", dir, tor, status, seedAddr)
		testwait.Until(t, time.Minute, "a third of the download", func() bool {
			st, ok := getStatus(status)
			return ok && st.Done >= size/3
		})
		l.signal(syscall.SIGKILL)
		l.wait(10 * time.Second)
		before := fileSHA256(t, path)
		_, _, verified := crashVerified(t, meta, path)
		diskRemount(t, dir, syscall.MS_RDONLY, "size=64m")

		started := time.Now()
		l2 := leecher(t, "leecher on the read-only partial download", dir, tor, status, seedAddr)
		maxDone := diskWatch(l2, status, time.Minute)
		line := diskWantFailure(t, l2, 10*time.Second, "read-only")
		t.Logf("measured: read-only partial download: exit 1 after %v with %q; max done %d of %d verified bytes",
			time.Since(started).Round(time.Millisecond), line, maxDone, verified)
		if maxDone > verified {
			t.Errorf("client reported done=%d but only %d bytes verify on disk", maxDone, verified)
		}
		if after := fileSHA256(t, path); after != before {
			t.Errorf("the partial file changed on a read-only file system")
		}
	})
}
