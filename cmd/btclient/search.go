package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"btclient/index"
	"btclient/rpc"
)

const searchUsage = `btclient search [flags] WORDS...

Search the overlay's index by name: the torrents whose names (or whose
files' names) hold every word, case and accents aside, best first (most
providers). Asks a running daemon (--rpc, the default) or overlay nodes
directly (--bootstrap). Each result's magnet link can be given to btclient,
to 'btclient remote add' or to any other client.`

type searchFlags struct {
	url       string
	auth      string
	bootstrap []string
	swarmKey  string
	json      bool
	limit     int
	timeout   time.Duration
}

func runSearch(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var f searchFlags
	fs := newFlagSet("btclient search", searchUsage, stderr)
	fs.StringVar(&f.url, "rpc", "http://127.0.0.1:9091"+rpc.RPCPath, "URL of a daemon's RPC to search through")
	fs.StringVar(&f.auth, "auth", "", "USER:PASS for a daemon started with --rpc-auth (default: BTCLIENT_RPC_AUTH)")
	fs.StringSliceVar(&f.bootstrap, "bootstrap", nil, "overlay nodes to search through instead of a daemon, comma-separated host:port")
	fs.StringVar(&f.swarmKey, "swarm-key", "", "the overlay's shared key, with --bootstrap")
	fs.BoolVar(&f.json, "json", false, "print the results as JSON")
	fs.IntVar(&f.limit, "limit", 20, "at most this many results (1-500)")
	fs.DurationVar(&f.timeout, "timeout", 5*time.Second, "give up after this long")
	addConfigFlag(fs)
	if done, code := parseFlags(fs, args, stderr); done {
		return code
	}
	if f.auth == "" {
		f.auth = os.Getenv("BTCLIENT_RPC_AUTH")
	}
	query := strings.Join(fs.Args(), " ")
	switch {
	case fs.NArg() == 0:
		return usageError(stderr, "search needs words to look for")
	case f.limit < 1 || f.limit > 500:
		return usageError(stderr, "--limit %d: want 1-500", f.limit)
	case f.timeout <= 0:
		return usageError(stderr, "--timeout must be positive")
	case f.auth != "" && !strings.Contains(f.auth, ":"):
		return usageError(stderr, "--auth: want USER:PASS")
	case f.swarmKey != "" && len(f.bootstrap) == 0:
		return usageError(stderr, "--swarm-key goes with --bootstrap")
	}
	for _, b := range f.bootstrap {
		if _, _, err := net.SplitHostPort(b); err != nil {
			return usageError(stderr, "--bootstrap %q: want host:port", b)
		}
	}
	// The query's own bounds are usage errors, found before asking anyone.
	if err := index.CheckQuery(query); err != nil {
		return usageError(stderr, "%v", strings.TrimPrefix(err.Error(), "index: "))
	}

	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	var (
		results []index.Result
		err     error
	)
	if len(f.bootstrap) > 0 {
		results, err = index.Search(ctx, index.ClientStore(f.bootstrap, []byte(f.swarmKey)), query, f.limit)
	} else {
		var out struct {
			Results []index.Result `json:"results"`
		}
		err = rpc.NewClient(f.url, f.auth).Call(ctx, "btclient-search", map[string]any{"query": query, "limit": f.limit}, &out)
		results = out.Results
	}
	if err != nil {
		fmt.Fprintf(stderr, "btclient: search: %v\n", err)
		return exitError
	}
	if results == nil {
		results = []index.Result{}
	}
	if f.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(results)
		return exitOK
	}
	if len(results) == 0 {
		fmt.Fprintf(stdout, "nothing found for %q\n", query)
		return exitOK
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSIZE\tPROVIDERS\tINFO HASH\tMAGNET")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", index.CleanName(r.Name), humanSize(r.Size), r.Providers, r.InfoHash, r.Magnet)
	}
	tw.Flush()
	return exitOK
}
