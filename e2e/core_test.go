package e2e

import (
	"btclient/internal/testwait"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"btclient/internal/peerwiretest"
	"btclient/internal/tooltest"
	"btclient/peerwire"
	"btclient/torrent"
)

// seeder starts a btclient seeding content (already in dir) on a fresh port
// with a status server; it returns the peer and status addresses.
func seeder(t *testing.T, label, dir, torrentPath string, extra ...string) (peerAddr, statusAddr string, p *proc) {
	t.Helper()
	port := freePort(t, "127.0.0.1")
	statusAddr = hostPort("127.0.0.1", freePort(t, "127.0.0.1"))
	args := append([]string{"-o", dir, "-p", strconv.Itoa(port), "--status", statusAddr, "--quiet", "--discovery-mode", "tracker"}, extra...)
	args = append(args, torrentPath)
	p = btclient(t, label, args...)
	waitSeeding(t, statusAddr, 60*time.Second)
	return hostPort("127.0.0.1", port), statusAddr, p
}

// leecher starts a btclient downloading into dir from peers, exiting when done.
func leecher(t *testing.T, label, dir, torrentPath string, statusAddr string, peers ...string) *proc {
	t.Helper()
	args := []string{"-o", dir, "-p", "0", "--quiet", "--seed=false", "--discovery-mode", "tracker", "--peer", joinArgs(peers...)}
	if statusAddr != "" {
		args = append(args, "--status", statusAddr)
	}
	return btclient(t, label, append(args, torrentPath)...)
}

func TestTwoSeedersShareOneDownload(t *testing.T) {
	src := t.TempDir()
	const size = 64 << 20
	content := randomFile(t, src, "data.bin", size)
	tor := makeTorrent(t, content, "--piece-length", "256KiB")
	// A rate cap keeps both seeders busy for a while, so each must serve a share.
	a, aStatus, _ := seeder(t, "seeder A", src, tor, "--max-upload-rate", "12MiB")
	b, bStatus, _ := seeder(t, "seeder B", src, tor, "--max-upload-rate", "12MiB")

	dst := t.TempDir()
	l := leecher(t, "leecher", dst, tor, "", a, b)
	if code := l.wait(2 * time.Minute); code != 0 {
		t.Fatalf("leecher exit status %d", code)
	}
	sameFile(t, content, filepath.Join(dst, "data.bin"))
	for _, s := range []string{aStatus, bStatus} {
		st, ok := getStatus(s)
		if !ok {
			t.Fatalf("no status from %s", s)
		}
		t.Logf("measured: seeder %s uploaded %d bytes (%.0f%%)", s, st.Uploaded, 100*float64(st.Uploaded)/size)
		if st.Uploaded < size/5 {
			t.Errorf("seeder %s served only %d of %d bytes", s, st.Uploaded, size)
		}
	}
}

func TestDownloadSurvivesSeederKilledMidway(t *testing.T) {
	src := t.TempDir()
	const size = 64 << 20
	content := randomFile(t, src, "data.bin", size)
	tor := makeTorrent(t, content, "--piece-length", "256KiB")
	a, _, victim := seeder(t, "seeder A", src, tor, "--max-upload-rate", "8MiB")
	b, _, _ := seeder(t, "seeder B", src, tor, "--max-upload-rate", "8MiB")

	dst := t.TempDir()
	status := hostPort("127.0.0.1", freePort(t, "127.0.0.1"))
	l := leecher(t, "leecher", dst, tor, status, a, b)
	testwait.Until(t, time.Minute, "a third of the download", func() bool {
		st, ok := getStatus(status)
		return ok && st.Done >= size/3
	})
	victim.signal(syscall.SIGKILL)
	st, _ := getStatus(status)
	t.Logf("measured: killed seeder A at %.0f%%", 100*float64(st.Done)/size)
	if code := l.wait(2 * time.Minute); code != 0 {
		t.Fatalf("leecher exit status %d", code)
	}
	sameFile(t, content, filepath.Join(dst, "data.bin"))
}

func TestResumeAfterKill9(t *testing.T) {
	src := t.TempDir()
	const size = 64 << 20
	content := randomFile(t, src, "data.bin", size)
	tor := makeTorrent(t, content, "--piece-length", "256KiB")
	a, _, _ := seeder(t, "seeder", src, tor, "--max-upload-rate", "16MiB")

	dst := t.TempDir()
	status := hostPort("127.0.0.1", freePort(t, "127.0.0.1"))
	first := leecher(t, "first leecher", dst, tor, status, a)
	testwait.Until(t, time.Minute, "half the download", func() bool {
		st, ok := getStatus(status)
		return ok && st.Done >= size/2
	})
	first.signal(syscall.SIGKILL)
	first.wait(10 * time.Second)

	// The second run stays to seed, so its final count can be read.
	btclient(t, "second leecher", "-o", dst, "-p", "0", "--quiet", "--discovery-mode", "tracker",
		"--status", status, "--peer", a, tor)
	var got int64
	testwait.Until(t, time.Minute, "the resumed download to finish", func() bool {
		st, ok := getStatus(status)
		got = st.Downloaded
		return ok && st.State == "seeding"
	})
	sameFile(t, content, filepath.Join(dst, "data.bin"))
	t.Logf("measured: resumed run downloaded %d of %d bytes", got, size)
	if got > size*7/10 {
		t.Fatalf("resumed download fetched %d of %d bytes again", got, size)
	}
}

