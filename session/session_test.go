package session

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"btclient/discovery"
	"btclient/internal/testwait"
	"btclient/torrent"
)

// testConfig is a session on a loopback port with no overlay and no tracker:
// peers come only from what a test says.
func testConfig(t *testing.T, dir, state string) Config {
	cfg := DefaultConfig()
	cfg.DownloadDir = dir
	cfg.StateDir = state
	cfg.ListenAddr = "127.0.0.1:0"
	cfg.Discovery.Mode = discovery.ModeTracker
	cfg.Swarm.Tick = 100 * time.Millisecond
	if os.Getenv("BTCLIENT_DEBUG") != "" {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return cfg
}

// running starts a session; it stops with the test (or with stop).
func running(t *testing.T, cfg Config) (s *Session, stop func()) {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s, testwait.Run(t, "session", s.Run)
}

// makeContent writes a file or a small folder under dir and returns the
// .torrent's bytes.
func makeContent(t *testing.T, dir, name string, size int, multi bool) []byte {
	t.Helper()
	root := filepath.Join(dir, name)
	write := func(p string, n int) {
		b := make([]byte, n)
		rand.Read(b)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if multi {
		write(filepath.Join(root, "a.bin"), size/2)
		write(filepath.Join(root, "sub", "b.bin"), size-size/2)
	} else {
		write(root, size)
	}
	data, _, err := torrent.Create(root, torrent.CreateOptions{PieceLength: 32 << 10})
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func sameFiles(t *testing.T, a, b string, m *torrent.MetaInfo) {
	t.Helper()
	for _, f := range m.Files {
		x, err1 := os.ReadFile(filepath.Join(a, m.FilePath(f)))
		y, err2 := os.ReadFile(filepath.Join(b, m.FilePath(f)))
		if err1 != nil || err2 != nil || !bytes.Equal(x, y) {
			t.Fatalf("%s differs (%v, %v)", m.FilePath(f), err1, err2)
		}
	}
}

// One session seeds three torrents on its single port; another downloads
// all three at once through that port, one of them from a magnet link.
func TestManyTorrentsThroughOnePort(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	seeder, _ := running(t, testConfig(t, src, ""))
	peer := []string{fmt.Sprintf("127.0.0.1:%d", seeder.PeerPort())}
	leecher, _ := running(t, testConfig(t, dst, t.TempDir()))
	var metas []*torrent.MetaInfo
	for i, multi := range []bool{false, true, false} {
		data := makeContent(t, src, fmt.Sprintf("t%d", i), 300<<10+i*1000, multi)
		if _, dup, err := seeder.Add(AddOptions{Metainfo: data}); err != nil || dup {
			t.Fatalf("seeder add: %v %v", dup, err)
		}
		m, _ := torrent.Parse(data)
		metas = append(metas, m)
		opt := AddOptions{Metainfo: data, Peers: peer}
		if i == 2 {
			opt = AddOptions{Magnet: m.Magnet().String(), Peers: peer}
		}
		if _, _, err := leecher.Add(opt); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range metas {
		lt := leecher.ByHash(m.InfoHash)
		select {
		case <-lt.Completed():
		case <-time.After(30 * time.Second):
			t.Fatalf("%s not complete: %+v", m.Name, lt.Status())
		}
		sameFiles(t, src, dst, m)
		if st := lt.Status(); st.State != StateSeeding || st.Done != m.TotalLength {
			t.Fatalf("%s: %+v", m.Name, st)
		}
	}
	if _, dup, err := leecher.Add(AddOptions{Magnet: metas[0].Magnet().String()}); err != nil || !dup {
		t.Fatalf("adding the same info hash again: dup %v, err %v", dup, err)
	}
}

// A restart with the files unchanged hashes nothing; a file changed behind
// the session's back is checked again, and what no longer verifies is not
// reported verified.
func TestRestartTrustsResumeDataOnlyForUnchangedFiles(t *testing.T) {
	dir, state := t.TempDir(), t.TempDir()
	data := makeContent(t, dir, "film", 600<<10, true)
	m, _ := torrent.Parse(data)
	cfg := testConfig(t, dir, state)
	cfg.Restore = true

	s, stop := running(t, cfg)
	tr, _, err := s.Add(AddOptions{Metainfo: data})
	if err != nil {
		t.Fatal(err)
	}
	<-tr.Completed()
	if h := tr.Status().Hashed; h != m.NumPieces() {
		t.Fatalf("first start hashed %d pieces, want all %d", h, m.NumPieces())
	}
	stop()

	s, stop = running(t, cfg)
	testwait.Until(t, 5*time.Second, "the torrent back", func() bool { return len(s.List()) == 1 })
	tr = s.List()[0]
	<-tr.Completed()
	if st := tr.Status(); st.Hashed != 0 || st.ID != 1 {
		t.Fatalf("clean restart: hashed %d pieces (want 0), id %d", st.Hashed, st.ID)
	}
	stop()

	// A byte changed behind its back, the size kept.
	p := filepath.Join(dir, "film", "a.bin")
	b, _ := os.ReadFile(p)
	b[10] ^= 0xff
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	s, _ = running(t, cfg)
	testwait.Until(t, 5*time.Second, "the torrent back", func() bool { return len(s.List()) == 1 })
	tr = s.List()[0]
	testwait.Until(t, 10*time.Second, "the check", func() bool { return tr.Status().State == StateDownloading })
	if st := tr.Status(); st.Hashed != m.NumPieces() || st.HavePieces != m.NumPieces()-1 {
		t.Fatalf("after a change: hashed %d (want %d), verified %d (want all but one)", st.Hashed, m.NumPieces(), st.HavePieces)
	}
}

func TestAddRefusesDirectoriesOutsideAndBadInput(t *testing.T) {
	dir := t.TempDir()
	s, _ := running(t, testConfig(t, dir, t.TempDir()))
	data := makeContent(t, t.TempDir(), "x", 40<<10, false)
	for _, d := range []string{"/etc", filepath.Join(dir, ".."), filepath.Join(dir, "..", "elsewhere")} {
		if _, _, err := s.Add(AddOptions{Metainfo: data, DownloadDir: d}); !errors.Is(err, ErrBadInput) {
			t.Errorf("download dir %s: err = %v, want ErrBadInput", d, err)
		}
	}
	if _, _, err := s.Add(AddOptions{Metainfo: data, DownloadDir: filepath.Join(dir, "sub")}); err != nil {
		t.Errorf("a directory inside: %v", err)
	}
	for name, opt := range map[string]AddOptions{
		"junk metainfo": {Metainfo: []byte("d4:junk")},
		"bad magnet":    {Magnet: "magnet:?xt=urn:btih:123"},
		"nothing":       {},
	} {
		if _, _, err := s.Add(opt); !errors.Is(err, ErrBadInput) {
			t.Errorf("%s: err = %v, want ErrBadInput", name, err)
		}
	}
	if len(s.List()) != 1 {
		t.Fatalf("%d torrents, want the one good add", len(s.List()))
	}
}

func TestRemoveWithDataDeletesOnlyTheTorrentsFiles(t *testing.T) {
	dir, state := t.TempDir(), t.TempDir()
	data := makeContent(t, dir, "album", 100<<10, true)
	keep := filepath.Join(dir, "album", "mine.txt")
	os.WriteFile(keep, []byte("not the torrent's"), 0o644)
	s, _ := running(t, testConfig(t, dir, state))
	tr, _, err := s.Add(AddOptions{Metainfo: data})
	if err != nil {
		t.Fatal(err)
	}
	<-tr.Completed()
	if err := s.Remove(tr.ID(), true); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"album/a.bin", "album/sub/b.bin", "album/sub"} {
		if _, err := os.Stat(filepath.Join(dir, p)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still there", p)
		}
	}
	if _, err := os.Stat(keep); err != nil {
		t.Errorf("a file that is not the torrent's was removed: %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Join(state, "torrents")); len(entries) != 0 {
		t.Errorf("state still holds %d files of the removed torrent", len(entries))
	}
	if _, err := s.Get(tr.ID()); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after Remove: %v", err)
	}
}

func TestStopStartAndLimits(t *testing.T) {
	dir := t.TempDir()
	s, _ := running(t, testConfig(t, dir, t.TempDir()))
	data := makeContent(t, dir, "f", 64<<10, false)
	tr, _, err := s.Add(AddOptions{Metainfo: data, Paused: true})
	if err != nil {
		t.Fatal(err)
	}
	if st := tr.Status(); st.State != StateStopped {
		t.Fatalf("added paused: %s", st.State)
	}
	if err := tr.Start(); err != nil {
		t.Fatal(err)
	}
	<-tr.Completed()
	if err := tr.SetRates(1000, 2000); err != nil {
		t.Fatal(err)
	}
	if st := tr.Status(); st.UploadLimit != 1000 || st.DownloadLimit != 2000 {
		t.Fatalf("limits: %+v", st)
	}
	if err := tr.Stop(); err != nil {
		t.Fatal(err)
	}
	if st := tr.Status(); st.State != StateStopped || st.Done != st.Size {
		t.Fatalf("stopped: %+v", st)
	}
	if err := s.SetRates(5<<20, 0); err != nil {
		t.Fatal(err)
	}
	if up, down := s.Rates(); up != 5<<20 || down != 0 {
		t.Fatalf("session rates %d %d", up, down)
	}
}

// Caps from the configuration win over saved ones; a restored daemon
// without any keeps what it was set to; a single run inherits nothing.
func TestSavedCapsAndConfiguredCaps(t *testing.T) {
	state := t.TempDir()
	cfg := testConfig(t, t.TempDir(), state)
	cfg.Restore = true
	s, stop := running(t, cfg)
	if err := s.SetRates(1000, 2000); err != nil {
		t.Fatal(err)
	}
	stop()
	for _, tt := range []struct {
		name     string
		restore  bool
		up, down int64
		want     [2]int64
	}{
		{"a daemon without caps keeps the saved ones", true, 0, 0, [2]int64{1000, 2000}},
		{"caps in the configuration win", true, 5000, 0, [2]int64{5000, 0}},
		{"a single run inherits nothing", false, 0, 0, [2]int64{0, 0}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := testConfig(t, t.TempDir(), state)
			c.Restore, c.UploadRate, c.DownloadRate = tt.restore, tt.up, tt.down
			s, err := New(c)
			if err != nil {
				t.Fatal(err)
			}
			defer testwait.Run(t, "session", s.Run)()
			if up, down := s.Rates(); [2]int64{up, down} != tt.want {
				t.Fatalf("rates %d %d, want %v", up, down, tt.want)
			}
		})
	}
}

func TestSetDownloadDirStaysInsideTheAllowedDirectories(t *testing.T) {
	dir, other := t.TempDir(), t.TempDir()
	cfg := testConfig(t, dir, t.TempDir())
	cfg.AllowedDirs = []string{other}
	s, _ := running(t, cfg)
	for _, bad := range []string{"", "/etc", filepath.Join(dir, ".."), filepath.Join(other, "..", "x")} {
		if err := s.SetDownloadDir(bad); !errors.Is(err, ErrBadInput) {
			t.Errorf("SetDownloadDir(%q) = %v, want ErrBadInput", bad, err)
		}
	}
	if got := s.DownloadDir(); got != dir {
		t.Fatalf("download dir after refusals: %s, want %s", got, dir)
	}
	sub := filepath.Join(other, "films")
	if err := s.SetDownloadDir(sub); err != nil {
		t.Fatal(err)
	}
	data := makeContent(t, t.TempDir(), "x", 40<<10, false)
	tr, _, err := s.Add(AddOptions{Metainfo: data, Paused: true})
	if err != nil {
		t.Fatal(err)
	}
	if st := tr.Status(); st.DownloadDir != sub {
		t.Fatalf("added to %s, want the new default %s", st.DownloadDir, sub)
	}
}

// A torrent restored from a run that could write elsewhere keeps its files
// when this run, not given that directory, removes it with its data.
func TestRemoveKeepsDataOutsideThisRunsDirectories(t *testing.T) {
	old, state := t.TempDir(), t.TempDir()
	data := makeContent(t, old, "f", 64<<10, false)
	cfg := testConfig(t, old, state)
	cfg.Restore = true
	s, stop := running(t, cfg)
	tr, _, err := s.Add(AddOptions{Metainfo: data})
	if err != nil {
		t.Fatal(err)
	}
	<-tr.Completed()
	if st := tr.Status(); st.StartedAt.IsZero() {
		t.Errorf("a running torrent has no start date")
	}
	stop()

	cfg.DownloadDir = t.TempDir()
	s, _ = running(t, cfg)
	<-s.Ready()
	if len(s.List()) != 1 {
		t.Fatalf("Ready, but %d torrents back, want 1", len(s.List()))
	}
	if err := s.Remove(s.List()[0].ID(), true); !errors.Is(err, ErrBadInput) {
		t.Fatalf("Remove with data outside: %v, want ErrBadInput", err)
	}
	if _, err := os.Stat(filepath.Join(old, "f")); err != nil {
		t.Fatalf("the data outside was touched: %v", err)
	}
	if len(s.List()) != 0 {
		t.Fatalf("the torrent itself should be gone")
	}
}

func TestALinkOutOfTheDownloadDirectoryIsOutside(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	if err := os.Symlink(outside, filepath.Join(dir, "escape")); err != nil {
		t.Fatal(err)
	}
	s, _ := running(t, testConfig(t, dir, t.TempDir()))
	data := makeContent(t, t.TempDir(), "x", 20<<10, false)
	for _, d := range []string{filepath.Join(dir, "escape"), filepath.Join(dir, "escape", "new", "deeper")} {
		if _, _, err := s.Add(AddOptions{Metainfo: data, DownloadDir: d}); !errors.Is(err, ErrBadInput) {
			t.Errorf("download dir %s (through a link out): %v, want ErrBadInput", d, err)
		}
	}
	if _, _, err := s.Add(AddOptions{Metainfo: data, DownloadDir: filepath.Join(dir, "new", "deeper")}); err != nil {
		t.Errorf("a directory still to be made inside: %v", err)
	}
}

// engineRunning reports whether t's engine runs (white box).
func engineRunning(t *Torrent) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.run != nil
}

// A seeding torrent without peers goes to sleep (its engine stops) and
// still reads as seeding; a peer that connects wakes it and gets the data.
// Restored complete, it starts asleep, hashing nothing.
func TestIdleSeedersSleepAndWake(t *testing.T) {
	src, state := t.TempDir(), t.TempDir()
	data := makeContent(t, src, "f", 200<<10, false)
	m, _ := torrent.Parse(data)
	cfg := testConfig(t, src, state)
	cfg.IdleAfter = 300 * time.Millisecond
	cfg.Restore = true
	seeder, stop := running(t, cfg)
	tr, _, err := seeder.Add(AddOptions{Metainfo: data})
	if err != nil {
		t.Fatal(err)
	}
	<-tr.Completed()
	testwait.Until(t, 5*time.Second, "the idle seeder to sleep", func() bool { return !engineRunning(tr) })
	if st := tr.Status(); st.State != StateSeeding || st.Done != m.TotalLength {
		t.Fatalf("asleep: %+v", st)
	}

	dst := t.TempDir()
	leecher, _ := running(t, testConfig(t, dst, ""))
	lt, _, err := leecher.Add(AddOptions{Metainfo: data, Peers: []string{fmt.Sprintf("127.0.0.1:%d", seeder.PeerPort())}})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-lt.Completed():
	case <-time.After(20 * time.Second):
		t.Fatalf("a peer of a sleeping seeder got nothing: %+v / %+v", lt.Status(), tr.Status())
	}
	sameFiles(t, src, dst, m)
	testwait.Until(t, 5*time.Second, "the woken seeder to count its upload", func() bool {
		return tr.Status().Uploaded >= m.TotalLength
	})
	stop()

	seeder, _ = running(t, cfg)
	testwait.Until(t, 5*time.Second, "the torrent back", func() bool { return len(seeder.List()) == 1 })
	tr = seeder.List()[0]
	select {
	case <-tr.Completed():
	case <-time.After(5 * time.Second):
		t.Fatal("a restored complete torrent is not complete")
	}
	if engineRunning(tr) || tr.Status().State != StateSeeding {
		t.Fatalf("restored complete: engine running %v, %+v", engineRunning(tr), tr.Status())
	}
}

// A torrent just created from its files (a shared folder's) seeds without
// hashing them again; a magnet cannot be vouched for.
func TestAddVerifiedSeedsWithoutHashing(t *testing.T) {
	dir := t.TempDir()
	data := makeContent(t, dir, "made here", 300<<10, true)
	s, _ := running(t, testConfig(t, dir, t.TempDir()))
	tr, _, err := s.Add(AddOptions{Metainfo: data, Verified: true})
	if err != nil {
		t.Fatal(err)
	}
	<-tr.Completed()
	if st := tr.Status(); st.State != StateSeeding || st.Hashed != 0 || st.HavePieces != st.Pieces {
		t.Fatalf("state %v, hashed %d, have %d of %d; want seeding with nothing hashed", st.State, st.Hashed, st.HavePieces, st.Pieces)
	}
}
