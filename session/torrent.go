package session

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"btclient/discovery"
	"btclient/peerwire"
	"btclient/storage"
	"btclient/swarm"
	"btclient/torrent"
)

// State is where a torrent of the session is.
type State string

// The states of a torrent.
const (
	StateStopped     State = "stopped"
	StateChecking    State = "checking"
	StateMetadata    State = "fetching metadata"
	StateDownloading State = "downloading"
	StateSeeding     State = "seeding"
	StateError       State = "error"
)

// Torrent is one torrent of a session. Its methods are safe for concurrent use.
type Torrent struct {
	s        *Session
	id       int
	infoHash [20]byte

	mu     sync.Mutex
	meta   *torrent.MetaInfo // nil until known
	magnet *torrent.Magnet   // what started it, if a magnet link did
	rec    record
	run    *run      // the engine; nil while stopped or asleep
	active *activity // the announcers; nil while stopped
	// asleep is set for a started torrent that is complete and idle: it
	// runs no engine (no goroutine, no timer, no open file) until a peer
	// connects, while its announcers keep it known.
	asleep    bool
	idleSince time.Time // since when the engine, seeding, has had no peer
	// runUp and runDown are the payload of this session's engine runs that
	// have ended (Status's Uploaded and Downloaded count this session).
	runUp, runDown int64
	lastHashed     int   // what the last engine run's check hashed
	err            error // why the last run failed
	gone           bool  // removed from the session
	// peers are dialed at every start (--peer; a magnet's x.pe are in magnet).
	peers []string

	completed chan struct{} // closed once every piece is verified
	doneOnce  sync.Once
}

// run is one run of a torrent's engine.
type run struct {
	sw     *swarm.Torrent
	cancel context.CancelFunc
	done   chan struct{} // closed when the run has ended and been saved
	// upBase and downBase are the ever counters when the run started.
	upBase, downBase int64
	sleeping         bool // ended to put the torrent to sleep, not to stop it
	woken            bool // started for a peer that came to a torrent asleep
}

// activity is a started torrent's announcers.
type activity struct {
	cancel    context.CancelFunc
	done      chan struct{}
	startedAt time.Time
}

// ID is the torrent's number in the session (Transmission's id).
func (t *Torrent) ID() int { return t.id }

// InfoHash is the torrent's info hash.
func (t *Torrent) InfoHash() [20]byte { return t.infoHash }

// Meta returns the metainfo, nil while it is being fetched.
func (t *Torrent) Meta() *torrent.MetaInfo {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.metaLocked()
}

func (t *Torrent) metaLocked() *torrent.MetaInfo {
	if t.meta == nil && t.run != nil {
		t.meta = t.run.sw.Meta()
	}
	return t.meta
}

// Completed is closed once the download is complete and verified.
func (t *Torrent) Completed() <-chan struct{} { return t.completed }

// Status is a snapshot of a torrent.
type Status struct {
	ID       int
	InfoHash [20]byte
	Name     string
	State    State
	Error    string
	// Size is 0 until the metadata is known; Done counts verified bytes.
	Size, Done int64
	Pieces     int
	HavePieces int
	// Downloaded and Uploaded count payload this run, the Ever counters
	// over every run.
	Downloaded, Uploaded         int64
	DownloadedEver, UploadedEver int64
	DownRate, UpRate             float64
	Peers                        int
	MetadataPieces, MetadataHave int
	DownloadDir                  string
	AddedAt, DoneAt              time.Time
	Magnet                       string
	Private                      bool
	Trackers                     []string
	UploadLimit, DownloadLimit   int64
	Wasted                       int64
	BadPeers                     int
	// StartedAt is when the torrent was last started, zero while stopped.
	StartedAt time.Time
	// PeersSending and PeersGetting count the peers payload lately came
	// from and went to.
	PeersSending, PeersGetting int
	// Hashed counts the pieces the last start-up check read: 0 when the
	// resume data vouched for everything.
	Hashed  int
	Learned map[string]int
	// MetadataFrom gives the peer each metadata piece came from, for a
	// torrent that started from a magnet link (this run).
	MetadataFrom []string
}

