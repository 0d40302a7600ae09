package e2e

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// debianPython is Debian's own interpreter, the one python3-libtorrent is for
// (another python3 may come first on PATH).
const debianPython = "/usr/bin/python3"

// needTool skips, or under CI fails, when a real client is missing: make test
// installs them, so in CI a missing one is a broken setup, not a reason to pass.
func needTool(t *testing.T, check func() error, what string) {
	t.Helper()
	if err := check(); err != nil {
		if isCI() {
			t.Fatalf("%s is not available under CI: %v", what, err)
		}
		t.Skipf("%s not available (make test installs it): %v", what, err)
	}
}

func needLibtorrent(t *testing.T) {
	needTool(t, func() error { return exec.Command(debianPython, "-c", "import libtorrent").Run() }, "python3-libtorrent")
}

func needBinary(t *testing.T, name string) {
	needTool(t, func() error { _, err := exec.LookPath(name); return err }, name)
}

// libtorrent starts the libtorrent test peer (testdata/lt.py).
func libtorrent(t *testing.T, label, mode, torrentPath, dir, listen string, peers ...string) *proc {
	t.Helper()
	script, _ := filepath.Abs("testdata/lt.py")
	args := []string{script, mode, torrentPath, dir, "--listen", listen}
	for _, p := range peers {
		args = append(args, "--peer", p)
	}
	return start(t, label, debianPython, args...)
}

func (p *proc) waitOutput(d time.Duration, want string) {
	p.t.Helper()
	deadline := time.Now().Add(d)
	for !strings.Contains(p.out.String(), want) {
		if time.Now().After(deadline) || p.exited() {
			p.t.Fatalf("%s: no %q within %v\n%s", p.name, want, d, tail(p.out.String(), 4000))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestBtclientDownloadsFromLibtorrent(t *testing.T) {
	needLibtorrent(t)
	src := t.TempDir()
	content := randomFile(t, src, "data.bin", 32<<20)
	tor := makeTorrent(t, content, "--piece-length", "256KiB")
	ltPort := freePort(t, "127.0.0.2")
	lt := libtorrent(t, "libtorrent seeder", "seed", tor, src, hostPort("127.0.0.2", ltPort))
	lt.waitOutput(time.Minute, "seeding")

	dst := t.TempDir()
	l := leecher(t, "btclient leecher", dst, tor, "", hostPort("127.0.0.2", ltPort))
	if code := l.wait(2 * time.Minute); code != 0 {
		t.Fatalf("btclient exit status %d", code)
	}
	sameFile(t, content, filepath.Join(dst, "data.bin"))
}

func TestLibtorrentDownloadsFromBtclient(t *testing.T) {
	needLibtorrent(t)
	src := t.TempDir()
	content := randomFile(t, src, "data.bin", 32<<20)
	tor := makeTorrent(t, content, "--piece-length", "256KiB")
	peer, _, _ := seeder(t, "btclient seeder", src, tor)

	dst := t.TempDir()
	lt := libtorrent(t, "libtorrent leecher", "leech", tor, dst, hostPort("127.0.0.3", freePort(t, "127.0.0.3")), peer)
	if code := lt.wait(2 * time.Minute); code != 0 {
		t.Fatalf("libtorrent leecher exit status %d", code)
	}
	sameFile(t, content, filepath.Join(dst, "data.bin"))
}
