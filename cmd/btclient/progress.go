package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"btclient/swarm"
	"btclient/torrent"
)

// progress shows how a download goes: a bar on a terminal, otherwise a log
// line every few seconds. Its goroutine stops with stop.
type progress struct {
	stopCh chan struct{}
	wg     sync.WaitGroup
	once   sync.Once
	bar    *progressbar.ProgressBar
	t      *swarm.Torrent
	w      io.Writer
}

const progressEvery = 5 * time.Second

func newProgress(w io.Writer, quiet bool, meta *torrent.MetaInfo, t *swarm.Torrent) *progress {
	p := &progress{stopCh: make(chan struct{}), t: t, w: w}
	interval := progressEvery
	if f, ok := w.(*os.File); ok && !quiet && term.IsTerminal(int(f.Fd())) {
		p.bar = progressbar.NewOptions64(meta.TotalLength,
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription(meta.Name),
			progressbar.OptionShowBytes(true),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(200*time.Millisecond),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
		)
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
	s := p.t.Stats()
	if p.bar != nil {
		_ = p.bar.Set64(s.Done)
		return
	}
	if s.State == swarm.StateSeeding {
		fmt.Fprintf(p.w, "%s seeding: up %s/s, uploaded %s, peers %d\n",
			time.Now().Format(time.TimeOnly), humanSize(int64(s.UpRate)), humanSize(s.Uploaded), s.Peers)
		return
	}
	pct := 100.0
	if s.Size > 0 {
		pct = 100 * float64(s.Done) / float64(s.Size)
	}
	fmt.Fprintf(p.w, "%s %s %.1f%% (%s of %s), down %s/s, up %s/s, peers %d\n",
		time.Now().Format(time.TimeOnly), s.State, pct, humanSize(s.Done), humanSize(s.Size),
		humanSize(int64(s.DownRate)), humanSize(int64(s.UpRate)), s.Peers)
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
