package overlay

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"sync"
	"testing"
	"time"
)

// envInt reads a positive integer from the environment, or def.
func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// TestOverlaySimulation runs nodes × torrents on the in-memory transport
// (1,000 × 20 here; scripts/overlay-sim.sh runs 10,000 × 100 through
// OVERLAY_SIM_NODES and OVERLAY_SIM_TORRENTS) and measures lookup success,
// messages per announce and per lookup and the steady-state bytes per node,
// before and after 30 % of the nodes fail at once.
//
// The nodes serve requests, but membership is taken as settled: every node
// is given the same ring of all nodes instead of running health checks
// (which cost one ping per known node per HealthInterval; the steady state
// below is computed from the measured size of those pings). The failure is
// then handled as the health checks would: survivors take the ring of the
// survivors and drop the dead nodes' records, and each origin syncs the
// owners whose share changed, as its next ping would make it.
func TestOverlaySimulation(t *testing.T) {
	nodes := envInt("OVERLAY_SIM_NODES", 1000)
	torrents := envInt("OVERLAY_SIM_TORRENTS", 20)
	lookups := envInt("OVERLAY_SIM_LOOKUPS", 2000)
	start := time.Now()
	mn := NewMemNetwork()
	addr := func(i int) string { return fmt.Sprintf("10.%d.%d.%d:6000", i/62500, i/250%250, i%250+1) }
	all := make([]*Node, nodes)
	addrs := make([]string, nodes)
	for i := range nodes {
		addrs[i] = addr(i)
	}
	var ringMu sync.Mutex
	rg := newRing(addrs)
	current := func() *ring {
		ringMu.Lock()
		defer ringMu.Unlock()
		return rg
	}
	stops := make([]func(), nodes)
	for i := range nodes {
		cfg := DefaultConfig()
		tr, err := mn.Listen(addrs[i])
		if err != nil {
			t.Fatal(err)
		}
		cfg.Transport = tr
		cfg.HealthInterval, cfg.ProbeInterval, cfg.SweepInterval = time.Hour, time.Hour, time.Hour
		cfg.GossipTimeout, cfg.LookupTimeout = 10*time.Second, 10*time.Second // scheduling on a busy box, not the network
		cfg.RequestRate, cfg.RequestBurst, cfg.LookupRate, cfg.LookupBurst = 1e9, 1e9, 1e9, 1e9
		cfg.MaxNodes = 16 // membership comes from the shared ring, not the members table
		// Origins renew leases with their pings, which the simulation does not
		// run: entries live for the whole run instead.
		cfg.ProviderTTL = time.Hour
		n, err := NewNode(cfg)
		if err != nil {
			t.Fatal(err)
		}
		n.fixedRing = current
		all[i] = n
		stops[i] = runNode(t, n)
	}
	defer func() {
		var wg sync.WaitGroup
		for _, s := range stops {
			wg.Go(s)
		}
		wg.Wait()
	}()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	hashes := make([][][20]byte, nodes)
	for i := range nodes {
		for range torrents {
			var h [20]byte
			for j := range h {
				h[j] = byte(rng.IntN(256))
			}
			hashes[i] = append(hashes[i], h)
		}
	}
	provider := func(i int) string { return fmt.Sprintf("%s:6881", hostOf(addrs[i])) }
	// parallel runs f for every index of idx, 64 at a time.
	parallel := func(idx []int, f func(i int)) {
		sem := make(chan struct{}, 64)
		var wg sync.WaitGroup
		for _, i := range idx {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				f(i)
			})
		}
		wg.Wait()
	}
	total := func(idx []int, types ...string) (msgs, bytes int64) {
		for _, i := range idx {
			tr := all[i].Traffic()
			for _, typ := range types {
				msgs += tr[typ].Requests
				bytes += tr[typ].Bytes
			}
		}
		return msgs, bytes
	}
	everyone := make([]int, nodes)
	for i := range everyone {
		everyone[i] = i
	}

	// Every node announces its torrents.
	parallel(everyone, func(i int) {
		var rs []Record
		for _, h := range hashes[i] {
			rs = append(rs, providerRecord(h, Provider{Addr: provider(i), PeerID: "-JC0001-simsimsimsim", LastSeen: time.Now()}))
		}
		if err := all[i].PublishBatch(ctx, rs); err != nil {
			t.Errorf("node %d: %v", i, err)
		}
	})
	putMsgs, putBytes := total(everyone, typePut)
	announces := int64(nodes * torrents)
	t.Logf("simulation: %d nodes × %d torrents announced in %v: %.2f put lines and %.0f bytes per announce (each record to its %d owners, batched per owner)",
		nodes, torrents, time.Since(start).Round(time.Millisecond), float64(putMsgs)/float64(announces), float64(putBytes)/float64(announces), DefaultConfig().Replicas)

	// lookupRound looks up random torrents of live origins from random live
	// nodes; it returns the share found and the query lines per lookup.
	lookupRound := func(phase string, live []int) float64 {
		type job struct{ from, origin, k int }
		jobs := make([]job, lookups)
		for j := range jobs {
			jobs[j] = job{live[rng.IntN(len(live))], live[rng.IntN(len(live))], rng.IntN(torrents)}
		}
		before, _ := total(everyone, typeQuery)
		var mu sync.Mutex
		found := 0
		idx := make([]int, len(jobs))
		for j := range idx {
			idx[j] = j
		}
		parallel(idx, func(j int) {
			jb := jobs[j]
			ps, err := all[jb.from].Lookup(ctx, hashes[jb.origin][jb.k], 10)
			ok := err == nil && len(ps) > 0 && ps[0].Addr == provider(jb.origin)
			mu.Lock()
			if ok {
				found++
			}
			mu.Unlock()
		})
		after, _ := total(everyone, typeQuery)
		share := float64(found) / float64(lookups)
		t.Logf("simulation: %s: %d/%d lookups found the provider (%.2f %%), %.2f query lines per lookup",
			phase, found, lookups, 100*share, float64(after-before)/float64(lookups))
		return share
	}
	// steady measures the ping a node sends each known node every
	// HealthInterval (with its lease) and returns bytes per node per minute.
	steady := func(phase string, live []int) {
		sample := live[:min(20, len(live))]
		before, beforeBytes := total(sample, typePing)
		r := current()
		parallel(sample, func(i int) {
			n := all[i]
			leases := n.origin.leases(context.Background(), r, n.cfg.Replicas, n.cfg.MaxRecordsPerMessage, 2*n.cfg.HealthInterval, time.Now())
			for k := range 50 {
				target := addrs[live[(i+k+1)%len(live)]]
				l := leases[target]
				if l == nil {
					l = &lease{}
				}
				n.probe(ctx, target, l, r.view)
			}
		})
		after, afterBytes := total(sample, typePing)
		perPing := float64(afterBytes-beforeBytes) / float64(after-before)
		perMinute := perPing * float64(len(live)-1) * float64(time.Minute/DefaultConfig().HealthInterval)
		t.Logf("simulation: %s: steady state %.0f bytes per ping and pong; every node pings the %d others every %v: %.0f KB per node per minute (%.1f KB/s)",
			phase, perPing, len(live)-1, DefaultConfig().HealthInterval, perMinute/1000, perMinute/60/1000)
	}

	if path := os.Getenv("OVERLAY_SIM_HEAPPROFILE"); path != "" {
		runtime.GC()
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		pprof.WriteHeapProfile(f)
		f.Close()
	}
	okBefore := lookupRound("before the failure", everyone)
	steady("before the failure", everyone)

	// 30 % of the nodes fail at once.
	perm := rng.Perm(nodes)
	deadSet := make(map[int]bool)
	for _, i := range perm[:nodes*3/10] {
		deadSet[i] = true
	}
	var live, dead []int
	for i := range nodes {
		if deadSet[i] {
			dead = append(dead, i)
		} else {
			live = append(live, i)
		}
	}
	parallel(dead, func(i int) { stops[i]() })
	okStale := lookupRound("30 % failed, not yet detected", live)

	// Detection: survivors take the ring of survivors and, once nodeDied's
	// grace has passed, lose what the dead published; each origin syncs the
	// owners whose share changed.
	oldRing := current()
	var liveAddrs []string
	for _, i := range live {
		liveAddrs = append(liveAddrs, addrs[i])
	}
	ringMu.Lock()
	rg = newRing(liveAddrs)
	ringMu.Unlock()
	newRg := current()
	parallel(live, func(i int) {
		for _, d := range dead {
			all[i].store.ExpireOrigin(addrs[d], time.Now()) // nodeDied's grace has passed
		}
	})
	syncBefore, syncBytesBefore := total(live, typeSync)
	var failMu sync.Mutex
	failed := make(map[int][]string)
	parallel(live, func(i int) {
		n := all[i]
		now := time.Now()
		was := n.origin.leases(context.Background(), oldRing, n.cfg.Replicas, n.cfg.MaxRecordsPerMessage, 2*n.cfg.HealthInterval, now)
		is := n.origin.leases(context.Background(), newRg, n.cfg.Replicas, n.cfg.MaxRecordsPerMessage, 2*n.cfg.HealthInterval, now)
		for o, l := range is {
			if w := was[o]; w == nil || w.d != l.d {
				if err := n.syncTo(ctx, o); err != nil {
					failMu.Lock()
					failed[i] = append(failed[i], o)
					failMu.Unlock()
				}
			}
		}
	})
	// A sync that failed (a busy box: the exchange timed out) is retried, as
	// the origin's next ping would find the digest still wrong.
	firstFailed := 0
	var retry []int
	for i, os := range failed {
		firstFailed += len(os)
		retry = append(retry, i)
	}
	stillFailed := 0
	parallel(retry, func(i int) {
		for _, o := range failed[i] {
			if err := all[i].syncTo(ctx, o); err != nil {
				failMu.Lock()
				stillFailed++
				failMu.Unlock()
			}
		}
	})
	t.Logf("simulation: after detection: %d syncs failed and were retried (as the next ping would), %d failed again", firstFailed, stillFailed)
	syncAfter, syncBytesAfter := total(live, typeSync)
	t.Logf("simulation: after detection: %d sync lines (%d bytes) moved records to new owners, %.2f per surviving node",
		syncAfter-syncBefore, syncBytesAfter-syncBytesBefore, float64(syncAfter-syncBefore)/float64(len(live)))
	okAfter := lookupRound("30 % failed and detected", live)
	steady("after the failure", live)

	// The dead nodes' providers are gone everywhere.
	gone := 0
	for range 200 {
		d := dead[rng.IntN(len(dead))]
		ps, _ := all[live[rng.IntN(len(live))]].Lookup(ctx, hashes[d][rng.IntN(torrents)], 10)
		if len(ps) == 0 {
			gone++
		}
	}
	t.Logf("simulation: %d/200 lookups of a failed node's torrent return nothing; %v real", gone, time.Since(start).Round(time.Millisecond))
	if okBefore < 1 || okStale < 0.99 || okAfter < 0.99 || gone != 200 {
		t.Fatalf("lookup success %.4f before, %.4f undetected, %.4f after (want 1, ≥ 0.99, ≥ 0.99); %d/200 dead providers gone", okBefore, okStale, okAfter, gone)
	}
}