// Status returns the torrent's state now.
func (t *Torrent) Status() Status {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := Status{
		ID: t.id, InfoHash: t.infoHash, DownloadDir: t.rec.DownloadDir,
		AddedAt: time.Unix(t.rec.AddedAt, 0), UploadLimit: t.rec.UploadLimit, DownloadLimit: t.rec.DownloadLimit,
		DownloadedEver: t.rec.DownloadedEver, UploadedEver: t.rec.UploadedEver,
		State: StateStopped,
	}
	if t.rec.DoneAt != 0 {
		st.DoneAt = time.Unix(t.rec.DoneAt, 0)
	}
	m := t.metaLocked()
	mg := t.magnetLocked(m)
	st.Magnet = mg.String()
	st.Trackers = mg.Trackers
	st.Name = mg.Name
	if m != nil {
		st.Name, st.Size, st.Pieces, st.Private = m.Name, m.TotalLength, m.NumPieces(), m.Private
		if t.rec.Resume != nil && t.run == nil {
			// Stopped or asleep: what the last run verified.
			bf, _ := peerwire.ParseBitfield(t.rec.Resume.Verified, m.NumPieces())
			st.HavePieces, st.Done = countDone(m, bf)
		}
	}
	st.Downloaded, st.Uploaded, st.Hashed = t.runDown, t.runUp, t.lastHashed
	switch {
	case t.run != nil:
		s := t.run.sw.Stats()
		st.State = State(s.State)
		if s.State == swarm.StateStopping {
			st.State = StateStopped
		}
		st.Done, st.HavePieces = s.Done, s.HavePieces
		st.Downloaded, st.Uploaded = t.runDown+s.Downloaded, t.runUp+s.Uploaded
		st.DownloadedEver, st.UploadedEver = t.run.downBase+s.Downloaded, t.run.upBase+s.Uploaded
		st.DownRate, st.UpRate, st.Peers = s.DownRate, s.UpRate, s.Peers
		st.PeersSending, st.PeersGetting = s.PeersSending, s.PeersGetting
		st.MetadataPieces, st.MetadataHave = s.MetadataPieces, s.MetadataHave
		st.Wasted, st.BadPeers, st.Learned = s.Wasted, s.BadPeers, s.Learned
		if !t.run.woken {
			st.Hashed = s.Hashed
		}
		st.MetadataFrom = s.MetadataFrom
		if st.Name == "" {
			st.Name = s.Name
		}
	case t.asleep:
		st.State = StateSeeding
	case !t.rec.Paused && !t.gone:
		st.State = StateChecking // to be checked when the session runs
	}
	if t.active != nil {
		st.StartedAt = t.active.startedAt
	}
	if t.err != nil {
		st.State, st.Error = StateError, t.err.Error()
	}
	if st.Name == "" {
		st.Name = hex.EncodeToString(t.infoHash[:])
	}
	return st
}

// magnetLocked is the torrent's magnet link: its own, or made from the metainfo.
func (t *Torrent) magnetLocked(m *torrent.MetaInfo) *torrent.Magnet {
	if m != nil {
		mg := m.Magnet()
		if t.magnet != nil && len(mg.Trackers) == 0 {
			mg.Trackers = t.magnet.Trackers
		}
		return mg
	}
	if t.magnet != nil {
		return t.magnet
	}
	return &torrent.Magnet{InfoHash: t.infoHash}
}

// countDone returns the verified pieces of bf and the bytes they hold.
func countDone(m *torrent.MetaInfo, bf peerwire.Bitfield) (pieces int, bytes int64) {
	for i := range m.NumPieces() {
		if bf.Has(i) {
			pieces++
			bytes += m.PieceSize(i)
		}
	}
	return pieces, bytes
}

// Have returns the verified pieces (what the last run verified while
// stopped); nil while the metadata is unknown. It may be shared: do not
// change it.
func (t *Torrent) Have() peerwire.Bitfield {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.haveLocked(t.metaLocked())
}

