// Package watchdir adds the .torrent and .magnet files dropped into a
// directory, as Transmission's watch-dir does: a file added (or already
// there) is renamed NAME.added, one that holds no torrent NAME.invalid. It
// polls, so it works on every file system (network mounts included).
package watchdir

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"btclient/torrent"
)

// ErrInvalid marks an Add error about the file itself (not a torrent, a
// bad magnet link): the file is renamed NAME.invalid instead of retried.
var ErrInvalid = errors.New("not a torrent")

// Item is one file found: exactly one of Metainfo and Magnet is set.
type Item struct {
	Path     string
	Metainfo []byte
	Magnet   string
}

// Config holds every setting of a watcher.
type Config struct {
	// Dir is the directory watched.
	Dir string
	// Interval is how often it is scanned. A file is taken once it has
	// kept its size and modification time for a whole interval, so one
	// still being written is left alone.
	Interval time.Duration
	// Add adds what a file holds. An error wrapping ErrInvalid renames the
	// file .invalid; another error leaves it for the next scan.
	Add    func(Item) error
	Logger *slog.Logger
}

// DefaultConfig scans every two seconds.
func DefaultConfig() Config { return Config{Interval: 2 * time.Second} }

func (c *Config) validate() error {
	if c.Dir == "" || c.Add == nil || c.Interval <= 0 {
		return errors.New("watchdir: Dir, Add and a positive Interval are required")
	}
	fi, err := os.Stat(c.Dir)
	if err != nil {
		return fmt.Errorf("watchdir: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("watchdir: %s is not a directory", c.Dir)
	}
	return nil
}

// stamp is what a file looked like at the last scan.
type stamp struct {
	size  int64
	mtime time.Time
}

// Run scans cfg.Dir until ctx is done.
func Run(ctx context.Context, cfg Config) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	w := &watcher{cfg: cfg, seen: map[string]stamp{}, failed: map[string]string{}}
	tick := time.NewTicker(cfg.Interval)
	defer tick.Stop()
	for {
		w.scan()
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

type watcher struct {
	cfg    Config
	seen   map[string]stamp  // candidates at the last scan
	failed map[string]string // the last error logged per file, so it is logged once
}

func (w *watcher) scan() {
	entries, err := os.ReadDir(w.cfg.Dir)
	if err != nil {
		w.cfg.Logger.Warn("watch directory unreadable", "dir", w.cfg.Dir, "err", err)
		return
	}
	now := map[string]stamp{}
	for _, e := range entries {
		name := e.Name()
		ext := strings.ToLower(filepath.Ext(name))
		if !e.Type().IsRegular() || (ext != ".torrent" && ext != ".magnet") || strings.HasPrefix(name, ".") {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		st := stamp{fi.Size(), fi.ModTime()}
		now[name] = st
		if prev, ok := w.seen[name]; !ok || prev != st {
			continue // new or still changing: next scan
		}
		w.take(name, ext)
	}
	w.seen = now
	for name := range w.failed {
		if _, ok := now[name]; !ok {
			delete(w.failed, name)
		}
	}
}

// take adds one file and renames it after the outcome.
func (w *watcher) take(name, ext string) {
	path := filepath.Join(w.cfg.Dir, name)
	item, err := w.read(name, ext)
	if err == nil {
		err = w.cfg.Add(item)
	}
	switch {
	case err == nil:
		w.rename(name, ".added")
		w.cfg.Logger.Info("added from the watch directory", "file", path)
	case errors.Is(err, ErrInvalid):
		w.rename(name, ".invalid")
		w.cfg.Logger.Warn("not a torrent: renamed .invalid", "file", path, "err", err)
	default:
		if w.failed[name] != err.Error() {
			w.failed[name] = err.Error()
			w.cfg.Logger.Warn("cannot add from the watch directory; trying again", "file", path, "err", err)
		}
	}
}

// read reads a file of the directory (never through a link out of it).
func (w *watcher) read(name, ext string) (Item, error) {
	item := Item{Path: filepath.Join(w.cfg.Dir, name)}
	f, err := os.OpenInRoot(w.cfg.Dir, name)
	if err != nil {
		return item, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, torrent.MaxTorrentSize+1))
	if err != nil {
		return item, err
	}
	if len(data) > torrent.MaxTorrentSize {
		return item, fmt.Errorf("%w: more than %d bytes", ErrInvalid, torrent.MaxTorrentSize)
	}
	if ext == ".torrent" {
		item.Metainfo = data
		return item, nil
	}
	link := strings.TrimSpace(string(data))
	if i := strings.IndexAny(link, "\r\n"); i >= 0 {
		link = strings.TrimSpace(link[:i])
	}
	if !torrent.IsMagnet(link) {
		return item, fmt.Errorf("%w: a .magnet file must hold a magnet link", ErrInvalid)
	}
	item.Magnet = link
	return item, nil
}

func (w *watcher) rename(name, suffix string) {
	from := filepath.Join(w.cfg.Dir, name)
	if err := os.Rename(from, from+suffix); err != nil {
		w.cfg.Logger.Warn("cannot rename a watched file", "file", from, "err", err)
	}
	delete(w.failed, name)
}
