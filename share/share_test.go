package share

import (
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"btclient/internal/testwait"
)

// recorder is what a Folder told its owner.
type recorder struct {
	mu        sync.Mutex
	published map[string][20]byte // entry → info hash
	names     map[[20]byte]string
	withdrawn [][20]byte
	created   int
	files     map[string][]string // entry → the paths in its torrent
}

func newRecorder() *recorder {
	return &recorder{published: map[string][20]byte{}, names: map[[20]byte]string{}, files: map[string][]string{}}
}

func (r *recorder) config(dir, cache string) Config {
	cfg := DefaultConfig()
	cfg.Dir, cfg.CacheFile, cfg.Interval = dir, cache, 30*time.Millisecond
	cfg.Publish = func(it Item) error {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.created++
		r.published[it.Entry] = it.Meta.InfoHash
		r.names[it.Meta.InfoHash] = it.Entry
		r.files[it.Entry] = nil
		for _, f := range it.Meta.Files {
			r.files[it.Entry] = append(r.files[it.Entry], it.Meta.FilePath(f))
		}
		return nil
	}
	cfg.Withdraw = func(ih [20]byte) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.withdrawn = append(r.withdrawn, ih)
		delete(r.published, r.names[ih])
	}
	cfg.Known = func(ih [20]byte) bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		_, ok := r.names[ih]
		return ok
	}
	return cfg
}

func (r *recorder) entries() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for e := range r.published {
		out = append(out, e)
	}
	slices.Sort(out)
	return out
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func run(t *testing.T, f *Folder) (stop func()) { return testwait.Run(t, "shared folder", f.Run) }

func TestFolderPublishesWhatItMay(t *testing.T) {
	outside := t.TempDir()
	writeFile(t, filepath.Join(outside, "secret.txt"), "not to be shared")
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a song.mp3"), "la la la")
	writeFile(t, filepath.Join(dir, "Canción de cuna", "uno.ogg"), "one")
	writeFile(t, filepath.Join(dir, "Canción de cuna", ".hidden"), "hidden inside")
	writeFile(t, filepath.Join(dir, "Папка", "файл.txt"), "cyrillic")
	writeFile(t, filepath.Join(dir, ".dotfile"), "hidden")
	writeFile(t, filepath.Join(dir, "empty"), "")
	if err := os.Symlink(filepath.Join(outside, "secret.txt"), filepath.Join(dir, "link-out")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "dir-link-out")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "secret.txt"), filepath.Join(dir, "Папка", "inner-link")); err != nil {
		t.Fatal(err)
	}

	rec := newRecorder()
	f, err := New(rec.config(dir, ""))
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, f)
	defer stop()
	want := []string{"Canción de cuna", "a song.mp3", "Папка"}
	testwait.Until(t, 10*time.Second, "the entries that may be shared", func() bool { return slices.Equal(rec.entries(), want) })
	stop()

	// Hidden files inside a folder and links that leave it are not in its torrent.
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if st := f.Status(); st.Entries != 3 || st.Shared != 3 || st.Pending != 0 {
		t.Errorf("status %+v, want 3 entries, 3 shared", st)
	}
	if rec.created != 3 {
		t.Errorf("%d torrents created, want 3", rec.created)
	}
	for entry, want := range map[string]string{"Canción de cuna": "Canción de cuna/uno.ogg", "Папка": "Папка/файл.txt"} {
		if got := rec.files[entry]; !slices.Equal(got, []string{want}) {
			t.Errorf("%s holds %q, want only %q", entry, got, want)
		}
	}
}

func TestFolderFollowsChanges(t *testing.T) {
	dir := t.TempDir()
	cache := filepath.Join(t.TempDir(), "share.json")
	writeFile(t, filepath.Join(dir, "keep.txt"), "kept")
	writeFile(t, filepath.Join(dir, "change.txt"), "before")
	writeFile(t, filepath.Join(dir, "remove.txt"), "removed later")
	rec := newRecorder()
	f, err := New(rec.config(dir, cache))
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, f)
	testwait.Until(t, 10*time.Second, "three entries published", func() bool { return len(rec.entries()) == 3 })
	rec.mu.Lock()
	before := rec.published["change.txt"]
	rec.mu.Unlock()

	writeFile(t, filepath.Join(dir, "change.txt"), "after the change")
	if err := os.Remove(filepath.Join(dir, "remove.txt")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "added.txt"), "new")
	want := []string{"added.txt", "change.txt", "keep.txt"}
	testwait.Until(t, 10*time.Second, "the changes published", func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return slices.Equal(keys(rec.published), want) && rec.published["change.txt"] != before
	})
	stop()
	rec.mu.Lock()
	created, withdrawn := rec.created, len(rec.withdrawn)
	rec.mu.Unlock()
	if created != 5 || withdrawn != 2 {
		t.Errorf("%d created, %d withdrawn; want 5 and 2 (the changed file's old torrent and the removed one)", created, withdrawn)
	}

	// A restart hashes nothing that did not change.
	f2, err := New(rec.config(dir, cache))
	if err != nil {
		t.Fatal(err)
	}
	stop = run(t, f2)
	testwait.Until(t, 10*time.Second, "the restart sharing all three", func() bool { st := f2.Status(); return st.Shared == 3 && st.Pending == 0 })
	stop()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.created != created {
		t.Errorf("the restart created %d torrents again", rec.created-created)
	}
}

func TestFolderWaitsForHalfWrittenFiles(t *testing.T) {
	dir := t.TempDir()
	rec := newRecorder()
	cfg := rec.config(dir, "")
	cfg.Interval = 200 * time.Millisecond
	f, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, f)
	defer stop()
	path := filepath.Join(dir, "growing.bin")
	fh, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	// Written a little every 50 ms for a second: never stable for a scan.
	for range 20 {
		if _, err := fh.WriteString("more data "); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
		if len(rec.entries()) != 0 {
			t.Fatal("a file still being written was published")
		}
	}
	fh.Close()
	testwait.Until(t, 10*time.Second, "the finished file published", func() bool { return len(rec.entries()) == 1 })
}

func TestNewRejectsBadConfig(t *testing.T) {
	file := filepath.Join(t.TempDir(), "f")
	writeFile(t, file, "x")
	rec := newRecorder()
	for name, cfg := range map[string]Config{
		"no dir":      rec.config("", ""),
		"missing dir": rec.config(filepath.Join(t.TempDir(), "nope"), ""),
		"a file":      rec.config(file, ""),
		"no publish":  {Dir: t.TempDir(), Interval: time.Second, Withdraw: func([20]byte) {}},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
