package main

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"btclient/index"
	"btclient/session"
	"btclient/share"
	"btclient/torrent"
)

const shareUsage = `btclient share [flags] DIR...

Share folders: every file and every top-level folder in each DIR becomes a
torrent (created in the background, saved in --state-dir) that is seeded and
published in the overlay's index, so that 'btclient search' on any node finds
it by name. Files added, changed or removed later are picked up within a few
seconds. It is 'btclient daemon --share DIR': the RPC, the web page and
every daemon flag work the same.`

// sharing runs the shared folders and the index of a daemon.
type sharing struct {
	sess    *session.Session
	log     *slog.Logger
	folders []*share.Folder
	pub     *index.Publisher // nil without an overlay
	store   index.Store
	poke    chan struct{} // a torrent was just added: publish it now
}

// shareDirs resolves the --share folders; they become directories the
// session may seed from.
func shareDirs(dirs []string) ([]string, error) {
	var out []string
	for _, d := range dirs {
		abs, err := filepath.Abs(d)
		if err == nil {
			abs, err = filepath.EvalSymlinks(abs)
		}
		if err != nil {
			return nil, fmt.Errorf("--share %s: %w", d, err)
		}
		if fi, err := os.Stat(abs); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("--share %s: not a directory", d)
		}
		out = append(out, abs)
	}
	return out, nil
}

// newSharing prepares the folders of dirs (absolute) and, when the session
// has an overlay, the index that publishes what it seeds.
func newSharing(sess *session.Session, dirs []string, hidden bool, stateDir string, log *slog.Logger) (*sharing, error) {
	sh := &sharing{sess: sess, log: log, poke: make(chan struct{}, 1)}
	if node := sess.Discovery().Overlay(); node != nil {
		sh.store = index.OverlayStore(node)
		sh.pub = index.NewPublisher(sh.store, 0)
	}
	for _, dir := range dirs {
		cfg := share.DefaultConfig()
		cfg.Dir, cfg.Hidden, cfg.Logger = dir, hidden, log
		if stateDir != "" {
			sum := sha1.Sum([]byte(dir))
			cfg.CacheFile = filepath.Join(stateDir, "share-"+hex.EncodeToString(sum[:8])+".json")
		}
		cfg.Publish = func(it share.Item) error {
			_, _, err := sess.Add(session.AddOptions{Metainfo: it.Metainfo, DownloadDir: dir, Verified: true})
			if err == nil {
				sh.nudge()
			}
			return err
		}
		cfg.Known = func(ih [20]byte) bool { return sess.ByHash(ih) != nil }
		cfg.Withdraw = func(ih [20]byte) {
			if t := sess.ByHash(ih); t != nil {
				if err := sess.Remove(t.ID(), false); err != nil {
					log.Warn("cannot stop seeding a changed shared entry", "err", err)
				}
				sh.nudge()
			}
		}
		f, err := share.New(cfg)
		if err != nil {
			return nil, err
		}
		sh.folders = append(sh.folders, f)
	}
	return sh, nil
}

func (sh *sharing) nudge() {
	select {
	case sh.poke <- struct{}{}:
	default:
	}
}

// run scans the folders and keeps the index published until ctx is done.
func (sh *sharing) run(ctx context.Context, wg *sync.WaitGroup) {
	for _, f := range sh.folders {
		wg.Go(func() {
			sh.log.Info("sharing a folder", "dir", f.Dir())
			if err := f.Run(ctx); err != nil {
				sh.log.Error("shared folder", "dir", f.Dir(), "err", err)
			}
		})
	}
	if sh.pub != nil {
		wg.Go(func() {
			sh.pub.Follow(ctx, sh.seeded, 2*time.Second, index.RenewEvery, sh.poke, sh.log)
		})
	}
}

// seeded is what the index publishes: every complete torrent that is not
// private (BEP 27 torrents are announced to their trackers only).
func (sh *sharing) seeded() []*torrent.MetaInfo {
	var out []*torrent.MetaInfo
	for _, t := range sh.sess.List() {
		m := t.Meta()
		if m == nil || m.Private {
			continue
		}
		if st := t.Status(); st.State == session.StateSeeding {
			out = append(out, m)
		}
	}
	return out
}

// search answers the RPC's btclient-search; nil without an overlay.
func (sh *sharing) search() func(ctx context.Context, query string, limit int) ([]index.Result, error) {
	if sh.store == nil {
		return nil
	}
	return func(ctx context.Context, query string, limit int) ([]index.Result, error) {
		return index.Search(ctx, sh.store, query, limit)
	}
}

// status is the shared folders' part of /status.
func (sh *sharing) status() map[string]any {
	folders := make([]share.Status, 0, len(sh.folders))
	for _, f := range sh.folders {
		folders = append(folders, f.Status())
	}
	out := map[string]any{"folders": folders}
	if sh.pub != nil {
		out["published"] = sh.pub.Len()
	}
	return out
}
