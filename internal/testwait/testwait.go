// Package testwait is the tests' one way to wait for something that happens
// on another goroutine or in another process: poll a condition until it
// holds, or fail the test after a deadline.
package testwait

import (
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
