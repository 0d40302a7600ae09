package e2e

import (
	"btclient/internal/testwait"
	"crypto/sha1"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"btclient/torrent"
)

// crashVerified reports which pieces of the (possibly partial) file at path
// match the torrent's piece hashes, and how many bytes they hold. Single-file
// torrents only.
func crashVerified(t *testing.T, m *torrent.MetaInfo, path string) (have []bool, n int, size int64) {
	t.Helper()
	have = make([]bool, m.NumPieces())
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return have, 0, 0
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, m.PieceLength)
	for i := range m.NumPieces() {
		ps := m.PieceSize(i)
		k, err := f.ReadAt(buf[:ps], int64(i)*m.PieceLength)
		if int64(k) != ps || (err != nil && !errors.Is(err, io.EOF)) {
			continue
		}
		if sha1.Sum(buf[:ps]) == m.Pieces[i] {
			have[i] = true
			n++
			size += ps
		}
	}
	return have, n, size
}

// crashGate is a TCP proxy to one target that holds every connection it
// accepts until it is opened. A restarted client dials the seeder through
// it, so nothing new arrives before the test has read what the client found
// on disk.
type crashGate struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	ready chan struct{} // closed while the gate is open
	quit  chan struct{}
	wg    sync.WaitGroup
	conns map[net.Conn]bool
}

func newCrashGate(t *testing.T, target string) *crashGate {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &crashGate{ln: ln, target: target, ready: make(chan struct{}), quit: make(chan struct{}), conns: map[net.Conn]bool{}}
	g.wg.Go(g.serve)
	t.Cleanup(func() {
		close(g.quit)
		ln.Close()
		g.mu.Lock()
		for c := range g.conns {
			c.Close()
		}
		g.mu.Unlock()
		g.wg.Wait()
	})
	return g
}

func (g *crashGate) addr() string { return g.ln.Addr().String() }

func (g *crashGate) shut() {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.ready:
		g.ready = make(chan struct{})
	default:
	}
}

func (g *crashGate) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.ready:
	default:
		close(g.ready)
	}
}

func (g *crashGate) track(c net.Conn, add bool) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.quit:
		return false
	default:
	}
	if add {
		g.conns[c] = true
	} else {
		delete(g.conns, c)
	}
	return true
}

func (g *crashGate) serve() {
	for {
		c, err := g.ln.Accept()
		if err != nil {
			return
		}
		if !g.track(c, true) {
			c.Close()
			return
		}
		g.wg.Go(func() {
			defer func() { c.Close(); g.track(c, false) }()
			g.mu.Lock()
			ready := g.ready
			g.mu.Unlock()
			select {
			case <-ready:
			case <-g.quit:
				return
			}
			up, err := net.DialTimeout("tcp", g.target, 5*time.Second)
			if err != nil {
				return
			}
			if !g.track(up, true) {
				up.Close()
				return
			}
			defer func() { up.Close(); g.track(up, false) }()
			done := make(chan struct{}, 2)
			go func() { io.Copy(up, c); up.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
			go func() { io.Copy(c, up); c.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
			<-done
			<-done
		})
	}
}

// crashSeed returns the random seed for a test, from env (to replay a run)
// or the clock.
func crashSeed(t *testing.T, env string) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(env); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: %v", env, s, err)
		}
		seed = v
	}
	t.Logf("random seed %d (set %s=%d to replay)", seed, env, seed)
	return seed
}

