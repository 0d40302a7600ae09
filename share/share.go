// Package share turns a folder into torrents: every file and every top-level
// folder in it becomes a torrent, created in the background and handed to
// Publish; rescans pick up what was added, changed or removed later. An entry
// is published only once it has kept its size and modification times for a
// whole scan (a file still being written waits), nothing outside the folder
// is published (symbolic links are skipped: one inside the folder names
// something shared already, one that leaves it must not publish what is
// outside), and hidden names are skipped unless asked for.
package share

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"btclient/internal/atomicfile"
	"btclient/torrent"
)

// Item is one torrent made of an entry of the folder.
type Item struct {
	// Entry is the file or folder's name inside Dir.
	Entry    string
	Metainfo []byte
	Meta     *torrent.MetaInfo
}

// Config holds every setting of a shared folder.
type Config struct {
	// Dir is the folder shared.
	Dir string
	// Interval is how often it is scanned (default 2 s).
	Interval time.Duration
	// Hidden shares names starting with a dot too.
	Hidden bool
	// CacheFile remembers what was created (each entry's stamp and info
	// hash), so a restart hashes nothing that did not change; "" keeps
	// nothing.
	CacheFile string
	// Publish seeds a torrent just made. An error leaves the entry for the
	// next scan.
	Publish func(Item) error
	// Known reports whether a torrent remembered in CacheFile is still
	// seeded: then it is not created again.
	Known func(ih [20]byte) bool
	// Withdraw stops seeding a torrent whose entry changed or vanished
	// (its files are left alone).
	Withdraw func(ih [20]byte)
	Logger   *slog.Logger
}

// DefaultConfig scans every two seconds.
func DefaultConfig() Config { return Config{Interval: 2 * time.Second} }