// TestMultiFileTorrentsOfOtherToolsArriveIdentical: a torrent of nested
// folders made by another tool, seeded by one btclient and downloaded by
// another, arrives file for file.
func TestMultiFileTorrentsOfOtherToolsArriveIdentical(t *testing.T) {
	files := []struct {
		path string
		size int64
	}{
		{"1.txt", 1}, {"2.txt", 2}, {"3.txt", 3},
		{filepath.Join("folder", "file.txt"), 15},
		{filepath.Join("disc 1", "track 01.bin"), 300_000},
		{filepath.Join("disc 1", "deep", "er", "notes.txt"), 40_000},
	}
	for _, maker := range tooltest.Makers() {
		t.Run(maker.Name, func(t *testing.T) {
			src := t.TempDir()
			content := filepath.Join(src, "album")
			for _, f := range files {
				dir := filepath.Join(content, filepath.Dir(f.path))
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				randomFile(t, dir, filepath.Base(f.path), f.size)
			}
			tor := maker.Make(t, content, tooltest.TorrentOptions{PieceLength: 32 << 10})
			a, _, _ := seeder(t, "seeder", src, tor)
			dst := t.TempDir()
			l := leecher(t, "leecher", dst, tor, "", a)
			if code := l.wait(time.Minute); code != 0 {
				t.Fatalf("leecher exit status %d", code)
			}
			m, err := torrent.Load(tor)
			if err != nil {
				t.Fatal(err)
			}
			if len(m.Files) != len(files) {
				t.Fatalf("%s's torrent lists %d files, want %d", maker.Name, len(m.Files), len(files))
			}
			for _, f := range m.Files {
				sameFile(t, filepath.Join(src, m.FilePath(f)), filepath.Join(dst, m.FilePath(f)))
			}
		})
	}
}

func TestCorruptPeerCannotSpoilTheFile(t *testing.T) {
	src := t.TempDir()
	const size = 16 << 20
	content, tor, m := randomTorrent(t, src, size)
	liar := startLiar(t, m, content)
	honest, _, _ := seeder(t, "honest seeder", src, tor, "--max-upload-rate", "8MiB")

	dst := t.TempDir()
	statusAddr := hostPort("127.0.0.1", freePort(t, "127.0.0.1"))
	// The leecher stays to seed, so its final counters can be read: one that
	// exits when done may do so between two polls of its status.
	btclient(t, "leecher", "-o", dst, "-p", "0", "--quiet", "--discovery-mode", "tracker",
		"--status", statusAddr, "--peer", joinArgs(liar.addr, honest), tor)
	var last status
	testwait.Until(t, 2*time.Minute, "the download to finish", func() bool {
		st, ok := getStatus(statusAddr)
		last = st
		return ok && st.State == "seeding"
	})
	sameFile(t, content, filepath.Join(dst, "data.bin"))
	t.Logf("measured: liar served %d blocks; leecher wasted %d bytes, dropped %d bad peers", liar.served.Load(), last.Wasted, last.BadPeers)
	if liar.served.Load() == 0 {
		t.Fatal("the corrupt peer was never asked for a block; the test proves nothing")
	}
	if last.BadPeers < 1 || liar.connected.Load() {
		t.Fatalf("corrupt peer was not dropped (bad peers %d, still connected %v)", last.BadPeers, liar.connected.Load())
	}
}

// liar is a test peer that has every piece and serves every block with one
// byte flipped.
type liar struct {
	addr      string
	served    atomic.Int64
	connected atomic.Bool
}

func startLiar(t *testing.T, m *torrent.MetaInfo, content string) *liar {
	t.Helper()
	f, err := os.Open(content)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	all := peerwire.NewBitfield(m.NumPieces())
	for i := range m.NumPieces() {
		all.Set(i)
	}
	l := &liar{}
	l.addr = peerwiretest.Listen(t, peerwiretest.Peer{
		InfoHash:  m.InfoHash,
		Bitfield:  all,
		Unchoke:   true,
		OnConnect: func(*peerwiretest.Conn) { l.connected.Store(true) },
		OnClose:   func(*peerwiretest.Conn) { l.connected.Store(false) },
		Handle: func(c *peerwiretest.Conn, msg peerwire.Message) {
			if msg.ID != peerwire.Request {
				return
			}
			block := make([]byte, msg.Length)
			f.ReadAt(block, int64(msg.Index)*m.PieceLength+int64(msg.Begin))
			block[len(block)/2] ^= 0xff
			if c.Send(peerwire.Message{ID: peerwire.Piece, Index: msg.Index, Begin: msg.Begin, Block: block}) == nil {
				l.served.Add(1)
			}
		},
	})
	return l
}
