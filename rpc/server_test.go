package rpc

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestHandshakeAnswers409WithTheSessionID(t *testing.T) {
	f := newFixture(t, nil)
	req, _ := http.NewRequest(http.MethodPost, f.url, strings.NewReader(`{"method":"session-get"}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	id := resp.Header.Get(SessionIDHeader)
	if resp.StatusCode != http.StatusConflict || id != f.srv.SessionID() || id == "" {
		t.Fatalf("without the header: HTTP %d, id %q", resp.StatusCode, id)
	}
	// A wrong id is no better than none.
	req, _ = http.NewRequest(http.MethodPost, f.url, strings.NewReader(`{"method":"session-get"}`))
	req.Header.Set(SessionIDHeader, "guessed")
	if code, _ := f.do(t, req); code != http.StatusConflict {
		t.Fatalf("a wrong id: HTTP %d", code)
	}
	// transmission-remote posts to the path with a trailing slash.
	req, _ = http.NewRequest(http.MethodPost, f.url+"/", strings.NewReader(`{"method":"session-get","tag":42}`))
	req.Header.Set(SessionIDHeader, id)
	code, out := f.do(t, req)
	if code != http.StatusOK || out["result"] != "success" || out["tag"] != 42.0 {
		t.Fatalf("with the id: HTTP %d, %v", code, out)
	}
}

func TestBasicAuth(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.User, c.Password = "alice", "s3cret" })
	for _, tc := range []struct {
		name       string
		user, pass string
		set        bool
		want       int
	}{
		{"no credentials", "", "", false, http.StatusUnauthorized},
		{"wrong password", "alice", "guess", true, http.StatusUnauthorized},
		{"wrong user", "bob", "s3cret", true, http.StatusUnauthorized},
		{"right ones", "alice", "s3cret", true, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, f.url, strings.NewReader(`{"method":"session-stats"}`))
			req.Header.Set(SessionIDHeader, f.srv.SessionID())
			if tc.set {
				req.SetBasicAuth(tc.user, tc.pass)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("HTTP %d, want %d", resp.StatusCode, tc.want)
			}
			if tc.want == http.StatusUnauthorized && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic ") {
				t.Fatalf("401 without a Basic challenge: curl (transmission-remote) would not retry with credentials")
			}
		})
	}
	// The web page is behind the same credentials.
	resp, err := http.Get(f.base + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the page without credentials: HTTP %d", resp.StatusCode)
	}
}

// A thousand wrong passwords from one address are answered at once, soon
// with 429 and no password check; an honest user elsewhere is served as
// usual throughout, and the server is still up.
func TestWrongPasswordsAreRateLimitedPerAddress(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.User, c.Password = "alice", "s3cret" })
	attacker, honest := clientFrom("127.0.0.7"), clientFrom("127.0.0.8")
	post := func(c *http.Client, pass string) int {
		req, _ := http.NewRequest(http.MethodPost, f.url, strings.NewReader(`{"method":"session-stats"}`))
		req.Header.Set(SessionIDHeader, f.srv.SessionID())
		req.SetBasicAuth("alice", pass)
		resp, err := c.Do(req)
		if err != nil {
			t.Error(err)
			return 0
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	var wg sync.WaitGroup
	codes := make(chan int, 1000)
	start := time.Now()
	for w := range 8 {
		wg.Go(func() {
			for i := range 125 {
				codes <- post(attacker, "guess-"+string(rune('a'+w))+string(rune('a'+i%26)))
			}
		})
	}
	var honestWorst time.Duration
	for range 20 {
		start := time.Now()
		if code := post(honest, "s3cret"); code != http.StatusOK {
			t.Fatalf("the honest user got HTTP %d during the attack", code)
		}
		honestWorst = max(honestWorst, time.Since(start))
	}
	wg.Wait()
	took := time.Since(start)
	close(codes)
	count := map[int]int{}
	for c := range codes {
		count[c]++
	}
	// The burst of 10, then one a second (AuthRefill) while it lasted.
	allowed := 10 + int(took/time.Second) + 1
	if count[http.StatusOK] != 0 || count[http.StatusUnauthorized] > allowed || count[http.StatusTooManyRequests] != 1000-count[http.StatusUnauthorized] {
		t.Fatalf("answers to 1000 wrong passwords in %v: %v (want at most %d checked, 401, and the rest 429)", took, count, allowed)
	}
	t.Logf("1000 wrong passwords: %v; slowest honest call %v", count, honestWorst)
	// Even the right password waits while the address is limited: it
	// would otherwise tell a guesser which guess was right.
	if code := post(attacker, "s3cret"); code != http.StatusTooManyRequests {
		t.Fatalf("the limited address with the right password: HTTP %d, want 429", code)
	}
}

func TestFailLimiterTableStaysBounded(t *testing.T) {
	l := newFailLimiter(2, time.Hour)
	l.max = 64
	for i := range 10_000 {
		ip := mustAddr(t, i)
		l.fail(ip)
		l.fail(ip)
	}
	if n := len(l.buckets); n > l.max {
		t.Fatalf("%d buckets, bound %d", n, l.max)
	}
}

func TestHostAndOriginChecks(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.AllowedHosts = []string{"seedbox.lan"} })
	for _, tc := range []struct {
		host, origin string
		want         int
	}{
		{"localhost:9091", "", http.StatusOK},
		{"127.0.0.1:9091", "", http.StatusOK},
		{"[::1]:9091", "", http.StatusOK},
		{"192.168.1.20", "", http.StatusOK},
		{"seedbox.lan:9091", "", http.StatusOK},
		{"SEEDBOX.LAN.", "", http.StatusOK},
		{"evil.example:9091", "", http.StatusMisdirectedRequest},
		{"localhost.evil.example", "", http.StatusMisdirectedRequest},
		{"localhost:9091", "http://localhost:9091", http.StatusOK},
		{"localhost:9091", "http://evil.example", http.StatusForbidden},
		{"localhost:9091", "http://localhost:8080", http.StatusForbidden},
		{"localhost:9091", "null", http.StatusForbidden},
	} {
		req, _ := http.NewRequest(http.MethodPost, f.url, strings.NewReader(`{"method":"session-stats"}`))
		req.Host = tc.host
		req.Header.Set(SessionIDHeader, f.srv.SessionID())
		if tc.origin != "" {
			req.Header.Set("Origin", tc.origin)
		}
		if code, _ := f.do(t, req); code != tc.want {
			t.Errorf("Host %q Origin %q: HTTP %d, want %d", tc.host, tc.origin, code, tc.want)
		}
	}
}

func TestOversizedBodyIsRefusedAndTheServerStaysUp(t *testing.T) {
	f := newFixture(t, nil)
	// 100 MiB, streamed: the server stops reading at its limit.
	body := io.MultiReader(strings.NewReader(`{"method":"torrent-add","arguments":{"metainfo":"`),
		io.LimitReader(zeros{}, 100<<20), strings.NewReader(`"}}`))
	req, _ := http.NewRequest(http.MethodPost, f.url, body)
	req.Header.Set(SessionIDHeader, f.srv.SessionID())
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge || !bytes.Contains(data, []byte("too large")) {
			t.Fatalf("100 MiB body: HTTP %d %s", resp.StatusCode, data)
		}
	} // else: the server closed the connection mid-upload, also a refusal
	if len(f.sess.List()) != 0 {
		t.Fatal("something was added")
	}
	f.method(t, "session-stats", nil)
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'A'
	}
	return len(p), nil
}

func TestMalformedRequestsGetTransmissionsErrorShape(t *testing.T) {
	f := newFixture(t, nil)
	for _, tc := range []struct{ body, want string }{
		{`{bad json`, "no method name"},
		{``, "no method name"},
		{`[]`, "no method name"},
		{`{"method":42}`, "no method name"},
		{`{"method":"torrent-explode"}`, "method name not recognized"},
		{`{"method":"torrent-get","arguments":[1,2]}`, "arguments must be an object"},
		{`{"method":"torrent-get","arguments":{"fields":"id"}}`, `argument "fields" must be a list of strings`},
		{`{"method":"torrent-get","arguments":{}}`, "no fields specified"},
		{`{"method":"torrent-get","arguments":{"fields":["id"],"ids":{"x":1}}}`, `argument "ids"`},
		{`{"method":"torrent-get","arguments":{"fields":["id"],"ids":"zz"}}`, "hash string"},
		{`{"method":"torrent-get","arguments":{"fields":["id"],"format":"xml"}}`, "neither objects nor table"},
		{`{"method":"session-set","arguments":{"speed-limit-down":"fast"}}`, "must be a whole number"},
		{`{"method":"session-set","arguments":{"speed-limit-down":1.5}}`, "must be a whole number"},
		{`{"method":"session-set","arguments":{"speed-limit-down-enabled":"yes"}}`, "must be a boolean"},
		{`{"method":"torrent-add","arguments":{"filename":7}}`, `argument "filename" must be a string`},
		{`{"method":"torrent-add","arguments":{}}`, `needs "filename"`},
		{`{"method":"torrent-add","arguments":{"metainfo":"!!!"}}`, "not base64"},
		{`{"method":"torrent-add","arguments":{"metainfo":"ZDQ6anVuaw=="}}`, "invalid or corrupt torrent file"},
		{`{"method":"torrent-add","arguments":{"filename":"magnet:?xt=urn:btih:123"}}`, "invalid or corrupt torrent file"},
		{`{"method":"torrent-add","arguments":{"filename":"http://example.com/x.torrent"}}`, "by URL"},
		{`{"method":"session-close"}`, "not enabled"},
	} {
		code, out := f.call(t, tc.body)
		r, _ := out["result"].(string)
		if code != http.StatusOK || !strings.Contains(r, tc.want) {
			t.Errorf("%s: HTTP %d result %q, want one containing %q", tc.body, code, r, tc.want)
		}
		if _, ok := out["arguments"].(map[string]any); !ok {
			t.Errorf("%s: no arguments object in %v", tc.body, out)
		}
	}
	f.method(t, "session-stats", nil)
}

func TestWebPageIsServedWithoutTheHandshake(t *testing.T) {
	f := newFixture(t, nil)
	resp, err := http.Get(f.base + "/")
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Contains(data, []byte("btclient")) {
		t.Fatalf("GET /: HTTP %d", resp.StatusCode)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Fatalf("no framing guard: %q", csp)
	}
	resp, err = http.Post(f.base+"/", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST /: HTTP %d", resp.StatusCode)
	}
}
