// Package testwait is the tests' one way to wait for something that happens
// on another goroutine or in another process: poll a condition until it
// holds, or fail the test after a deadline; and to run a component until the
// test ends and wait for it to stop.
package testwait

import (
	"context"
	"sync"
	"testing"
	"time"
)

// Every is how often Until polls.
const Every = 10 * time.Millisecond

// Until polls cond until it holds and returns how long that took, or fails
// the test once d has passed, naming what it waited for.
func Until(t testing.TB, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(Every)
	}
	return time.Since(start)
}

// Run runs a component's blocking run function on its own goroutine until
// the test ends or stop is called (stop may be called more than once). It
// reports an error run returns, and a run that does not return within 10 s
// of its context's cancellation.
func Run(t testing.TB, name string, run func(ctx context.Context) error) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("%s: %v", name, err)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("%s did not return within 10 s of cancel", name)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}