func (t *Torrent) haveLocked(m *torrent.MetaInfo) peerwire.Bitfield {
	if t.run != nil {
		return t.run.sw.Have()
	}
	if t.rec.Resume != nil && m != nil {
		have, _ := peerwire.ParseBitfield(t.rec.Resume.Verified, m.NumPieces())
		return have
	}
	return nil
}

// FileStatus is one file of a torrent and how much of it is verified.
type FileStatus struct {
	Path   string // relative to the download directory
	Length int64
	Done   int64
}

// Files returns the torrent's files with their verified bytes; nil while
// the metadata is unknown.
func (t *Torrent) Files() []FileStatus {
	t.mu.Lock()
	m := t.metaLocked()
	have := t.haveLocked(m)
	t.mu.Unlock()
	if m == nil {
		return nil
	}
	out := make([]FileStatus, len(m.Files))
	for i, f := range m.Files {
		out[i] = FileStatus{Path: m.FilePath(f), Length: f.Length}
		if f.Length == 0 {
			continue
		}
		first, last := int(f.Offset/m.PieceLength), int((f.Offset+f.Length-1)/m.PieceLength)
		for p := first; p <= last; p++ {
			if !have.Has(p) {
				continue
			}
			lo, hi := max(int64(p)*m.PieceLength, f.Offset), min(int64(p)*m.PieceLength+m.PieceSize(p), f.Offset+f.Length)
			out[i].Done += hi - lo
		}
	}
	return out
}

// Start runs the torrent (it keeps running across restarts of the daemon).
func (t *Torrent) Start() error {
	if err := t.start(); err != nil {
		return err
	}
	return t.save()
}

// Stop stops the torrent and waits until its data and resume data are saved
// and its announcers have said it stopped.
func (t *Torrent) Stop() error {
	t.mu.Lock()
	t.rec.Paused = true
	t.mu.Unlock()
	t.halt()
	return t.save()
}

// halt stops the engine, then the announcers.
func (t *Torrent) halt() {
	t.mu.Lock()
	r, a := t.run, t.active
	t.active, t.asleep = nil, false
	t.mu.Unlock()
	if r != nil {
		r.cancel()
		<-r.done
	}
	if a != nil {
		a.cancel()
		<-a.done
	}
}

// Verify checks every piece on disk again: the engine is stopped, its
// resume data dropped, and it is started again (checking first).
func (t *Torrent) Verify() error {
	t.mu.Lock()
	wasPaused := t.rec.Paused
	r := t.run
	t.asleep = false
	t.mu.Unlock()
	if r != nil {
		r.cancel()
		<-r.done
	}
	t.mu.Lock()
	t.rec.Resume = nil
	t.err = nil
	t.asleep = false
	t.mu.Unlock()
	if err := t.start(); err != nil {
		return err
	}
	if wasPaused {
		// Transmission checks a paused torrent and leaves it paused: stop
		// once the check is over.
		go t.stopAfterCheck()
	}
	return t.save()
}

