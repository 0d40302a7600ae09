package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"btclient/session"
)

// progress shows how a download goes: a bar on a terminal, otherwise a log
// line every few seconds. Its goroutine stops with stop.
type progress struct {
	stopCh   chan struct{}
	wg       sync.WaitGroup
	once     sync.Once
	terminal bool
	bar      *progressbar.ProgressBar // made once the size is known
	t        *session.Torrent
	w        io.Writer
	last     time.Time
}

const progressEvery = 5 * time.Second

func newProgress(w io.Writer, quiet bool, t *session.Torrent) *progress {
	p := &progress{stopCh: make(chan struct{}), t: t, w: w}
	interval := progressEvery
	if f, ok := w.(*os.File); ok && !quiet && term.IsTerminal(int(f.Fd())) {
		p.terminal = true
		interval = 250 * time.Millisecond
	}
	p.wg.Go(func() {
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-p.stopCh:
				return
			case <-tick.C:
				p.show()
			}
		}
	})
	return p
}

func (p *progress) show() {
	s := p.t.Status()
	if p.terminal && p.bar == nil && s.Size > 0 {
		p.bar = progressbar.NewOptions64(s.Size,
			progressbar.OptionSetWriter(p.w),
			progressbar.OptionSetDescription(s.Name),
			progressbar.OptionShowBytes(true),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(200*time.Millisecond),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(p.w) }),
		)
	}
	if p.bar != nil {
		_ = p.bar.Set64(s.Done)
		return
	}
	if p.terminal && time.Since(p.last) < progressEvery {
		return // until the bar can be drawn, a line now and then
	}
	p.last = time.Now()
	now := time.Now().Format(time.TimeOnly)
	switch s.State {
	case session.StateMetadata:
		fmt.Fprintf(p.w, "%s fetching metadata (%d of %d pieces), peers %d\n", now, s.MetadataHave, s.MetadataPieces, s.Peers)
	case session.StateSeeding:
		fmt.Fprintf(p.w, "%s seeding: up %s/s, uploaded %s, peers %d\n",
			now, humanSize(int64(s.UpRate)), humanSize(s.Uploaded), s.Peers)
	default:
		pct := 100.0
		if s.Size > 0 {
			pct = 100 * float64(s.Done) / float64(s.Size)
		}
		fmt.Fprintf(p.w, "%s %s %.1f%% (%s of %s), down %s/s, up %s/s, peers %d\n",
			now, s.State, pct, humanSize(s.Done), humanSize(s.Size),
			humanSize(int64(s.DownRate)), humanSize(int64(s.UpRate)), s.Peers)
	}
}

// finish completes the bar once the download is verified.
func (p *progress) finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
	}
}

func (p *progress) stop() {
	p.once.Do(func() { close(p.stopCh) })
	p.wg.Wait()
}
