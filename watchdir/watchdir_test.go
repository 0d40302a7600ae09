package watchdir

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"btclient/internal/testwait"
)

// recorder is an Add that keeps what it was given and calls a torrent
// invalid when its bytes are "junk".
type recorder struct {
	mu    sync.Mutex
	items []Item
	fail  error // returned once, then cleared
}

func (r *recorder) add(it Item) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		err := r.fail
		r.fail = nil
		return err
	}
	if string(it.Metainfo) == "junk" {
		return ErrInvalid
	}
	r.items = append(r.items, it)
	return nil
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.items)
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

func start(t *testing.T, dir string, r *recorder) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, Config{Dir: dir, Interval: 20 * time.Millisecond, Add: r.add}) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
}

func TestDroppedFilesAreAddedOrMarkedInvalid(t *testing.T) {
	dir := t.TempDir()
	r := &recorder{}
	start(t, dir, r)
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("film.torrent", "d4:infod...ee")
	mg := write("show.magnet", "\n  magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567&dn=x  \nignored\n")
	junk := write("junk.torrent", "junk")
	notMagnet := write("bad.magnet", "http://example.com/x.torrent")
	other := write("notes.txt", "left alone")
	hidden := write(".partial.torrent", "being copied")

	testwait.Until(t, 5*time.Second, "the four torrents handled", func() bool {
		return exists(good+".added") && exists(mg+".added") && exists(junk+".invalid") && exists(notMagnet+".invalid")
	})
	if r.count() != 2 {
		t.Fatalf("%d added, want 2", r.count())
	}
	r.mu.Lock()
	for _, it := range r.items {
		if it.Path == mg && it.Magnet != "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567&dn=x" {
			t.Errorf("magnet read as %q", it.Magnet)
		}
	}
	r.mu.Unlock()
	if !exists(other) || !exists(hidden) {
		t.Fatal("a file that is not a torrent was touched")
	}
}

// A failure that is not the file's fault leaves it for the next scan.
func TestATransientFailureIsRetried(t *testing.T) {
	dir := t.TempDir()
	r := &recorder{fail: errors.New("disk full")}
	p := filepath.Join(dir, "a.torrent")
	os.WriteFile(p, []byte("d4:infoe"), 0o644)
	start(t, dir, r)
	testwait.Until(t, 5*time.Second, "the retry", func() bool { return exists(p + ".added") })
	if r.count() != 1 {
		t.Fatalf("%d adds", r.count())
	}
}

func TestLinksOutOfTheDirectoryAreNotFollowed(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	secret := filepath.Join(outside, "secret.torrent")
	os.WriteFile(secret, []byte("d4:infoe"), 0o644)
	os.Symlink(secret, filepath.Join(dir, "link.torrent"))
	r := &recorder{}
	start(t, dir, r)
	time.Sleep(200 * time.Millisecond)
	if r.count() != 0 || !exists(secret) {
		t.Fatalf("a link out of the directory was read: %d adds", r.count())
	}
}

func TestConfigIsChecked(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	os.WriteFile(f, nil, 0o644)
	for _, c := range []Config{{}, {Dir: f, Interval: time.Second, Add: func(Item) error { return nil }}} {
		if err := Run(context.Background(), c); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
}
