package rpc

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"btclient/index"
	"btclient/session"
	"btclient/torrent"
)

// method serves one RPC method: its arguments in, its response arguments
// (nil: none) or the error the result reports out.
type method func(s *Server, a args) (any, error)

var methods map[string]method

func init() {
	methods = map[string]method{
		"session-get":       (*Server).sessionGet,
		"session-set":       (*Server).sessionSet,
		"session-stats":     (*Server).sessionStats,
		"session-close":     (*Server).sessionClose,
		"free-space":        (*Server).freeSpace,
		"torrent-add":       (*Server).torrentAdd,
		"torrent-get":       (*Server).torrentGet,
		"torrent-set":       (*Server).torrentSet,
		"torrent-remove":    (*Server).torrentRemove,
		"torrent-start":     action((*session.Torrent).Start),
		"torrent-start-now": action((*session.Torrent).Start),
		"torrent-stop":      action((*session.Torrent).Stop),
		"torrent-verify":    action((*session.Torrent).Verify),
		// btclient's own: a search of the overlay's index by name.
		"btclient-search": (*Server).search,
	}
}

// rpcVersion is the Transmission RPC version whose names btclient speaks:
// 16, Transmission 3.00's.
const rpcVersion = 16

func (s *Server) sessionGet(a args) (any, error) {
	fields, _, err := a.strings("fields")
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	lim := s.limits
	s.mu.Unlock()
	up, down := s.sess.Rates()
	dir := s.sess.DownloadDir()
	all := map[string]any{
		"version":                  s.cfg.Version,
		"rpc-version":              rpcVersion,
		"rpc-version-minimum":      1,
		"session-id":               s.sessionID,
		"download-dir":             dir,
		"peer-port":                s.sess.PeerPort(),
		"speed-limit-up":           lim.upKB,
		"speed-limit-up-enabled":   up > 0,
		"speed-limit-down":         lim.downKB,
		"speed-limit-down-enabled": down > 0,
		// What btclient does not have, said as Transmission would.
		"alt-speed-enabled":      false,
		"alt-speed-time-enabled": false,
		"alt-speed-up":           0,
		"alt-speed-down":         0,
		"alt-speed-time-begin":   0,
		"alt-speed-time-end":     0,
		"alt-speed-time-day":     0,
		"start-added-torrents":   true,
		"peer-limit-per-torrent": s.cfg.PeerLimit,
		// No global cap: each torrent's applies to each.
		"peer-limit-global":          s.cfg.PeerLimit * max(1, len(s.sess.List())),
		"download-queue-enabled":     false,
		"seed-queue-enabled":         false,
		"seedRatioLimited":           false,
		"seedRatioLimit":             0,
		"idle-seeding-limit-enabled": false,
		"incomplete-dir-enabled":     false,
		"rename-partial-files":       false,
		"blocklist-enabled":          false,
		"port-forwarding-enabled":    false,
		"utp-enabled":                false,
		"units": map[string]any{
			"speed-units":  []string{"kB/s", "MB/s", "GB/s", "TB/s"},
			"speed-bytes":  kB,
			"size-units":   []string{"kB", "MB", "GB", "TB"},
			"size-bytes":   1000,
			"memory-units": []string{"KiB", "MiB", "GiB", "TiB"},
			"memory-bytes": 1024,
		},
	}
	if free, err := freeBytes(dir); err == nil {
		all["download-dir-free-space"] = free
	}
	if len(fields) == 0 {
		return all, nil
	}
	out := make(map[string]any, len(fields))
	for _, f := range fields {
		if v, ok := all[f]; ok {
			out[f] = v
		}
	}
	return out, nil
}

// sessionSet changes what btclient can change; other keys are ignored, as
// Transmission ignores keys it does not know.
func (s *Server) sessionSet(a args) (any, error) {
	if dir, ok, err := a.str("download-dir"); err != nil {
		return nil, err
	} else if ok {
		if !filepath.IsAbs(dir) {
			return nil, errors.New("download directory path is not absolute")
		}
		if err := s.sess.SetDownloadDir(dir); err != nil {
			return nil, err
		}
	}
	if port, ok, err := a.integer("peer-port"); err != nil {
		return nil, err
	} else if ok && int(port) != s.sess.PeerPort() {
		return nil, fmt.Errorf("the peer port cannot change while the daemon runs: restart it with --port %d", port)
	}
	if on, ok, err := a.boolean("alt-speed-enabled"); err != nil {
		return nil, err
	} else if ok && on {
		return nil, errors.New("btclient has no alternative (turtle) speed limits")
	}
	up, down := s.sess.Rates()
	s.mu.Lock()
	lim := s.limits
	s.mu.Unlock()
	var err1, err2 error
	up, lim.upKB, err1 = applyLimit(a, "speed-limit-up", "speed-limit-up-enabled", up, lim.upKB)
	down, lim.downKB, err2 = applyLimit(a, "speed-limit-down", "speed-limit-down-enabled", down, lim.downKB)
	if err := errors.Join(err1, err2); err != nil {
		return nil, err
	}
	if err := s.sess.SetRates(up, down); err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.limits = lim
	s.mu.Unlock()
	return nil, nil
}

