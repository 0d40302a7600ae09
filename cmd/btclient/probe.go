package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// probeMaxBody bounds what --print copies from the response.
const probeMaxBody = 1 << 20

// runProbe implements `btclient probe [URL]`: GET the URL and exit 0 on HTTP
// 200, 1 otherwise. It is the Docker HEALTHCHECK of a scratch image, which has
// no shell and no curl. Without URL it probes the local --status server, and
// --status defaults to BTCLIENT_STATUS like every flag, so a container that
// sets BTCLIENT_STATUS=0.0.0.0:9000 can use `btclient probe` as is.
func runProbe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("probe", "btclient probe [flags] [URL]\n\n"+
		"GET URL (default: the /status page of --status) and exit 0 on HTTP 200, 1 otherwise.\n"+
		"Meant for container healthchecks and scripts: the image needs no shell or curl.", stderr)
	status := fs.String("status", "", "HOST:PORT of a btclient --status server; probes http://HOST:PORT/status when no URL is given (an unspecified host means 127.0.0.1)")
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	printBody := fs.Bool("print", false, "copy the response body to stdout (at most 1 MiB)")
	quiet := fs.Bool("quiet", false, "print nothing on failure")
	isolated := fs.Bool("fail-isolated", false, "also fail when the body is a btclient /status that shows a download with no connected peer\n"+
		"(state downloading, peers 0): with healthcheck retries, an isolated task turns unhealthy and Swarm replaces it")
	if done, code := parseFlags(fs, args, stderr); done {
		return code
	}
	var target string
	switch {
	case fs.NArg() > 1:
		return usageError(stderr, "probe: want at most one URL, got %d arguments (see --help)", fs.NArg())
	case fs.NArg() == 1:
		target = fs.Arg(0)
	case *status != "":
		u, err := statusURL(*status)
		if err != nil {
			return usageError(stderr, "probe: --status %q: %v", *status, err)
		}
		target = u
	default:
		return usageError(stderr, "probe: give a URL or --status HOST:PORT (or set BTCLIENT_STATUS)")
	}
	if u, err := url.Parse(target); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usageError(stderr, "probe: %q is not an http(s) URL", target)
	}
	if *timeout <= 0 {
		return usageError(stderr, "probe: --timeout must be positive")
	}

	fail := func(format string, a ...any) int {
		if !*quiet {
			fmt.Fprintf(stderr, "btclient: probe: "+format+"\n", a...)
		}
		return exitError
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return fail("%v", err)
	}
	client := &http.Client{
		// A healthcheck must not follow redirects to somewhere else or use a proxy.
		Transport:     &http.Transport{Proxy: nil, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Do(req)
	if err != nil {
		return fail("%v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, probeMaxBody))
	if *printBody {
		_, _ = stdout.Write(body)
	}
	if err != nil {
		return fail("reading body: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fail("%s: %s", target, resp.Status)
	}
	if *isolated {
		var st struct {
			State *string `json:"state"`
			Peers *int    `json:"peers"`
		}
		if err := json.Unmarshal(body, &st); err != nil || st.State == nil || st.Peers == nil {
			return fail("%s: --fail-isolated: not a btclient /status body", target)
		}
		if *st.State == "downloading" && *st.Peers == 0 {
			return fail("%s: downloading with no connected peer", target)
		}
	}
	return exitOK
}

// statusURL turns a --status listen address into the URL of its /status page.
func statusURL(hostport string) (string, error) {
	host, port, err := net.SplitHostPort(strings.TrimSpace(hostport))
	if err != nil {
		return "", err
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/status", nil
}