// stopAfterCheck stops a torrent whose check was asked while it was paused.
func (t *Torrent) stopAfterCheck() {
	for {
		t.mu.Lock()
		r := t.run
		t.mu.Unlock()
		if r == nil {
			return
		}
		s := r.sw.Stats().State
		if s != swarm.StateChecking && s != swarm.StateMetadata {
			t.Stop()
			return
		}
		select {
		case <-r.done:
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// SetRates sets this torrent's upload and download caps (bytes/s, 0: none).
func (t *Torrent) SetRates(up, down int64) error {
	t.mu.Lock()
	t.rec.UploadLimit, t.rec.DownloadLimit = max(up, 0), max(down, 0)
	if t.run != nil {
		t.run.sw.SetRates(t.rec.UploadLimit, t.rec.DownloadLimit)
	}
	t.mu.Unlock()
	return t.save()
}

// start starts the torrent's announcers and its engine, unless it was
// removed or the session is not running yet (Run starts it then). A
// complete torrent whose files are as its resume data says goes to sleep at
// once instead: no engine, no check, until a peer comes.
func (t *Torrent) start() error {
	s := t.s
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.gone {
		return nil
	}
	t.rec.Paused = false
	runCtx := s.runContext()
	if runCtx == nil {
		return nil
	}
	if t.active == nil {
		t.announceLocked(runCtx)
	}
	if t.run != nil || t.asleep {
		return nil
	}
	if m := t.meta; m != nil && s.cfg.IdleAfter > 0 && t.err == nil {
		if v := t.rec.Resume.trusted(t.rec.DownloadDir, m); v != nil && v.Count() == m.NumPieces() {
			t.asleep = true
			t.doneOnce.Do(func() { close(t.completed) })
			s.log.Info("checked existing data", "torrent", t.id, "pieces", m.NumPieces(), "of", m.NumPieces(),
				"hashed", 0, "by", "resume data", "asleep", true)
			return nil
		}
	}
	return t.startEngineLocked(runCtx, false)
}

// announceLocked starts the announcers; they run until the torrent stops,
// asleep or not.
func (t *Torrent) announceLocked(runCtx context.Context) {
	ctx, cancel := context.WithCancel(runCtx)
	a := &activity{cancel: cancel, done: make(chan struct{}), startedAt: time.Now()}
	t.active = a
	p := t.paramsLocked()
	t.s.wg.Go(func() {
		defer close(a.done)
		// With no source to ask it returns at once: nothing waits then.
		t.s.disc.Announce(ctx, p, torrentView{t})
	})
}

// startEngineLocked starts a run of the engine; woken says it is for a
// peer that came to the torrent asleep.
func (t *Torrent) startEngineLocked(runCtx context.Context, woken bool) error {
	s := t.s
	cfg := s.cfg.Swarm
	cfg.UploadRate, cfg.DownloadRate = t.rec.UploadLimit, t.rec.DownloadLimit
	dir := t.rec.DownloadDir
	opt := swarm.Options{
		InfoHash:        t.infoHash,
		PeerID:          s.peerID,
		Port:            s.port,
		ClientName:      s.cfg.ClientName,
		Logger:          s.log.With("torrent", t.id),
		SessionUpload:   s.up,
		SessionDownload: s.down,
		OpenStorage: func(m *torrent.MetaInfo) (swarm.Storage, error) {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return nil, fmt.Errorf("create download directory: %w", err)
			}
			return storage.OpenDisk(dir, layout(m))
		},
		GotMetadata: t.gotMetadata,
		DHTPort:     s.disc.DHTPort(),
		DHTNode:     s.disc.AddDHTNode,
	}
	if m := t.meta; m != nil {
		opt.Meta = m
		opt.Verified = t.rec.Resume.trusted(dir, m)
	}
	opt.Peers = t.peers
	if t.magnet != nil {
		opt.Name = t.magnet.Name
		opt.Peers = append(slices.Clone(t.peers), t.magnet.Peers...)
	}
	sw, err := swarm.New(cfg, opt)
	if err != nil {
		return fmt.Errorf("torrent %d: %w", t.id, err)
	}
	ctx, cancel := context.WithCancel(runCtx)
	r := &run{sw: sw, cancel: cancel, done: make(chan struct{}), upBase: t.rec.UploadedEver, downBase: t.rec.DownloadedEver, woken: woken}
	t.run, t.err, t.idleSince = r, nil, time.Time{}
	s.wg.Go(func() { t.runEngine(ctx, r) })
	return nil
}

// wake starts the engine of a torrent asleep, for a peer that came; it
// returns the running engine, nil if there is none to hand the peer to.
func (t *Torrent) wake() *swarm.Torrent {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.run == nil && t.asleep {
		runCtx := t.s.runContext()
		if runCtx == nil {
			return nil
		}
		if err := t.startEngineLocked(runCtx, true); err != nil {
			t.s.log.Warn("cannot wake torrent", "torrent", t.id, "err", err)
			return nil
		}
		t.asleep = false
	}
	if t.run == nil {
		return nil
	}
	return t.run.sw
}

// maybeSleep puts a seeding torrent whose engine has had no peer for
// idleAfter to sleep.
func (t *Torrent) maybeSleep(now time.Time, idleAfter time.Duration) {
	t.mu.Lock()
	r := t.run
	if r == nil || t.active == nil || t.rec.Paused {
		t.mu.Unlock()
		return
	}
	st := r.sw.Stats()
	switch {
	case st.State != swarm.StateSeeding || st.Peers > 0:
		t.idleSince = time.Time{}
		r = nil
	case t.idleSince.IsZero():
		t.idleSince = now
		r = nil
	case now.Sub(t.idleSince) < idleAfter:
		r = nil
	default:
		r.sleeping = true
	}
	t.mu.Unlock()
	if r != nil {
		r.cancel()
		<-r.done
	}
}

// layout maps a torrent's files onto paths below the download directory.
func layout(m *torrent.MetaInfo) []storage.FileSpec {
	specs := make([]storage.FileSpec, len(m.Files))
	for i, f := range m.Files {
		specs[i] = storage.FileSpec{Path: m.FilePath(f), Offset: f.Offset, Length: f.Length}
	}
	return specs
}

// gotMetadata saves metadata fetched from peers, so a restart asks no peer.
func (t *Torrent) gotMetadata(m *torrent.MetaInfo) {
	t.mu.Lock()
	if t.magnet != nil && len(t.magnet.Trackers) > 0 {
		m.SetTrackers(t.magnet.Trackers)
	}
	t.meta = m
	t.mu.Unlock()
	if err := t.s.state.saveMeta(m); err != nil {
		t.s.log.Warn("cannot save fetched metadata", "torrent", t.id, "err", err)
	}
}

// runEngine runs the engine until ctx is done or the engine fails, then
// saves the torrent.
func (t *Torrent) runEngine(ctx context.Context, r *run) {
	defer close(r.done)
	watch, stopWatch := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		select {
		case <-r.sw.Done():
			t.markCompleted(r)
			t.sleepIfUnused(r)
		case <-watch.Done():
		}
	})
	err := r.sw.Run(ctx)
	stopWatch()
	wg.Wait()
	st := r.sw.Stats()
	t.mu.Lock()
	t.rec.UploadedEver, t.rec.DownloadedEver = r.upBase+st.Uploaded, r.downBase+st.Downloaded
	t.runUp, t.runDown = t.runUp+st.Uploaded, t.runDown+st.Downloaded
	if !r.woken {
		t.lastHashed = st.Hashed
	}
	if m := r.sw.Meta(); m != nil {
		t.meta = m
		// A check cut short knows less than the resume data it started
		// from, which nothing has changed since.
		if st.Checked {
			if res := makeResume(t.rec.DownloadDir, m, r.sw.Have()); res != nil {
				t.rec.Resume = res
			}
		}
	}
	if err != nil {
		t.err = err
		t.s.log.Error("torrent stopped", "torrent", t.id, "err", err)
	}
	t.run = nil
	t.asleep = r.sleeping && err == nil && t.active != nil && !t.rec.Paused && !t.gone
	t.mu.Unlock()
	if err := t.save(); err != nil {
		t.s.log.Warn("cannot save torrent state", "torrent", t.id, "err", err)
	}
}

