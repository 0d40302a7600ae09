package session

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"btclient/discovery"
	"btclient/peerwire"
	"btclient/storage"
	"btclient/swarm"
	"btclient/torrent"
)

// checkpointEvery is how often running torrents' counters and resume data
// are saved (only those whose numbers moved).
const checkpointEvery = 30 * time.Second

// ErrNotFound reports a torrent id the session does not hold.
var ErrNotFound = errors.New("session: no such torrent")

// ErrBadInput is the kind of every error about what a caller asked for (a
// malformed torrent or magnet, a directory outside those allowed), as
// opposed to a failure of the machine.
var ErrBadInput = errors.New("bad input")

// Session holds many torrents. Create it with New, then Run it; torrents may
// be added before or while it runs.
type Session struct {
	cfg    Config
	log    *slog.Logger
	state  stateDir
	peerID [20]byte
	ln     net.Listener
	port   int
	disc   *discovery.Service
	up     *swarm.Limiter // caps shared by every torrent
	down   *swarm.Limiter

	wg    sync.WaitGroup // every torrent's run
	ready chan struct{}  // closed once Run has restored and started the torrents

	mu       sync.Mutex
	byID     map[int]*Torrent
	byHash   map[[20]byte]*Torrent
	settings settings
	ctx      context.Context // the running session's, nil before Run and after
	dirs     []string        // directories torrents may download into
	// defaultDir is where a torrent goes unless told otherwise: dirs[0]
	// until SetDownloadDir.
	defaultDir string
}

// New binds the peer-wire listener and the discovery service's and loads
// the settings from the state directory; nothing runs until Run.
func New(cfg Config) (*Session, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Session{
		cfg:    cfg,
		log:    cfg.Logger,
		state:  stateDir{cfg.StateDir},
		byID:   make(map[int]*Torrent),
		byHash: make(map[[20]byte]*Torrent),
		ready:  make(chan struct{}),
	}
	for _, d := range append([]string{cfg.DownloadDir}, cfg.AllowedDirs...) {
		abs, err := filepath.Abs(d)
		if err != nil {
			return nil, fmt.Errorf("session: %w", err)
		}
		s.dirs = append(s.dirs, abs)
	}
	s.defaultDir = s.dirs[0]
	if err := s.state.init(); err != nil {
		return nil, err
	}
	var err error
	if s.settings, err = s.state.loadSettings(); err != nil {
		return nil, err
	}
	if s.settings.NextID == 0 {
		s.settings.NextID = 1
	}
	// Caps given in the configuration (flags) win; a daemon restarted
	// without them keeps what it was last set to (session-set). The
	// single-torrent command never inherits another run's caps.
	if !cfg.Restore || cfg.UploadRate != 0 || cfg.DownloadRate != 0 {
		s.settings.UploadRate, s.settings.DownloadRate = cfg.UploadRate, cfg.DownloadRate
	}
	s.up, s.down = swarm.NewLimiter(s.settings.UploadRate), swarm.NewLimiter(s.settings.DownloadRate)
	if s.peerID, err = peerwire.NewPeerID(); err != nil {
		return nil, err
	}
	if s.ln, err = net.Listen("tcp", cfg.ListenAddr); err != nil {
		return nil, fmt.Errorf("peer-wire listener: %w", err)
	}
	s.port = s.ln.Addr().(*net.TCPAddr).Port
	dcfg := cfg.Discovery
	dcfg.PeerPort = s.port
	dcfg.Logger = cfg.Logger
	if d := dcfg.DHT; d != nil {
		// The DHT's UDP port is by default the peer-wire port's number,
		// as other clients have it; if that is taken, any.
		if host, port, err := net.SplitHostPort(d.ListenAddr); err == nil && port == "0" {
			dc := *d
			dc.ListenAddr = net.JoinHostPort(host, strconv.Itoa(s.port))
			dcfg.DHT, dcfg.DHTAnyPort = &dc, true
		}
	}
	if s.disc, err = discovery.New(dcfg); err != nil {
		s.ln.Close()
		return nil, err
	}
	return s, nil
}

// PeerPort is the peer-wire port the session listens on.
func (s *Session) PeerPort() int { return s.port }

// PeerID is the session's peer id.
func (s *Session) PeerID() [20]byte { return s.peerID }

// Discovery is the session's discovery service.
func (s *Session) Discovery() *discovery.Service { return s.disc }

// runContext is the running session's context, nil when it is not running.
func (s *Session) runContext() context.Context {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ctx
}

