package tooltest

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Opentracker is a running opentracker, serving HTTP and UDP on one port.
type Opentracker struct {
	// HTTP and UDP are its announce URLs.
	HTTP, UDP string
}

// StartOpentracker runs Debian's opentracker on host (a 127.0.0.x address)
// until the test ends, with a whitelist holding only infoHashes (Debian
// builds it with whitelisting on), and returns once it accepts announces
// for them. As root it runs as nobody, which it insists on.
func StartOpentracker(t testing.TB, host string, infoHashes ...[20]byte) *Opentracker {
	t.Helper()
	bin := Need(t, "opentracker")
	if len(infoHashes) == 0 {
		t.Fatal("StartOpentracker: its whitelist needs at least one info hash")
	}
	// Its files must be readable by nobody: t.TempDir's parents are 0700.
	dir, err := os.MkdirTemp("", "opentracker-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var list strings.Builder
	for _, ih := range infoHashes {
		list.WriteString(hex.EncodeToString(ih[:]) + "\n")
	}
	whitelist := filepath.Join(dir, "whitelist.txt")
	conf := filepath.Join(dir, "opentracker.conf")
	files := map[string]string{
		whitelist: list.String(),
		conf:      "access.whitelist " + whitelist + "\n",
		// opentracker chroots into -d when it can, and its whitelist thread
		// may read the file before or after that: keep a copy at the same
		// absolute path inside dir too, so the path resolves either way.
		filepath.Join(dir, whitelist): list.String(),
	}
	for path, body := range files {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	port := strconv.Itoa(freeTCPAndUDPPort(t, host))
	args := []string{"-f", conf, "-d", dir, "-i", host, "-p", port, "-P", port}
	name := bin
	if os.Geteuid() == 0 {
		setpriv := Need(t, "setpriv")
		args = append([]string{"--reuid=nobody", "--regid=nogroup", "--clear-groups", bin}, args...)
		name = setpriv
	}
	out := startProcess(t, "opentracker", name, args...)

	hostPort := net.JoinHostPort(host, port)
	ot := &Opentracker{HTTP: "http://" + hostPort + "/announce", UDP: "udp://" + hostPort + "/announce"}
	// The whitelist is read by a thread of its own once the server is up:
	// wait until a probe announce for the first hash is accepted.
	probe := func(event string) string {
		q := fmt.Sprintf("?info_hash=%s&peer_id=-PROBE0-000000000000&port=1&uploaded=0&downloaded=0&left=1&compact=1&event=%s",
			EscapeHash(infoHashes[0]), event)
		c := http.Client{Timeout: time.Second}
		resp, err := c.Get(ot.HTTP + q)
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		return string(b)
	}
	var last string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		last = probe("started")
		if strings.HasPrefix(last, "d") && !strings.Contains(last, "failure reason") {
			probe("stopped")
			return ot
		}
	}
	t.Fatalf("opentracker did not accept a whitelisted info hash within 10 s; last answer %q; output:\n%s", last, out)
	return nil
}

// EscapeHash percent-encodes every byte of an info hash for a query.
// url.QueryEscape writes a 0x20 byte as '+', which opentracker does not
// decode: a torrent whose hash held a space (one in 13) was refused.
func EscapeHash(ih [20]byte) string {
	var sb strings.Builder
	for _, b := range ih {
		fmt.Fprintf(&sb, "%%%02X", b)
	}
	return sb.String()
}

// freeTCPAndUDPPort returns a port on host that is free for TCP and UDP. It
// picks below the kernel's ephemeral range (32768 and up), so the outgoing
// connections of processes running beside the test cannot take it between
// this check and the program that binds it.
func freeTCPAndUDPPort(t testing.TB, host string) int {
	t.Helper()
	for range 1000 {
		port := strconv.Itoa(20000 + rand.IntN(12000))
		l, err := net.Listen("tcp", net.JoinHostPort(host, port))
		if err != nil {
			continue
		}
		u, err := net.ListenPacket("udp", net.JoinHostPort(host, port))
		l.Close()
		if err != nil {
			continue
		}
		u.Close()
		p, _ := strconv.Atoi(port)
		return p
	}
	t.Fatalf("no port below the ephemeral range free for both TCP and UDP on %s", host)
	return 0
}

// lockedBuffer collects a process's output.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startProcess starts a long-running program in its own process group and
// kills that group (by the pid it started) when the test ends; its output
// is logged if the test failed.
func startProcess(t testing.TB, label, name string, args ...string) *lockedBuffer {
	t.Helper()
	out := &lockedBuffer{}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", label, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		if t.Failed() {
			t.Logf("--- output of %s ---\n%s", label, out.String())
		}
	})
	return out
}