// markCompleted records the completion and saves resume data right away:
// from now on nothing writes, so a crash while seeding re-hashes nothing.
func (t *Torrent) markCompleted(r *run) {
	t.mu.Lock()
	if t.rec.DoneAt == 0 {
		t.rec.DoneAt = time.Now().Unix()
	}
	if m := r.sw.Meta(); m != nil {
		if res := makeResume(t.rec.DownloadDir, m, r.sw.Have()); res != nil {
			t.rec.Resume = res
		}
	}
	t.mu.Unlock()
	t.doneOnce.Do(func() { close(t.completed) })
	if err := t.save(); err != nil {
		t.s.log.Warn("cannot save torrent state", "torrent", t.id, "err", err)
	}
}

// sleepIfUnused puts a run that found everything on disk, and has no peer,
// to sleep at once: a daemon adding a thousand complete torrents keeps no
// thousand idle engines meanwhile.
func (t *Torrent) sleepIfUnused(r *run) {
	st := r.sw.Stats()
	if t.s.cfg.IdleAfter <= 0 || r.woken || st.Downloaded > 0 || st.Peers > 0 {
		return // a woken run has a peer on its way in; the janitor sees to it
	}
	t.mu.Lock()
	if t.run == r && t.active != nil && !t.rec.Paused {
		r.sleeping = true
		r.cancel() // runEngine, our caller's caller, ends and marks it asleep
	}
	t.mu.Unlock()
}