// Run serves peers and runs the torrents until ctx is done, then stops
// every torrent, saves its state and, last, the discovery service (so the
// torrents' stopped announces still go out).
func (s *Session) Run(ctx context.Context) error {
	discCtx, stopDisc := context.WithCancel(context.WithoutCancel(ctx))
	defer stopDisc()
	discErr := make(chan error, 1)
	go func() { discErr <- s.disc.Run(discCtx) }()

	if s.cfg.Restore {
		s.restore()
	}
	s.mu.Lock()
	s.ctx = ctx
	var start []*Torrent
	for _, t := range s.byID {
		start = append(start, t)
	}
	s.mu.Unlock()
	for _, t := range start {
		t.mu.Lock()
		paused := t.rec.Paused
		t.mu.Unlock()
		if !paused {
			if err := t.start(); err != nil {
				s.log.Error("cannot start torrent", "torrent", t.id, "err", err)
			}
		}
	}

	close(s.ready)
	var serve sync.WaitGroup
	serve.Go(func() {
		swarm.Serve(ctx, s.ln, s.route, s.cfg.Swarm.MaxHandshakes, s.cfg.Swarm.HandshakeTimeout, s.log)
	})
	tick := time.NewTicker(checkpointEvery)
	defer tick.Stop()
	var idle <-chan time.Time
	if s.cfg.IdleAfter > 0 {
		it := time.NewTicker(s.cfg.IdleAfter / 3)
		defer it.Stop()
		idle = it.C
	}
	var err error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err = <-discErr:
			break loop
		case <-tick.C:
			for _, t := range s.List() {
				t.checkpoint()
			}
		case now := <-idle:
			for _, t := range s.List() {
				t.maybeSleep(now, s.cfg.IdleAfter)
			}
		}
	}
	s.mu.Lock()
	s.ctx = nil
	s.mu.Unlock()
	// Every run derives from ctx; the torrents stop and save themselves.
	serve.Wait()
	s.wg.Wait()
	stopDisc()
	if err == nil {
		err = <-discErr
	}
	return err
}

// Ready is closed once Run has restored the saved torrents and started
// those not paused: from then on List has every one.
func (s *Session) Ready() <-chan struct{} { return s.ready }

// route finds the running torrent an incoming handshake is for.
func (s *Session) route(ih [20]byte) *swarm.Torrent {
	s.mu.Lock()
	t := s.byHash[ih]
	s.mu.Unlock()
	if t == nil {
		return nil
	}
	return t.wake()
}

// restore brings back the torrents of the state directory.
func (s *Session) restore() {
	recs, errs := s.state.loadRecords()
	for _, err := range errs {
		s.log.Warn("skipping a saved torrent", "err", err)
	}
	for _, r := range recs {
		var ih [20]byte
		if b, err := hex.DecodeString(r.InfoHash); err != nil || len(b) != 20 {
			s.log.Warn("skipping a saved torrent", "info_hash", r.InfoHash)
			continue
		} else {
			copy(ih[:], b)
		}
		m, err := s.state.loadMeta(ih)
		if err != nil {
			s.log.Warn("saved metainfo unreadable; fetching it from peers again", "torrent", r.ID, "err", err)
		}
		var mg *torrent.Magnet
		if r.Magnet != "" {
			mg, _ = torrent.ParseMagnet(r.Magnet)
		}
		if m == nil && mg == nil {
			mg = &torrent.Magnet{InfoHash: ih}
		}
		t := s.newTorrent(r.ID, ih, m, mg, r)
		s.mu.Lock()
		if s.byID[r.ID] == nil && s.byHash[ih] == nil {
			s.byID[r.ID], s.byHash[ih] = t, t
			s.settings.NextID = max(s.settings.NextID, r.ID+1)
		}
		s.mu.Unlock()
	}
	s.log.Info("restored torrents", "count", len(recs))
}

func (s *Session) newTorrent(id int, ih [20]byte, m *torrent.MetaInfo, mg *torrent.Magnet, r record) *Torrent {
	return &Torrent{s: s, id: id, infoHash: ih, meta: m, magnet: mg, rec: r, completed: make(chan struct{})}
}

// AddOptions says what to add and how.
type AddOptions struct {
	// Exactly one of Metainfo (a .torrent's bytes), Magnet (a magnet link)
	// and InfoHash names the torrent.
	Metainfo []byte
	Magnet   string
	InfoHash [20]byte
	// DownloadDir is where its files go; "" means the session's.
	DownloadDir string
	// Paused adds it without starting it.
	Paused bool
	// Peers are dialed whenever it starts, this run (not saved).
	Peers []string
	// Verified vouches that the files in DownloadDir are the torrent's
	// whole content as they are now (it was just created from them): it
	// starts seeding without hashing them again. Ignored for a magnet.
	Verified bool
}

