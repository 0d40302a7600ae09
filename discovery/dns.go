package discovery

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"btclient/dnsd"
)

// BootstrapResolver returns what the overlay node calls, at start and again
// and again, to turn the bootstrap entries into addresses: names through the
// dnsd given by --dns first (all A records), then the system resolver. A name
// may resolve to nothing yet (Swarm's tasks.<service> lists only running
// tasks) and to more nodes later. Each entry that fails is logged once.
func BootstrapResolver(dnsServer string, entries []string, log *slog.Logger) func(context.Context) []string {
	if len(entries) == 0 {
		return nil
	}
	var mu sync.Mutex
	warned := map[string]bool{}
	return func(ctx context.Context) []string {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		var out []string
		for _, e := range entries {
			addrs, err := dnsd.ResolveBootstrap(rctx, dnsServer, []string{e})
			mu.Lock()
			switch {
			case err != nil && !warned[e]:
				warned[e] = true
				log.Warn("bootstrap entry does not resolve (yet); will retry", "entry", e, "err", err)
			case err == nil && warned[e]:
				delete(warned, e)
				log.Info("bootstrap entry resolves", "entry", e, "addrs", addrs)
			}
			mu.Unlock()
			out = append(out, addrs...)
		}
		return out
	}
}

// registrationTTL is the TTL of our dnsd record; it is renewed at a third of it.
const registrationTTL = 60 * time.Second

// KeepRegistered registers name → ip in dnsd now and renews it until ctx is
// done, so the record outlives neither the node nor a restart of dnsd by long.
func KeepRegistered(ctx context.Context, apiURL, name, ip string, log *slog.Logger) {
	registered := false
	for {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := dnsd.Register(rctx, apiURL, name, ip, registrationTTL)
		cancel()
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn("dns registration failed", "name", name, "err", err)
		case err == nil && !registered:
			log.Info("registered in dnsd", "name", name, "ip", ip)
		}
		registered = err == nil
		wait := registrationTTL / 3
		if !registered {
			wait = 2 * time.Second
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}