// applyLimit applies a Transmission limit pair (a value in kB/s and whether
// it is enabled) to a cap in bytes/s (0: none) and the remembered value.
func applyLimit(a args, valueKey, enabledKey string, rate, rememberedKB int64) (newRate, newKB int64, err error) {
	kb, hasValue, err := a.integer(valueKey)
	if err != nil {
		return rate, rememberedKB, err
	}
	on, hasOn, err := a.boolean(enabledKey)
	if err != nil {
		return rate, rememberedKB, err
	}
	if hasValue {
		if kb <= 0 || kb > 1<<40 {
			return rate, rememberedKB, fmt.Errorf("%s must be a positive number of kB/s (to lift the limit, set %s to false)", valueKey, enabledKey)
		}
		rememberedKB = kb
	}
	enabled := rate > 0
	if hasOn {
		enabled = on
	}
	if !enabled {
		return 0, rememberedKB, nil
	}
	return rememberedKB * kB, rememberedKB, nil
}

func (s *Server) sessionStats(args) (any, error) {
	tot := s.sess.Totals()
	s.mu.Lock()
	added := s.filesAdded
	s.mu.Unlock()
	secs := int64(time.Since(s.started).Seconds())
	return map[string]any{
		"activeTorrentCount": tot.Active,
		"pausedTorrentCount": tot.Paused,
		"torrentCount":       tot.Torrents,
		"downloadSpeed":      int64(tot.DownRate),
		"uploadSpeed":        int64(tot.UpRate),
		"current-stats": map[string]any{
			"uploadedBytes": tot.Uploaded, "downloadedBytes": tot.Downloaded,
			"filesAdded": added, "sessionCount": 1, "secondsActive": secs,
		},
		// btclient keeps each torrent's totals across runs, not the
		// session's time: these are this run's time and every torrent's
		// bytes.
		"cumulative-stats": map[string]any{
			"uploadedBytes": tot.UploadedEver, "downloadedBytes": tot.DownloadedEver,
			"filesAdded": tot.Torrents, "sessionCount": 1, "secondsActive": secs,
		},
	}, nil
}

func (s *Server) sessionClose(args) (any, error) {
	if s.cfg.Close == nil {
		return nil, errors.New("session-close is not enabled here")
	}
	go s.cfg.Close()
	return nil, nil
}

func (s *Server) freeSpace(a args) (any, error) {
	p, ok, err := a.str("path")
	if err != nil {
		return nil, err
	}
	if !ok || !filepath.IsAbs(p) {
		return nil, errors.New(`argument "path" must be an absolute directory`)
	}
	if !s.inside(p, s.sess.AllowedDirs()) {
		return nil, fmt.Errorf("%s is outside the directories this daemon may write", p)
	}
	free, err := freeBytes(p)
	if err != nil {
		return nil, fmt.Errorf("free space of %s: %w", p, err)
	}
	return map[string]any{"path": p, "size-bytes": free}, nil
}