// Add adds a torrent, or returns the one with the same info hash already
// there (dup true). The torrent is saved before Add returns.
func (s *Session) Add(opt AddOptions) (t *Torrent, dup bool, err error) {
	var m *torrent.MetaInfo
	var mg *torrent.Magnet
	switch {
	case opt.Metainfo != nil:
		if m, err = torrent.Parse(opt.Metainfo); err != nil {
			return nil, false, fmt.Errorf("%w: %w", ErrBadInput, err)
		}
	case opt.Magnet != "":
		if mg, err = torrent.ParseMagnet(opt.Magnet); err != nil {
			return nil, false, fmt.Errorf("%w: %w", ErrBadInput, err)
		}
	case opt.InfoHash != [20]byte{}:
		mg = &torrent.Magnet{InfoHash: opt.InfoHash}
	default:
		return nil, false, fmt.Errorf("%w: nothing to add", ErrBadInput)
	}
	ih := opt.InfoHash
	if m != nil {
		ih = m.InfoHash
	} else if mg != nil {
		ih = mg.InfoHash
	}
	dir, err := s.downloadDir(opt.DownloadDir)
	if err != nil {
		return nil, false, err
	}
	if m == nil {
		// A restart of the same magnet needs no peers: the metadata saved
		// the first time is used.
		if saved, err := s.state.loadMeta(ih); err == nil && saved != nil {
			m = saved
		}
	}

	s.mu.Lock()
	if old := s.byHash[ih]; old != nil {
		s.mu.Unlock()
		return old, true, nil
	}
	rec := record{InfoHash: hex.EncodeToString(ih[:]), DownloadDir: dir, Paused: opt.Paused, AddedAt: time.Now().Unix()}
	// Added again where it was saved before (the single-torrent command run
	// anew): its counters and resume data carry on.
	if saved, ok := s.state.loadRecord(ih); ok && s.byID[saved.ID] == nil {
		rec.ID, rec.AddedAt, rec.DoneAt = saved.ID, saved.AddedAt, saved.DoneAt
		rec.UploadedEver, rec.DownloadedEver = saved.UploadedEver, saved.DownloadedEver
		rec.UploadLimit, rec.DownloadLimit = saved.UploadLimit, saved.DownloadLimit
		if saved.DownloadDir == dir {
			rec.Resume = saved.Resume
		}
		s.settings.NextID = max(s.settings.NextID, saved.ID+1)
	} else {
		rec.ID = s.settings.NextID
		s.settings.NextID++
	}
	id := rec.ID
	if opt.Verified && m != nil && opt.Metainfo != nil {
		all := peerwire.NewBitfield(m.NumPieces())
		for i := range m.NumPieces() {
			all.Set(i)
		}
		rec.Resume = makeResume(dir, m, all)
	}
	if mg != nil {
		rec.Magnet = mg.String()
	}
	t = s.newTorrent(id, ih, m, mg, rec)
	t.peers = opt.Peers
	s.byID[id], s.byHash[ih] = t, t
	set := s.settings
	s.mu.Unlock()

	if m != nil {
		if err := s.state.saveMeta(m); err != nil {
			s.forget(t)
			return nil, false, err
		}
	}
	if err := s.state.saveSettings(set); err != nil {
		s.forget(t)
		return nil, false, err
	}
	if err := t.save(); err != nil {
		s.forget(t)
		return nil, false, err
	}
	if !opt.Paused {
		if err := t.start(); err != nil {
			return t, false, err
		}
	}
	return t, false, nil
}

// forget drops a torrent from the session and its state directory.
func (s *Session) forget(t *Torrent) {
	s.mu.Lock()
	delete(s.byID, t.id)
	delete(s.byHash, t.infoHash)
	s.mu.Unlock()
	s.state.remove(t.infoHash)
}

// downloadDir checks a requested download directory: it must be inside one
// of the directories the session was given.
func (s *Session) downloadDir(req string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if req == "" {
		return s.defaultDir, nil
	}
	abs, err := filepath.Abs(req)
	if err != nil {
		return "", fmt.Errorf("%w: download directory %q: %w", ErrBadInput, req, err)
	}
	if !s.allowedLocked(abs) {
		return "", fmt.Errorf("%w: download directory %q is outside the directories this daemon may write (%s)",
			ErrBadInput, req, strings.Join(s.dirs, ", "))
	}
	return abs, nil
}

// allowedLocked reports whether the absolute path abs is one of the
// session's directories or inside one, symbolic links resolved: a link
// inside that leads out does not count as inside.
func (s *Session) allowedLocked(abs string) bool {
	real := resolveLinks(abs)
	for _, d := range s.dirs {
		d = resolveLinks(d)
		if real == d || strings.HasPrefix(real, d+string(filepath.Separator)) {
			return true
		}
	}
	return false
}