// checkpoint saves the counters and, for a running torrent, resume data as
// of now; a no-op for a torrent whose numbers did not move.
func (t *Torrent) checkpoint() {
	t.mu.Lock()
	r := t.run
	if r == nil {
		t.mu.Unlock()
		return
	}
	st := r.sw.Stats()
	up, down := r.upBase+st.Uploaded, r.downBase+st.Downloaded
	changed := up != t.rec.UploadedEver || down != t.rec.DownloadedEver
	t.rec.UploadedEver, t.rec.DownloadedEver = up, down
	if m := r.sw.Meta(); m != nil && st.Checked && (t.rec.Resume == nil || changed) {
		if res := makeResume(t.rec.DownloadDir, m, r.sw.Have()); res != nil {
			t.rec.Resume, changed = res, true
		}
	}
	t.mu.Unlock()
	if changed {
		if err := t.save(); err != nil {
			t.s.log.Warn("cannot save torrent state", "torrent", t.id, "err", err)
		}
	}
}

// paramsLocked are what the announcers need of the torrent.
func (t *Torrent) paramsLocked() discovery.Params {
	p := discovery.Params{InfoHash: t.infoHash, PeerID: t.s.peerID}
	if t.meta != nil {
		p.Trackers = t.meta.Trackers()
	}
	if len(p.Trackers) == 0 && t.magnet != nil {
		for _, tr := range t.magnet.Trackers {
			p.Trackers = append(p.Trackers, []string{tr})
		}
	}
	return p
}

// save writes the torrent's record (no-op without a state directory).
func (t *Torrent) save() error {
	t.mu.Lock()
	if t.gone {
		t.mu.Unlock()
		return nil
	}
	rec := t.rec
	t.mu.Unlock()
	return t.s.state.saveRecord(t.infoHash, rec)
}

// torrentView is what discovery sees of a torrent: its engine's numbers
// while it runs, a seeder's while it sleeps.
type torrentView struct{ t *Torrent }

func (v torrentView) State() discovery.State {
	t := v.t
	t.mu.Lock()
	r, m := t.run, t.meta
	// Until its engine runs (announcers start first) an awake torrent
	// cannot say what it has: as good as checking.
	st := discovery.State{Uploaded: t.runUp, Downloaded: t.runDown, Complete: t.asleep, Checking: r == nil && !t.asleep, Left: 16 << 10}
	t.mu.Unlock()
	if r != nil {
		s := r.sw.Stats()
		st.Uploaded, st.Downloaded = st.Uploaded+s.Uploaded, st.Downloaded+s.Downloaded
		st.Peers, st.Complete, st.Checking = s.Peers, s.State == swarm.StateSeeding, s.State == swarm.StateChecking
		if m = r.sw.Meta(); m != nil {
			st.Left = s.Size - s.Done
		}
	}
	if m != nil {
		st.Private = m.Private
		if st.Complete {
			st.Left = 0
		} else if r == nil {
			st.Left = m.TotalLength
		}
	}
	// Without metadata the size is unknown, and 0 would claim we seed
	// (libtorrent reports one block in the same place).
	return st
}

func (v torrentView) Completed() <-chan struct{} { return v.t.completed }

func (v torrentView) AddPeers(origin discovery.Origin, addrs []string) {
	v.t.mu.Lock()
	r := v.t.run
	v.t.mu.Unlock()
	if r != nil {
		r.sw.AddPeers(string(origin), addrs) // a torrent asleep is a seeder: it dials no one
	}
}
