package swarm

import (
	"context"

	"golang.org/x/time/rate"
)

// Limiter caps payload bytes per second over everything that shares it: one
// torrent, or every torrent of a session. A rate of 0 means no cap. The rate
// may change while torrents run; it is safe for concurrent use.
type Limiter struct{ l *rate.Limiter }

// NewLimiter returns a Limiter of bytesPerSec (0: none).
func NewLimiter(bytesPerSec int64) *Limiter {
	l := &Limiter{rate.NewLimiter(rate.Inf, 0)}
	l.SetRate(bytesPerSec)
	return l
}

// SetRate changes the cap; 0 or less removes it.
func (l *Limiter) SetRate(bytesPerSec int64) {
	if bytesPerSec <= 0 {
		l.l.SetLimit(rate.Inf)
		return
	}
	// The burst fits the largest block, so one request never waits forever.
	l.l.SetBurst(int(max(bytesPerSec, 128<<10)))
	l.l.SetLimit(rate.Limit(bytesPerSec))
}

// Rate returns the cap, 0 for none.
func (l *Limiter) Rate() int64 {
	if l == nil || l.l.Limit() == rate.Inf {
		return 0
	}
	return int64(l.l.Limit())
}

// limits are the caps one direction of a torrent obeys: its own and the
// session's (either may be nil).
type limits [2]*Limiter

// active reports whether any cap applies now.
func (ls limits) active() bool {
	for _, l := range ls {
		if l.Rate() > 0 {
			return true
		}
	}
	return false
}

// wait takes n bytes from every cap, in bursts each can grant.
func (ls limits) wait(ctx context.Context, n int) error {
	for _, l := range ls {
		if l.Rate() <= 0 {
			continue
		}
		for k := n; k > 0; {
			step := min(k, l.l.Burst())
			if err := l.l.WaitN(ctx, step); err != nil {
				return err
			}
			k -= step
		}
	}
	return nil
}
