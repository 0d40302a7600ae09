package dnsd

import (
	"btclient/internal/testwait"
	"context"
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"
)

// resolvesTo reports whether name resolves at the DNS server to exactly want.
func resolvesTo(dnsAddr, name string, want ...string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	addrs, err := Resolve(ctx, dnsAddr, name)
	if len(want) == 0 {
		return errors.Is(err, ErrNotFound)
	}
	if err != nil {
		return false
	}
	var got []string
	for _, a := range addrs {
		got = append(got, a.String())
	}
	slices.Sort(got)
	return slices.Equal(got, want)
}

func TestReplicationAcrossThreeServers(t *testing.T) {
	tests := []struct {
		name     string
		peers    func(api [3]string) [3][]string // each server's peers
		interval time.Duration
	}{
		// 1 → 2 → 3: news travels along the chain; 3 has no peers and
		// catches up after a restart when 2 next pushes.
		{"a chain of peers", func(api [3]string) [3][]string {
			return [3][]string{{api[1]}, {api[2]}, nil}
		}, 200 * time.Millisecond},
		// Everyone knows everyone, with a long interval: changes travel
		// only by the push on change, and a restarted server only by the
		// pull it does on start.
		{"a full list of peers and a long interval", func(api [3]string) [3][]string {
			return [3][]string{{api[1], api[2]}, {api[0], api[2]}, {api[0], api[1]}}
		}, time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var dnsAddr, apiAddr [3]string
			for i := range 3 {
				dnsAddr[i], apiAddr[i] = freeAddr(t), freeAddr(t)
			}
			peers := tt.peers(apiAddr)
			config := func(i int) Config {
				cfg := testConfig(t)
				cfg.Listen, cfg.API, cfg.Peers = dnsAddr[i], apiAddr[i], peers[i]
				cfg.GossipInterval = tt.interval
				return cfg
			}
			var stop [3]func()
			for i := 2; i >= 0; i-- {
				_, stop[i] = startServer(t, config(i))
			}

			post(t, apiAddr[0], "swarm.example", "10.0.0.1", 300)
			post(t, apiAddr[0], "swarm.example", "10.0.0.2", 300)
			post(t, apiAddr[0], "gone.example", "10.0.0.3", 300)
			testwait.Until(t, 10*time.Second, "a record posted to the first resolves at the third", func() bool {
				return resolvesTo(dnsAddr[2], "swarm.example", "10.0.0.1", "10.0.0.2") &&
					resolvesTo(dnsAddr[2], "gone.example", "10.0.0.3")
			})

			if status, body := do(t, http.MethodDelete, "http://"+apiAddr[0]+"/records/swarm.example?ip=10.0.0.1", ""); status != http.StatusOK {
				t.Fatalf("DELETE: %d %s", status, body)
			}
			if status, body := do(t, http.MethodDelete, "http://"+apiAddr[0]+"/records/gone.example", ""); status != http.StatusOK {
				t.Fatalf("DELETE: %d %s", status, body)
			}
			testwait.Until(t, 10*time.Second, "deletions at the first reach the third", func() bool {
				return resolvesTo(dnsAddr[2], "swarm.example", "10.0.0.2") && resolvesTo(dnsAddr[2], "gone.example")
			})

			stop[2]()
			post(t, apiAddr[0], "late.example", "10.0.0.4", 300)
			startServer(t, config(2)) // a fresh process: empty state, same addresses
			testwait.Until(t, 10*time.Second, "a restarted third server catches up", func() bool {
				return resolvesTo(dnsAddr[2], "swarm.example", "10.0.0.2") &&
					resolvesTo(dnsAddr[2], "late.example", "10.0.0.4") &&
					resolvesTo(dnsAddr[2], "gone.example")
			})

			// Replication runs both ways: a record registered at the third
			// reaches the first.
			post(t, apiAddr[2], "back.example", "10.0.0.5", 300)
			testwait.Until(t, 10*time.Second, "a record posted to the third resolves at the first", func() bool {
				return resolvesTo(dnsAddr[0], "back.example", "10.0.0.5")
			})
		})
	}
}

func TestReplicationSurvivesADeadPeer(t *testing.T) {
	cfg := testConfig(t)
	cfg.Peers = []string{freeAddr(t), "http://" + freeAddr(t) + "/"}
	srv, _ := startServer(t, cfg)
	post(t, srv.APIAddr(), "alone.example", "10.0.0.1", 60)
	if !resolvesTo(srv.DNSAddr(), "alone.example", "10.0.0.1") {
		t.Fatal("a server whose peers are down does not answer")
	}
}