// TestCrashKill9DuringDownloadAndSeeding kills a client with SIGKILL 20
// times at random moments, first while it downloads (from a rate-limited
// seeder, so the download spans the kills), then while it seeds to another
// leecher. After every kill the test hashes what is on disk itself; the
// restarted client must report exactly those pieces once it has checked,
// must never have reported more than the disk holds, and must never lose a
// verified piece. The final files are byte-identical.
func TestCrashKill9DuringDownloadAndSeeding(t *testing.T) {
	const (
		size           = 24 << 20
		kills          = 20
		downloadKills  = 14 // rounds killed while downloading (unless it finished early)
		minDownloading = 10 // at least this many kills must land mid-download
		minSeeding     = 5
	)
	rng := rand.New(rand.NewPCG(crashSeed(t, "CRASH_SEED"), 1))
	src := t.TempDir()
	content, tor, meta := randomTorrent(t, src, size)
	seedAddr, _, _ := chaosSeeder(t, "seeder", src, tor, "--max-upload-rate", "2MiB")
	gate := newCrashGate(t, seedAddr)

	dst := t.TempDir()
	path := filepath.Join(dst, "data.bin")
	victimPort := chaosPort(t)
	victimAddr := hostPort("127.0.0.1", victimPort)
	victimStatus := chaosAddr(t)
	startVictim := func(round int) *proc {
		return btclient(t, "victim run "+strconv.Itoa(round), "-o", dst, "-p", strconv.Itoa(victimPort),
			"--status", victimStatus, "--quiet", "--discovery-mode", "tracker", "--peer", gate.addr(),
			"--max-upload-rate", "4MiB", tor)
	}

	var downstream *proc
	downDir := t.TempDir()
	prevHave := make([]bool, meta.NumPieces())
	var wantPieces int
	var wantBytes int64
	var inDownload, inSeeding int
	checkTimes := make([]time.Duration, 0, kills)
	for round := 1; round <= kills; round++ {
		gate.shut()
		started := time.Now()
		p := startVictim(round)
		// The first answer after the check must be exactly what is on disk.
		var first status
		testwait.Until(t, 30*time.Second, "round "+strconv.Itoa(round)+": the restarted client to finish checking", func() bool {
			st, ok := getStatus(victimStatus)
			if ok && st.State != "checking" {
				first = st
				return true
			}
			if p.exited() {
				t.Fatalf("round %d: client exited during its check:\n%s", round, tail(p.out.String(), 2000))
			}
			return false
		})
		checkTimes = append(checkTimes, time.Since(started))
		if first.Done != wantBytes || first.HavePieces != wantPieces {
			t.Errorf("round %d: restarted client reports done=%d (%d pieces) after its check, but %d bytes (%d pieces) verify on disk",
				round, first.Done, first.HavePieces, wantBytes, wantPieces)
		}
		gate.open()

		if round > downloadKills {
			// The seeding rounds: the client seeds to a downstream leecher
			// that can get the file from no one else.
			waitSeeding(t, victimStatus, 2*time.Minute)
			if downstream == nil {
				downstream = btclient(t, "downstream leecher", "-o", downDir, "-p", "0", "--quiet", "--seed=false",
					"--discovery-mode", "tracker", "--peer", victimAddr, tor)
			}
		}
		// Run for a random 100–800 ms, remembering the last done reported.
		delay := time.Duration(100+rng.IntN(701)) * time.Millisecond
		var last status
		deadline := time.Now().Add(delay)
		for time.Now().Before(deadline) {
			if st, ok := getStatus(victimStatus); ok {
				last = st
			}
			time.Sleep(15 * time.Millisecond)
		}
		if p.exited() {
			t.Fatalf("round %d: client exited on its own:\n%s", round, tail(p.out.String(), 2000))
		}
		p.signal(syscall.SIGKILL)
		p.wait(10 * time.Second)
		phase := last.State
		if phase == "downloading" {
			inDownload++
		} else {
			inSeeding++
		}

		have, n, bytesOK := crashVerified(t, meta, path)
		t.Logf("round %2d: %-11s killed after %v; reported done %d, %d/%d pieces (%d bytes) verify on disk",
			round, phase, delay, last.Done, n, meta.NumPieces(), bytesOK)
		if last.Done > bytesOK {
			t.Errorf("round %d: client reported done=%d before SIGKILL but only %d bytes verify on disk", round, last.Done, bytesOK)
		}
		for i, was := range prevHave {
			if was && !have[i] {
				t.Errorf("round %d: piece %d verified before this run but not after its SIGKILL", round, i)
			}
		}
		prevHave, wantPieces, wantBytes = have, n, bytesOK
	}

	// A last run finishes everything.
	gate.shut()
	p := startVictim(kills + 1)
	testwait.Until(t, 30*time.Second, "the last run to finish checking", func() bool {
		st, ok := getStatus(victimStatus)
		return ok && st.State != "checking"
	})
	if st, _ := getStatus(victimStatus); st.Done != wantBytes {
		t.Errorf("last run: done=%d after its check, %d bytes verify on disk", st.Done, wantBytes)
	}
	gate.open()
	waitSeeding(t, victimStatus, 2*time.Minute)
	sameFile(t, content, path)
	if downstream == nil {
		t.Fatal("the download outlasted every round: no kill landed while seeding")
	}
	seedStart := time.Now()
	if code := downstream.wait(3 * time.Minute); code != 0 {
		t.Fatalf("downstream leecher exit status %d", code)
	}
	sameFile(t, content, filepath.Join(downDir, "data.bin"))
	if p.exited() {
		t.Fatalf("victim exited while seeding:\n%s", tail(p.out.String(), 2000))
	}
	var maxCheck time.Duration
	for _, d := range checkTimes {
		maxCheck = max(maxCheck, d)
	}
	t.Logf("measured: crash: %d SIGKILLs (%d while downloading, %d while seeding); no verified piece lost, done never above the disk; restart-to-checked max %v; downstream finished %v after the last restart",
		kills, inDownload, inSeeding, maxCheck.Round(time.Millisecond), time.Since(seedStart).Round(time.Millisecond))
	if inDownload < minDownloading || inSeeding < minSeeding {
		t.Errorf("kills landed %d times while downloading and %d while seeding; want at least %d and %d",
			inDownload, inSeeding, minDownloading, minSeeding)
	}
}