func freeBytes(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// inside reports whether the absolute path p is one of dirs or below one.
func (s *Server) inside(p string, dirs []string) bool {
	p = filepath.Clean(p)
	for _, d := range dirs {
		if p == d || strings.HasPrefix(p, d+string(filepath.Separator)) {
			return true
		}
	}
	return false
}

func (s *Server) torrentAdd(a args) (any, error) {
	var opt session.AddOptions
	meta, hasMeta, err := a.str("metainfo")
	if err != nil {
		return nil, err
	}
	name, hasName, err := a.str("filename")
	if err != nil {
		return nil, err
	}
	switch {
	case hasMeta:
		data, err := decodeMetainfo(meta)
		if err != nil {
			return nil, err
		}
		opt.Metainfo = data
	case hasName && torrent.IsMagnet(name):
		opt.Magnet = name
	case hasName && (strings.HasPrefix(name, "http://") || strings.HasPrefix(name, "https://")):
		return nil, errors.New("btclient does not fetch torrents by URL: send the .torrent's bytes as metainfo")
	case hasName:
		data, err := s.readTorrentFile(name)
		if err != nil {
			return nil, err
		}
		opt.Metainfo = data
	default:
		return nil, errors.New(`torrent-add needs "filename" (a path or a magnet link) or "metainfo"`)
	}
	if dir, ok, err := a.str("download-dir"); err != nil {
		return nil, err
	} else if ok && dir != "" {
		if !filepath.IsAbs(dir) {
			return nil, errors.New("download directory path is not absolute")
		}
		opt.DownloadDir = dir
	}
	if opt.Paused, _, err = a.boolean("paused"); err != nil {
		return nil, err
	}
	t, dup, err := s.sess.Add(opt)
	if t == nil {
		if errors.Is(err, session.ErrBadInput) {
			return nil, fmt.Errorf("invalid or corrupt torrent file: %w", err)
		}
		return nil, err
	}
	st := t.Status()
	obj := map[string]any{"id": st.ID, "name": st.Name, "hashString": fmt.Sprintf("%x", st.InfoHash)}
	if dup {
		return map[string]any{"torrent-duplicate": obj}, nil
	}
	s.mu.Lock()
	s.filesAdded++
	s.mu.Unlock()
	if err != nil {
		// Added and saved, but it would not start: the error shows on
		// the torrent.
		s.log.Warn("rpc: added torrent did not start", "torrent", st.ID, "err", err)
	}
	return map[string]any{"torrent-added": obj}, nil
}

// decodeMetainfo decodes base64 .torrent bytes (line breaks allowed, as
// some clients wrap them).
func decodeMetainfo(b64 string) ([]byte, error) {
	clean := strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == ' ' || r == '\t' {
			return -1
		}
		return r
	}, b64)
	if base64.StdEncoding.DecodedLen(len(clean)) > torrent.MaxTorrentSize+3 {
		return nil, fmt.Errorf("invalid or corrupt torrent file: more than %d bytes", torrent.MaxTorrentSize)
	}
	data, err := base64.StdEncoding.DecodeString(clean)
	if err != nil {
		data, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(clean, "="))
	}
	if err != nil {
		return nil, errors.New("invalid or corrupt torrent file: metainfo is not base64")
	}
	return data, nil
}

// readTorrentFile reads a .torrent named by torrent-add's filename. It must
// be inside one of the torrent directories: neither "..", an absolute path
// elsewhere nor a symbolic link leads out of them.
func (s *Server) readTorrentFile(name string) ([]byte, error) {
	refuse := fmt.Errorf("%s is outside the directories this daemon reads torrents from (%s)",
		truncate(name, 200), strings.Join(s.cfg.TorrentDirs, ", "))
	if strings.ContainsRune(name, 0) {
		return nil, refuse
	}
	var firstErr error
	for _, dir := range s.cfg.TorrentDirs {
		rel := name
		if filepath.IsAbs(name) {
			r, err := filepath.Rel(dir, filepath.Clean(name))
			if err != nil || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
				continue
			}
			rel = r
		}
		f, err := os.OpenInRoot(dir, rel)
		if errors.Is(err, fs.ErrNotExist) {
			if firstErr == nil {
				firstErr = fmt.Errorf("invalid or corrupt torrent file: %s: no such file", truncate(name, 200))
			}
			continue
		}
		if err != nil {
			return nil, refuse // a link or ".." out of dir, or unreadable
		}
		defer f.Close()
		data, err := io.ReadAll(io.LimitReader(f, torrent.MaxTorrentSize+1))
		if err != nil {
			return nil, fmt.Errorf("invalid or corrupt torrent file: %w", err)
		}
		if len(data) > torrent.MaxTorrentSize {
			return nil, fmt.Errorf("invalid or corrupt torrent file: more than %d bytes", torrent.MaxTorrentSize)
		}
		return data, nil
	}
	if firstErr != nil {
		return nil, firstErr
	}
	return nil, refuse
}

// action is a torrent-start, -stop or -verify: f on every selected torrent.
func action(f func(*session.Torrent) error) method {
	return func(s *Server, a args) (any, error) {
		sel, err := a.ids()
		if err != nil {
			return nil, err
		}
		var errs []error
		for _, t := range s.selectTorrents(sel) {
			if err := f(t); err != nil {
				errs = append(errs, err)
			}
		}
		return nil, errors.Join(errs...)
	}
}

func (s *Server) torrentRemove(a args) (any, error) {
	sel, err := a.ids()
	if err != nil {
		return nil, err
	}
	del, _, err := a.boolean("delete-local-data")
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, t := range s.selectTorrents(sel) {
		err := s.sess.Remove(t.ID(), del)
		if err != nil && errors.Is(err, session.ErrNotFound) {
			continue // removed meanwhile
		}
		s.mu.Lock()
		s.removed = append(s.removed, removal{t.ID(), time.Now()})
		delete(s.remembered, t.ID())
		s.mu.Unlock()
		if err != nil {
			errs = append(errs, err)
		}
	}
	return nil, errors.Join(errs...)
}

