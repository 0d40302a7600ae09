// Package e2e runs the real btclient binary (and real third-party clients) as
// processes on loopback and checks what they do end to end.
package e2e

import (
	"btclient/internal/testwait"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	mathrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"btclient/torrent"
)

// binary is the btclient executable built once for the whole package.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "btclient-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "btclient")
	build := exec.Command("go", "build", "-o", binary, "../cmd/btclient")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build btclient:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a running child process whose output is kept for failure reports.
type proc struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	err  error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// start runs name with args; the process is killed when the test ends.
func start(t *testing.T, label, name string, args ...string) *proc {
	t.Helper()
	return startEnv(t, label, nil, name, args...)
}

func startEnv(t *testing.T, label string, env []string, name string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", label, err)
	}
	p := &proc{t: t, name: label, cmd: cmd, out: out, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("--- output of %s ---\n%s", label, tail(out.String(), 4000))
		}
	})
	return p
}

// btclient starts the btclient binary.
func btclient(t *testing.T, label string, args ...string) *proc {
	t.Helper()
	return start(t, label, binary, args...)
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// kill sends SIGKILL to the process group and waits for it.
func (p *proc) kill() {
	if p.cmd.Process == nil {
		return
	}
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// signal sends sig to the process only.
func (p *proc) signal(sig syscall.Signal) {
	_ = p.cmd.Process.Signal(sig)
}

// wait waits up to d for the process to exit and returns its exit code.
func (p *proc) wait(d time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		p.t.Fatalf("%s did not exit within %v\n%s", p.name, d, tail(p.out.String(), 4000))
	}
	if p.cmd.ProcessState == nil {
		return -1
	}
	return p.cmd.ProcessState.ExitCode()
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// handedOut remembers the ports freePort gave, so no two tests share one.
var handedOut = struct {
	sync.Mutex
	used map[int]bool
}{used: map[int]bool{}}

// freePort returns a port that is free for TCP on every interface and for UDP
// on loopback. It picks below the kernel's ephemeral range (32768 and up), so
// the outgoing connections of concurrently running processes cannot take it
// between this check and the process that binds it.
func freePort(t *testing.T, _ string) int {
	t.Helper()
	handedOut.Lock()
	defer handedOut.Unlock()
	for range 1000 {
		p := 20000 + mathrand.IntN(12000)
		if handedOut.used[p] {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf(":%d", p))
		if err != nil {
			continue
		}
		l.Close()
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		u.Close()
		handedOut.used[p] = true
		return p
	}
	t.Fatal("no free port below the ephemeral range")
	return 0
}

// randomFile writes size random bytes to dir/name and returns its path.
func randomFile(t *testing.T, dir, name string, size int64) string {
	t.Helper()
	path := filepath.Join(dir, name)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.CopyN(f, rand.Reader, size); err != nil {
		t.Fatal(err)
	}
	return path
}

func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// sameFile fails the test unless got has the same bytes as want.
func sameFile(t *testing.T, want, got string) {
	t.Helper()
	if a, b := fileSHA256(t, want), fileSHA256(t, got); a != b {
		t.Fatalf("%s differs from %s", got, want)
	}
}

// makeTorrent runs `btclient create` and returns the torrent path.
func makeTorrent(t *testing.T, content string, extra ...string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), filepath.Base(content)+".torrent")
	args := append([]string{"create", "-o", out}, extra...)
	args = append(args, content)
	cmd := exec.Command(binary, args...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("btclient create: %v\n%s", err, b)
	}
	return out
}

// randomTorrent writes size random bytes to dir/data.bin and makes its
// torrent (256 KiB pieces); it returns the content path, the torrent path
// and the parsed torrent.
func randomTorrent(t *testing.T, dir string, size int64) (content, torrentPath string, meta *torrent.MetaInfo) {
	t.Helper()
	content = randomFile(t, dir, "data.bin", size)
	torrentPath = makeTorrent(t, content, "--piece-length", "256KiB")
	meta, err := torrent.Load(torrentPath)
	if err != nil {
		t.Fatal(err)
	}
	return content, torrentPath, meta
}

// status is the JSON served at GET /status.
type status struct {
	Name       string  `json:"name"`
	InfoHash   string  `json:"info_hash"`
	Size       int64   `json:"size"`
	Done       int64   `json:"done"`
	Downloaded int64   `json:"downloaded"`
	Uploaded   int64   `json:"uploaded"`
	DownRate   float64 `json:"down_rate"`
	UpRate     float64 `json:"up_rate"`
	Peers      int     `json:"peers"`
	State      string  `json:"state"`
	Pieces     int     `json:"pieces"`
	HavePieces int     `json:"have_pieces"`
	Wasted     int64   `json:"wasted"`
	BadPeers   int     `json:"bad_peers"`
}

// getStatus reads GET /status from addr; ok is false while it does not
// answer with a state.
func getStatus(addr string) (status, bool) {
	var st status
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get("http://" + addr + "/status")
	if err != nil {
		return st, false
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&st); err != nil {
		return st, false
	}
	return st, st.State != ""
}

// waitSeeding waits until the client serving status at addr is seeding.
func waitSeeding(t *testing.T, addr string, d time.Duration) {
	t.Helper()
	testwait.Until(t, d, addr+" seeding", func() bool {
		st, ok := getStatus(addr)
		return ok && st.State == "seeding"
	})
}

func hostPort(host string, port int) string {
	return net.JoinHostPort(host, fmt.Sprint(port))
}

func joinArgs(a ...string) string { return strings.Join(a, ",") }

// isCI reports whether the tests run under CI (CI=true), where a missing
// tool is a failure rather than a skip.
func isCI() bool { return os.Getenv("CI") != "" }
