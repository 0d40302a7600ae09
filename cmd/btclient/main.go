// Command btclient is a BitTorrent client that finds peers through a gossip
// overlay, with an HTTP tracker and a small DNS service as fallbacks.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"
)

// version is btclient's version, as --version prints it.
const version = "0.2.0"

// Exit statuses of the CLI contract.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// subcommand runs one `btclient NAME` command and returns its exit status.
type subcommand func(ctx context.Context, args []string, stdout, stderr io.Writer) int

func subcommands() map[string]subcommand {
	return map[string]subcommand{
		"create":  runCreate,  // write a .torrent for a file or directory
		"daemon":  runDaemon,  // many torrents, driven through the RPC and the web page
		"remote":  runRemote,  // drive a daemon through its RPC
		"share":   runShare,   // a daemon sharing folders: seeded and found by name
		"search":  runSearch,  // search the overlay's index by name
		"info":    runInfo,    // print what a .torrent describes
		"tracker": runTracker, // run the HTTP tracker
		"dnsd":    runDNSD,    // run the DNS service
		"node":    runNode,    // run an overlay-only node (a rendezvous with no torrent)
		"dht":     runDHT,     // run a mainline DHT node only (a bootstrap node for a private DHT)
		"probe":   runProbe,   // GET a URL (default: the local /status); exit 0 on 200, for healthchecks
	}
}

// memoryLimit is the soft heap limit unless GOMEMLIMIT says otherwise: the
// engine's buffers are bounded, so a tight limit keeps the garbage collector
// from letting RSS drift far above what is live.
const memoryLimit = 40 << 20

func main() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
	}
	if os.Getenv("GOMAXPROCS") == "" {
		// Half the CPUs the runtime would take. A block crosses three
		// goroutines (reader, torrent loop, writer) and each hand-off to
		// another thread costs a wake-up; measured on 2 cores, one P moves
		// 1 GiB between two btclients in 1.5 s where two take 2-5 s, and
		// with less CPU. Hashing, the part that runs in parallel, needs
		// about one core at these rates.
		runtime.GOMAXPROCS(max(1, runtime.GOMAXPROCS(0)/2))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		if sc, ok := subcommands()[args[0]]; ok {
			return sc(ctx, args[1:], stdout, stderr)
		}
	}
	return runDownload(ctx, args, stdout, stderr)
}

// usageError prints one clear line and returns the usage exit status.
func usageError(stderr io.Writer, format string, a ...any) int {
	fmt.Fprintf(stderr, "btclient: "+format+"\n", a...)
	return exitUsage
}