// torrentSet changes per-torrent limits; other keys are ignored, as
// Transmission ignores keys it does not know.
func (s *Server) torrentSet(a args) (any, error) {
	sel, err := a.ids()
	if err != nil {
		return nil, err
	}
	if a.has("location") {
		return nil, errors.New("btclient cannot move a torrent's data (torrent-set location)")
	}
	var errs []error
	for _, t := range s.selectTorrents(sel) {
		st := t.Status()
		lim := s.limitsOf(st)
		up, upKB, err1 := applyLimit(a, "uploadLimit", "uploadLimited", st.UploadLimit, lim.upKB)
		down, downKB, err2 := applyLimit(a, "downloadLimit", "downloadLimited", st.DownloadLimit, lim.downKB)
		if err := errors.Join(err1, err2); err != nil {
			return nil, err
		}
		if err := t.SetRates(up, down); err != nil {
			errs = append(errs, err)
			continue
		}
		s.mu.Lock()
		s.remembered[st.ID] = speedLimits{upKB, downKB}
		s.mu.Unlock()
	}
	return nil, errors.Join(errs...)
}

// limitsOf returns a torrent's limits in kB/s: the caps in force, or the
// values remembered from before they were disabled.
func (s *Server) limitsOf(st session.Status) speedLimits {
	s.mu.Lock()
	lim, ok := s.remembered[st.ID]
	s.mu.Unlock()
	if !ok {
		lim = speedLimits{defaultLimitKB, defaultLimitKB}
	}
	if st.UploadLimit > 0 {
		lim.upKB = max(1, st.UploadLimit/kB)
	}
	if st.DownloadLimit > 0 {
		lim.downKB = max(1, st.DownloadLimit/kB)
	}
	return lim
}

// selectTorrents returns the torrents sel names that exist, in id order
// (Transmission skips ids it does not know).
func (s *Server) selectTorrents(sel idSelector) []*session.Torrent {
	all := s.sess.List()
	if sel.all {
		return all
	}
	var out []*session.Torrent
	for _, t := range all {
		if slices.Contains(sel.ids, t.ID()) || slices.Contains(sel.hashes, t.InfoHash()) ||
			(sel.recentlyActive && s.recentlyActive(t)) {
			out = append(out, t)
		}
	}
	return out
}

// recentlyActive reports whether t moved data, changed state or was added
// within the RecentlyActive window.
func (s *Server) recentlyActive(t *session.Torrent) bool {
	st := t.Status()
	if st.DownRate > 0 || st.UpRate > 0 || st.State == session.StateChecking || st.State == session.StateMetadata {
		return true
	}
	since := time.Now().Add(-s.cfg.RecentlyActive)
	return st.AddedAt.After(since) || st.StartedAt.After(since) || st.DoneAt.After(since)
}

// recentlyRemoved returns the ids removed within the RecentlyActive window.
func (s *Server) recentlyRemoved() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	since := time.Now().Add(-s.cfg.RecentlyActive)
	keep := s.removed[:0]
	ids := []int{}
	for _, r := range s.removed {
		if r.at.After(since) {
			keep = append(keep, r)
			ids = append(ids, r.id)
		}
	}
	s.removed = keep
	return ids
}

// search answers btclient-search: arguments "query" (words) and "limit"
// (default 50, at most 500); it returns "results", best first.
func (s *Server) search(a args) (any, error) {
	if s.cfg.Search == nil {
		return nil, errors.New("search needs the overlay (this daemon runs without one)")
	}
	query, ok, err := a.str("query")
	if err != nil {
		return nil, err
	}
	if !ok || strings.TrimSpace(query) == "" {
		return nil, errors.New("query is required")
	}
	limit, ok, err := a.integer("limit")
	if err != nil {
		return nil, err
	}
	if !ok {
		limit = 50
	}
	if limit < 1 || limit > 500 {
		return nil, errors.New("limit must be 1-500")
	}
	select {
	case s.searches <- struct{}{}:
		defer func() { <-s.searches }()
	default:
		return nil, errors.New("too many searches at once; try again")
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.SearchTimeout)
	defer cancel()
	results, err := s.cfg.Search(ctx, query, int(limit))
	if err != nil {
		return nil, err
	}
	if results == nil {
		results = []index.Result{}
	}
	return map[string]any{"results": results}, nil
}
