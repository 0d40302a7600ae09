package index

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"btclient/internal/testwait"
	"btclient/overlay"
	"btclient/torrent"
)

// memOverlay runs n overlay nodes on an in-memory network, every timer a
// tenth of the default, joined through the first; tweak, if set, changes
// node i's configuration.
func memOverlay(t *testing.T, n int, tweak func(i int, c *overlay.Config)) []*overlay.Node {
	t.Helper()
	mn := overlay.NewMemNetwork()
	var nodes []*overlay.Node
	for i := range n {
		cfg := overlay.DefaultConfig()
		for _, d := range []*time.Duration{&cfg.GossipTimeout, &cfg.HealthInterval, &cfg.HealthTimeout,
			&cfg.ProbeInterval, &cfg.SuspectRetry, &cfg.DeadQuarantine, &cfg.LookupTimeout, &cfg.SweepInterval} {
			*d /= 10
		}
		tr, err := mn.Listen(fmt.Sprintf("10.0.0.%d:6000", i+1))
		if err != nil {
			t.Fatal(err)
		}
		cfg.Transport = tr
		if tweak != nil {
			tweak(i, &cfg)
		}
		if i > 0 {
			cfg.Bootstrap = []string{nodes[0].Addr()}
		}
		node, err := overlay.NewNode(cfg)
		if err != nil {
			t.Fatal(err)
		}
		testwait.Run(t, node.Addr(), node.Run)
		nodes = append(nodes, node)
	}
	testwait.Until(t, 20*time.Second, "the overlay to form", func() bool {
		for _, node := range nodes {
			if len(node.LiveNodes()) != n-1 {
				return false
			}
		}
		return true
	})
	return nodes
}

// One node publishing a million names (a tenth under -race), names of 1 MiB and names with
// control characters and separators: the overlay's bounds hold, every
// honest name is still found, and what is shown is clean.
func TestHostilePublisherCannotDrownTheIndex(t *testing.T) {
	// The flooder's own node holds all it publishes (a hostile node would
	// not cap itself): the owners' caps are what is tested.
	nodes := memOverlay(t, 5, func(i int, c *overlay.Config) {
		if i == 4 {
			c.MaxStoreBytes = 1 << 30
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	honest := nodes[:4]
	for i, n := range honest {
		p := NewPublisher(OverlayStore(n), 0)
		for j := range 50 {
			m := &torrent.MetaInfo{Name: fmt.Sprintf("honest music track%d of node%d.ogg", j, i), TotalLength: 1000,
				InfoHash: sha1.Sum(fmt.Appendf(nil, "%d/%d", i, j))}
			if err := p.Add(ctx, EntryOf(m)); err != nil {
				t.Fatal(err)
			}
		}
	}

	// The flooder publishes straight through its node, a million records
	// under the honest words and under made-up ones, in batches.
	flooder := nodes[4]
	value := []byte(`{"n":"zzz spam","s":1,"f":1}`)
	words := []string{"honest", "music", "ogg"}
	start := time.Now()
	flood := 1_000_000
	if raceEnabled {
		flood = 100_000 // `make test` runs the million without -race too
	}
	refused := 0
	for b := 0; b < flood; b += 100_000 {
		rs := make([]overlay.Record, 0, 100_000)
		for j := b; j < b+100_000; j++ {
			w := fmt.Sprintf("spam%d", j)
			if j%10 == 0 {
				w = words[j%3]
			}
			ih := sha1.Sum(fmt.Appendf(nil, "spam%d", j))
			rs = append(rs, overlay.Record{Kind: Kind, Key: Key(w), ID: hex.EncodeToString(ih[:]) + "@" + flooder.Addr(), Value: value})
		}
		if err := flooder.PublishBatch(ctx, rs); err != nil {
			refused++
		}
	}
	t.Logf("%d names published in %v (%d batches refused in part)", flood, time.Since(start).Round(time.Millisecond), refused)
	// A 1 MiB name and names with control characters and separators.
	if err := flooder.Publish(ctx, overlay.Record{Kind: Kind, Key: Key("honest"), ID: strings.Repeat("a", 40) + "@" + flooder.Addr(),
		Value: []byte(`{"n":"` + strings.Repeat("x", 1<<20) + `","s":1}`)}); err == nil {
		t.Error("a 1 MiB value was accepted")
	}
	// The flooder is over its caps on every owner: the hostile name comes
	// from another node.
	evil := sha1.Sum([]byte("evil"))
	if err := honest[3].Publish(ctx, overlay.Record{Kind: Kind, Key: Key("escape"), ID: hex.EncodeToString(evil[:]) + "@" + honest[3].Addr(),
		Value: []byte(`{"n":"../../etc/passwd\n\u001b[2Jescape\u202e","s":1}`)}); err != nil {
		t.Fatal(err)
	}

	// Every honest name is found from every node, the flooder's at most once
	// per torrent and never ahead of a torrent with more providers.
	for _, asker := range nodes {
		for i := range honest {
			for _, j := range []int{0, 25, 49} {
				q := fmt.Sprintf("track%d node%d", j, i)
				var rs []Result
				testwait.Until(t, 20*time.Second, q+" found from "+asker.Addr(), func() bool {
					var err error
					rs, err = Search(ctx, OverlayStore(asker), q, 10)
					return err == nil && len(rs) == 1
				})
				if rs[0].Providers != 1 || !strings.HasPrefix(rs[0].Name, "honest music") {
					t.Fatalf("search %q from %s: %+v", q, asker.Addr(), rs)
				}
			}
		}
		if asker == flooder {
			continue // what the flooder's own node shows it is its affair
		}
		// Two words too common to exclude anything: every honest name is
		// still among the answers, none pushed out by the flood.
		rs, err := Search(ctx, OverlayStore(asker), "honest music", 500)
		if err != nil {
			t.Fatal(err)
		}
		spam := 0
		for _, r := range rs {
			if r.Name == "zzz spam" {
				spam++
			}
		}
		if honest := len(rs) - spam; honest != 4*50 {
			t.Errorf("from %s, \"honest music\" found %d of the 200 honest names (and %d of the flooder's)", asker.Addr(), honest, spam)
		}
		t.Logf("from %s, \"honest music\": %d honest names, %d of the flooder's", asker.Addr(), len(rs)-spam, spam)
	}
	rs, err := Search(ctx, OverlayStore(nodes[0]), "escape", 10)
	if err != nil || len(rs) != 1 || rs[0].Name != ".. .. etc passwd [2Jescape" {
		t.Errorf("the hostile name came back as %+v, %v", rs, err)
	}
}