// resolveLinks resolves the symbolic links of the longest part of the
// absolute path p that exists; the rest is kept as it is.
func resolveLinks(p string) string {
	cur, rest := filepath.Clean(p), ""
	for {
		if r, err := filepath.EvalSymlinks(cur); err == nil {
			return filepath.Join(r, rest)
		}
		parent := filepath.Dir(cur)
		if parent == cur {
			return filepath.Clean(p)
		}
		rest = filepath.Join(filepath.Base(cur), rest)
		cur = parent
	}
}

// Get returns the torrent of that id.
func (s *Session) Get(id int) (*Torrent, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.byID[id]; t != nil {
		return t, nil
	}
	return nil, fmt.Errorf("%w: %d", ErrNotFound, id)
}

// ByHash returns the torrent of that info hash, nil if none.
func (s *Session) ByHash(ih [20]byte) *Torrent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byHash[ih]
}

// List returns every torrent, by id.
func (s *Session) List() []*Torrent {
	s.mu.Lock()
	out := make([]*Torrent, 0, len(s.byID))
	for _, t := range s.byID {
		out = append(out, t)
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b *Torrent) int { return a.id - b.id })
	return out
}

// Remove stops a torrent and forgets it; with deleteData its files go too.
func (s *Session) Remove(id int, deleteData bool) error {
	t, err := s.Get(id)
	if err != nil {
		return err
	}
	t.mu.Lock()
	t.gone = true
	t.mu.Unlock()
	t.halt()
	s.forget(t)
	if !deleteData {
		return nil
	}
	m := t.Meta()
	if m == nil {
		return nil // nothing was written without metadata
	}
	t.mu.Lock()
	dir := t.rec.DownloadDir
	t.mu.Unlock()
	// A torrent restored from an older run may sit where this run was not
	// given leave to write: its files stay.
	s.mu.Lock()
	ok := s.allowedLocked(dir)
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: torrent %d removed, but its data in %s is outside the directories this daemon may write (%s) and was kept",
			ErrBadInput, id, dir, strings.Join(s.dirs, ", "))
	}
	if err := storage.Remove(dir, layout(m)); err != nil {
		return fmt.Errorf("remove data of torrent %d: %w", id, err)
	}
	return nil
}

// Rates returns the session-wide upload and download caps (bytes/s, 0: none).
func (s *Session) Rates() (up, down int64) { return s.up.Rate(), s.down.Rate() }

// SetRates changes the session-wide caps and saves them.
func (s *Session) SetRates(up, down int64) error {
	s.up.SetRate(up)
	s.down.SetRate(down)
	s.mu.Lock()
	s.settings.UploadRate, s.settings.DownloadRate = max(up, 0), max(down, 0)
	set := s.settings
	s.mu.Unlock()
	return s.state.saveSettings(set)
}

// DownloadDir is where torrents go unless told otherwise.
func (s *Session) DownloadDir() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.defaultDir
}

// SetDownloadDir changes where torrents go unless told otherwise, for this
// run (Config.DownloadDir decides at the next start). The directory must be
// one the session was given, or inside one: errors.Is(err, ErrBadInput)
// otherwise.
func (s *Session) SetDownloadDir(dir string) error {
	abs, err := s.downloadDir(dir)
	if err != nil {
		return err
	}
	if dir == "" {
		return fmt.Errorf("%w: an empty download directory", ErrBadInput)
	}
	s.mu.Lock()
	s.defaultDir = abs
	s.mu.Unlock()
	return nil
}

// AllowedDirs returns the directories torrents may download into (absolute;
// the first is Config.DownloadDir).
func (s *Session) AllowedDirs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.dirs)
}

// Totals sums every torrent's numbers.
type Totals struct {
	Torrents       int     `json:"torrents"`
	Active         int     `json:"active"`
	Paused         int     `json:"paused"`
	DownRate       float64 `json:"down_rate"`
	UpRate         float64 `json:"up_rate"`
	Downloaded     int64   `json:"downloaded"` // this run
	Uploaded       int64   `json:"uploaded"`
	DownloadedEver int64   `json:"downloaded_ever"`
	UploadedEver   int64   `json:"uploaded_ever"`
}

// Totals returns the session's numbers now.
func (s *Session) Totals() Totals {
	var tot Totals
	for _, t := range s.List() {
		st := t.Status()
		tot.Torrents++
		if st.State == StateStopped || st.State == StateError {
			tot.Paused++
		} else {
			tot.Active++
		}
		tot.DownRate += st.DownRate
		tot.UpRate += st.UpRate
		tot.Downloaded += st.Downloaded
		tot.Uploaded += st.Uploaded
		tot.DownloadedEver += st.DownloadedEver
		tot.UploadedEver += st.UploadedEver
	}
	return tot
}