func (c *Config) validate() error {
	if c.Dir == "" || c.Publish == nil || c.Withdraw == nil || c.Interval <= 0 {
		return errors.New("share: Dir, Publish, Withdraw and a positive Interval are required")
	}
	fi, err := os.Stat(c.Dir)
	if err != nil {
		return fmt.Errorf("share: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("share: %s is not a directory", c.Dir)
	}
	return nil
}

// Status is what a shared folder is doing.
type Status struct {
	Dir string `json:"dir"`
	// Entries is how many files and folders the last scan found.
	Entries int `json:"entries"`
	// Shared is how many of them are published.
	Shared int `json:"shared"`
	// Pending is how many wait to be created (or to stop changing).
	Pending int `json:"pending"`
	// Creating is the entry being hashed now, if any.
	Creating string `json:"creating,omitempty"`
}

// Folder is one shared folder. Run scans it; Status may be called from any
// goroutine.
type Folder struct {
	cfg Config
	dir string // absolute, symbolic links resolved

	mu     sync.Mutex
	status Status
}

// New checks cfg and returns the folder, not yet scanned.
func New(cfg Config) (*Folder, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Known == nil {
		cfg.Known = func([20]byte) bool { return false }
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err == nil {
		dir, err = filepath.EvalSymlinks(dir)
	}
	if err != nil {
		return nil, fmt.Errorf("share: %w", err)
	}
	return &Folder{cfg: cfg, dir: dir, status: Status{Dir: dir}}, nil
}

// Dir is the folder's absolute path.
func (f *Folder) Dir() string { return f.dir }

// Status returns what the folder is doing.
func (f *Folder) Status() Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.status
}

// stamp is what an entry looked like at a scan: a change to any file in it,
// or to the set of files, changes the stamp.
type stamp struct {
	Size  int64 `json:"size"`
	Files int   `json:"files"`
	// MTime is the latest modification time (ns) of its files and folders.
	MTime int64 `json:"mtime_ns"`
}

// published is an entry made into a torrent.
type published struct {
	stamp
	InfoHash string `json:"info_hash"`
}

// Run scans the folder every Interval until ctx is done, creating torrents
// one at a time between scans; it withdraws nothing when it stops (the
// torrents stay seeded by whoever holds them).
func (f *Folder) Run(ctx context.Context) error {
	s := &scanner{f: f, seen: map[string]stamp{}, pub: f.loadCache()}
	tick := time.NewTicker(f.cfg.Interval)
	defer tick.Stop()
	for {
		s.scan(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

type scanner struct {
	f      *Folder
	seen   map[string]stamp     // every entry at the last scan
	pub    map[string]published // entries published (or remembered from the cache)
	failed map[string]string    // the last error logged per entry, so it is logged once
	dirty  bool                 // pub changed since the cache was written
}

func (s *scanner) scan(ctx context.Context) {
	cfg := s.f.cfg
	now, err := s.f.entries()
	if err != nil {
		cfg.Logger.Warn("shared folder unreadable", "dir", s.f.dir, "err", err)
		return
	}
	// Entries gone or changed stop being seeded at once: their data no
	// longer matches what peers would ask for.
	for name, p := range s.pub {
		if st, ok := now[name]; ok && st == p.stamp {
			continue
		}
		if ih, err := parseHash(p.InfoHash); err == nil {
			cfg.Withdraw(ih)
		}
		delete(s.pub, name)
		s.dirty = true
		cfg.Logger.Info("shared entry withdrawn", "dir", s.f.dir, "entry", name, "changed", now[name] != stamp{})
	}
	var todo []string
	for name, st := range now {
		if _, ok := s.pub[name]; ok {
			continue
		}
		if prev, ok := s.seen[name]; ok && prev == st {
			todo = append(todo, name)
		}
	}
	slices.Sort(todo)
	s.seen = now
	s.setStatus(len(now), len(todo), "")
	// Creation takes turns with scanning: a removal is noticed within a
	// scan or so even while a big folder is being hashed.
	deadline := time.Now().Add(cfg.Interval)
	for i, name := range todo {
		if ctx.Err() != nil || (i > 0 && time.Now().After(deadline)) {
			break
		}
		s.setStatus(len(now), len(todo)-i, name)
		s.create(ctx, name, now[name])
	}
	s.setStatus(len(now), s.pending(now), "")
	if s.dirty {
		s.saveCache()
	}
}

func (s *scanner) pending(now map[string]stamp) int {
	n := 0
	for name := range now {
		if _, ok := s.pub[name]; !ok {
			n++
		}
	}
	return n
}

func (s *scanner) setStatus(entries, pending int, creating string) {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	s.f.status.Entries, s.f.status.Shared = entries, len(s.pub)
	s.f.status.Pending, s.f.status.Creating = pending, creating
}

// create makes the torrent of one stable entry and publishes it.
func (s *scanner) create(ctx context.Context, name string, st stamp) {
	cfg := s.f.cfg
	path := filepath.Join(s.f.dir, name)
	start := time.Now()
	data, m, err := torrent.CreateContext(ctx, path, torrent.CreateOptions{SkipHidden: !cfg.Hidden})
	if err == nil {
		// Written to while it was hashed: the next scans try again.
		if again, serr := s.f.stampOf(name); serr != nil || again != st {
			return
		}
		err = cfg.Publish(Item{Entry: name, Metainfo: data, Meta: m})
	}
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		if s.failed == nil {
			s.failed = map[string]string{}
		}
		if s.failed[name] != err.Error() {
			s.failed[name] = err.Error()
			cfg.Logger.Warn("cannot share entry", "dir", s.f.dir, "entry", name, "err", err)
		}
		return
	}
	delete(s.failed, name)
	s.pub[name] = published{stamp: st, InfoHash: hex.EncodeToString(m.InfoHash[:])}
	s.dirty = true
	cfg.Logger.Info("shared", "dir", s.f.dir, "entry", name, "size", m.TotalLength,
		"files", len(m.Files), "info_hash", hex.EncodeToString(m.InfoHash[:]), "took", time.Since(start).Round(time.Millisecond))
}

// entries stamps every file and folder of the shared folder that may be
// shared.
func (f *Folder) entries() (map[string]stamp, error) {
	list, err := os.ReadDir(f.dir)
	if err != nil {
		return nil, err
	}
	out := make(map[string]stamp, len(list))
	for _, e := range list {
		if !f.cfg.Hidden && strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if !e.Type().IsRegular() && !e.IsDir() {
			continue // symbolic links, devices, sockets
		}
		st, err := f.stampOf(e.Name())
		if err != nil || st.Size == 0 {
			continue // vanished, unreadable, or nothing to share yet
		}
		out[e.Name()] = st
	}
	return out, nil
}

// stampOf stamps one entry: a file, or a folder's regular files (those
// that torrent.Create takes).
func (f *Folder) stampOf(name string) (stamp, error) {
	root := filepath.Join(f.dir, name)
	var st stamp
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != root && !f.cfg.Hidden && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() && !d.IsDir() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st.MTime = max(st.MTime, fi.ModTime().UnixNano())
		if d.Type().IsRegular() {
			st.Size += fi.Size()
			st.Files++
		}
		return nil
	})
	return st, err
}

// cache is what CacheFile holds.
type cache struct {
	Dir     string               `json:"dir"`
	Entries map[string]published `json:"entries"`
}

// loadCache returns the entries remembered for this folder that are still
// seeded; the first scan keeps those whose stamp is unchanged.
func (f *Folder) loadCache() map[string]published {
	pub := map[string]published{}
	if f.cfg.CacheFile == "" {
		return pub
	}
	data, err := os.ReadFile(f.cfg.CacheFile)
	if err != nil {
		return pub
	}
	var c cache
	if json.Unmarshal(data, &c) != nil || c.Dir != f.dir {
		return pub
	}
	for name, p := range c.Entries {
		if ih, err := parseHash(p.InfoHash); err == nil && f.cfg.Known(ih) && !strings.ContainsAny(name, "/\\") {
			pub[name] = p
		}
	}
	return pub
}

func (s *scanner) saveCache() {
	if s.f.cfg.CacheFile == "" {
		return
	}
	data, err := json.Marshal(cache{Dir: s.f.dir, Entries: s.pub})
	if err == nil {
		err = atomicfile.Write(s.f.cfg.CacheFile, data, 0o600)
	}
	if err != nil {
		s.f.cfg.Logger.Warn("cannot save the shared folder's cache", "err", err)
		return
	}
	s.dirty = false
}

func parseHash(s string) ([20]byte, error) {
	var ih [20]byte
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 20 {
		return ih, fmt.Errorf("bad info hash %q", s)
	}
	copy(ih[:], b)
	return ih, nil
}
