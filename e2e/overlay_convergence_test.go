package e2e

import (
	"btclient/internal/testwait"
	"context"
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"btclient/overlay"
)

var overlayListening = regexp.MustCompile(`overlay listening on (\S+:\d+)`)

// startOverlayNode starts `btclient node` on loopback and returns it with its
// overlay address.
func startOverlayNode(t *testing.T, label string, args ...string) (*proc, string) {
	t.Helper()
	args = append([]string{"node", "--overlay-port", "0", "--bind", "127.0.0.1", "--advertise", "127.0.0.1"}, args...)
	p := btclient(t, label, args...)
	var addr string
	testwait.Until(t, 10*time.Second, label+" to listen", func() bool {
		m := overlayListening.FindStringSubmatch(p.out.String())
		if m != nil {
			addr = m[1]
		}
		return m != nil || p.exited()
	})
	if addr == "" {
		t.Fatalf("%s exited before listening:\n%s", label, tail(p.out.String(), 2000))
	}
	return p, addr
}

// everyNode runs f on every address in parallel and reports whether it held
// for all of them.
func everyNode(addrs []string, f func(addr string) bool) bool {
	ok := make([]bool, len(addrs))
	var wg sync.WaitGroup
	for i, a := range addrs {
		wg.Go(func() { ok[i] = f(a) })
	}
	wg.Wait()
	return !slices.Contains(ok, false)
}

// TestOverlayConvergence runs 50 real node processes joined as a tree (each
// knows one or two earlier nodes) and measures, with default timings: how long
// until every node's lookup returns a newly announced provider; how long a
// provider that stops cleanly takes to vanish from every lookup; and how long
// a node killed with SIGKILL stays in the others' live views.
func TestOverlayConvergence(t *testing.T) {
	const n = 50
	rng := rand.New(rand.NewPCG(7, 7))
	procs := make([]*proc, n)
	addrs := make([]string, n)
	for i := range n {
		var args []string
		if i > 0 {
			boot := []string{addrs[rng.IntN(i)]}
			if j := rng.IntN(i); i > 1 && addrs[j] != boot[0] && rng.IntN(2) == 0 {
				boot = append(boot, addrs[j])
			}
			args = append(args, "--bootstrap", joinArgs(boot...))
		}
		procs[i], addrs[i] = startOverlayNode(t, fmt.Sprintf("node%d", i), args...)
	}
	cl := overlay.Client{Timeout: 2 * time.Second}
	ctx := context.Background()

	// Let membership spread: every node should know a good part of the rest.
	formed := time.Now()
	testwait.Until(t, 30*time.Second, "the overlay to form", func() bool {
		return everyNode(addrs, func(a string) bool {
			live, err := cl.Ping(ctx, a)
			return err == nil && len(live) >= 10
		})
	})
	t.Logf("overlay of %d processes formed (every live view ≥ 10) in %v", n, time.Since(formed).Round(time.Millisecond))

	// 1. A new provider, announced at one leaf, reaches every node's lookup.
	h, _ := overlay.ParseInfoHash("c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00")
	prov := overlay.Provider{Addr: "127.0.0.1:45678", PeerID: "-JC0001-e2ee2ee2ee2e"}
	has := func(a, addr string) bool {
		ps, _, err := cl.Lookup(ctx, a, h, 100)
		return err == nil && slices.ContainsFunc(ps, func(p overlay.Provider) bool { return p.Addr == addr })
	}
	start := time.Now()
	if err := cl.Announce(ctx, addrs[n-1], h, prov); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, 30*time.Second, "every node to return the provider", func() bool {
		return everyNode(addrs, func(a string) bool { return has(a, prov.Addr) })
	})
	d := time.Since(start)
	t.Logf("convergence: %d processes: %v", n, d.Round(time.Millisecond))
	if d > 30*time.Second {
		t.Fatalf("convergence took %v, want < 30 s", d)
	}

	// 2. A provider that stops cleanly (SIGTERM: a stopped tombstone) stops
	// being returned everywhere.
	leaving, _ := startOverlayNode(t, "leaving", "--bootstrap", addrs[rng.IntN(n)], "--announce", "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00=127.0.0.1:45679")
	testwait.Until(t, 30*time.Second, "every node to return the leaving provider", func() bool {
		return everyNode(addrs, func(a string) bool { return has(a, "127.0.0.1:45679") })
	})
	start = time.Now()
	leaving.signal(syscall.SIGTERM)
	if code := leaving.wait(10 * time.Second); code != 0 {
		t.Fatalf("node exited %d after SIGTERM", code)
	}
	testwait.Until(t, 20*time.Second, "no node to return the stopped provider", func() bool {
		return everyNode(addrs, func(a string) bool { return !has(a, "127.0.0.1:45679") })
	})
	d = time.Since(start)
	t.Logf("convergence: stopped provider gone from %d processes' lookups in %v", n, d.Round(time.Millisecond))
	if d > 10*time.Second {
		t.Fatalf("stopped provider still returned after %v, want < 10 s", d)
	}

	// 3. A node killed with SIGKILL leaves every live view.
	victim := n / 2
	start = time.Now()
	procs[victim].kill()
	others := slices.Delete(slices.Clone(addrs), victim, victim+1)
	testwait.Until(t, 25*time.Second, "the killed node to leave every live view", func() bool {
		return everyNode(others, func(a string) bool {
			live, err := cl.Ping(ctx, a)
			return err == nil && !slices.Contains(live, addrs[victim])
		})
	})
	d = time.Since(start)
	t.Logf("convergence: kill -9'd node left %d live views in %v", n-1, d.Round(time.Millisecond))
	if d > 20*time.Second {
		t.Fatalf("dead node detection took %v, want < 20 s", d)
	}
}
