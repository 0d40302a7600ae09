package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"btclient/rpc"
)

// snapshot lists every file below dir with its size and content hash.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !e.IsDir() {
			out[p] = fileSHA256(t, p)
		} else {
			out[p] = "dir"
		}
		return nil
	})
	return out
}

// Hostile input against a running daemon: malformed JSON, a 100 MiB body,
// unknown methods, wrong types, download directories and .torrent paths
// that climb out, forged Host and Origin headers, a thousand wrong
// passwords. Every one gets a clear refusal, the daemon stays up and
// serves an honest client throughout, and nothing outside its directories
// is touched.
func TestDaemonSurvivesHostileRPC(t *testing.T) {
	root := t.TempDir()
	dir, watch, canary := filepath.Join(root, "downloads"), filepath.Join(root, "watch"), filepath.Join(root, "canary")
	for _, p := range []string{dir, watch, canary} {
		os.MkdirAll(p, 0o755)
	}
	secret := randomFile(t, canary, "secret.bin", 64<<10)
	secretTor := makeTorrent(t, secret, "--piece-length", "16KiB")
	os.Rename(secretTor, filepath.Join(canary, "secret.torrent"))
	os.Symlink(filepath.Join(canary, "secret.torrent"), filepath.Join(watch, "link.torrent"))
	os.Symlink(canary, filepath.Join(dir, "escape"))
	before := snapshot(t, canary)

	d := startDaemon(t, "daemon", dir, filepath.Join(root, "state"), "--rpc-auth", "admin:hunter2", "--watch", watch)
	good := randomFile(t, t.TempDir(), "ok.bin", 32<<10)
	goodMeta, _ := os.ReadFile(makeTorrent(t, good, "--piece-length", "16KiB"))
	goodB64 := base64.StdEncoding.EncodeToString(goodMeta)

	// post sends a raw body with the session id and the right credentials
	// unless the headers say otherwise.
	sid := ""
	post := func(client *http.Client, body io.Reader, hdr map[string]string) (int, string) {
		t.Helper()
		for range 2 {
			req, _ := http.NewRequest(http.MethodPost, d.url(), body)
			req.SetBasicAuth("admin", "hunter2")
			req.Header.Set(rpc.SessionIDHeader, sid)
			for k, v := range hdr {
				if k == "Host" {
					req.Host = v
				} else {
					req.Header.Set(k, v)
				}
			}
			resp, err := client.Do(req)
			if err != nil {
				return 0, err.Error()
			}
			data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			if resp.StatusCode == http.StatusConflict && sid == "" {
				sid = resp.Header.Get(rpc.SessionIDHeader)
				if b, ok := body.(*bytes.Reader); ok {
					b.Seek(0, io.SeekStart)
				}
				continue
			}
			return resp.StatusCode, string(data)
		}
		return 0, "no session id"
	}
	result := func(body string) string {
		t.Helper()
		code, out := post(http.DefaultClient, bytes.NewReader([]byte(body)), nil)
		var r struct{ Result string }
		if code != http.StatusOK || json.Unmarshal([]byte(out), &r) != nil {
			t.Fatalf("%.80s: HTTP %d %s", body, code, out)
		}
		return r.Result
	}

	for _, tc := range []struct{ body, want string }{
		{`{"method":`, "no method name"},
		{`{"method":"torrent-get","arguments":{"fields":[`, "no method name"},
		{`{"method":"format-disk"}`, "method name not recognized"},
		{`{"method":"torrent-get","arguments":{"fields":7}}`, "must be a list of strings"},
		{`{"method":"torrent-set","arguments":{"ids":{"$gt":0}}}`, `argument "ids"`},
		{`{"method":"session-set","arguments":{"speed-limit-up":[1]}}`, "whole number"},
		{`{"method":"torrent-add","arguments":{"metainfo":"` + goodB64 + `","download-dir":"` + dir + `/../canary"}}`, "outside the directories"},
		{`{"method":"torrent-add","arguments":{"metainfo":"` + goodB64 + `","download-dir":"/etc"}}`, "outside the directories"},
		{`{"method":"torrent-add","arguments":{"metainfo":"` + goodB64 + `","download-dir":"` + dir + `/escape"}}`, "outside the directories"},
		{`{"method":"session-set","arguments":{"download-dir":"` + canary + `"}}`, "outside the directories"},
		{`{"method":"torrent-add","arguments":{"filename":"../canary/secret.torrent"}}`, "outside the directories"},
		{`{"method":"torrent-add","arguments":{"filename":"` + canary + `/secret.torrent"}}`, "outside the directories"},
		{`{"method":"torrent-add","arguments":{"filename":"` + watch + `/link.torrent"}}`, "outside the directories"},
		{`{"method":"torrent-add","arguments":{"filename":"escape/secret.torrent"}}`, "outside the directories"},
		{`{"method":"free-space","arguments":{"path":"/"}}`, "outside the directories"},
	} {
		if got := result(tc.body); !strings.Contains(got, tc.want) {
			t.Errorf("%.100s: result %q, want one containing %q", tc.body, got, tc.want)
		}
	}

	// 100 MiB: refused without being read whole.
	big := io.MultiReader(strings.NewReader(`{"method":"torrent-add","arguments":{"metainfo":"`),
		io.LimitReader(repeatReader('A'), 100<<20), strings.NewReader(`"}}`))
	if code, out := post(http.DefaultClient, big, nil); code != http.StatusRequestEntityTooLarge && code != 0 {
		t.Errorf("100 MiB body: HTTP %d %.200s", code, out)
	}

	for _, tc := range []struct {
		hdr  map[string]string
		want int
	}{
		{map[string]string{"Host": "attacker.example:9091"}, http.StatusMisdirectedRequest},
		{map[string]string{"Host": "127.0.0.1.nip.example"}, http.StatusMisdirectedRequest},
		{map[string]string{"Origin": "http://attacker.example"}, http.StatusForbidden},
		{map[string]string{"Origin": "null"}, http.StatusForbidden},
		{map[string]string{rpc.SessionIDHeader: "forged"}, http.StatusConflict},
	} {
		if code, _ := post(http.DefaultClient, strings.NewReader(`{"method":"torrent-remove","arguments":{"delete-local-data":true}}`), tc.hdr); code != tc.want {
			t.Errorf("%v: HTTP %d, want %d", tc.hdr, code, tc.want)
		}
	}

	// A thousand wrong passwords from 127.0.0.9 while an honest client on
	// 127.0.0.1 keeps working.
	attacker := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.9")}}).DialContext}}
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	start := time.Now()
	for w := range 10 {
		wg.Go(func() {
			for i := range 100 {
				req, _ := http.NewRequest(http.MethodPost, d.url(), strings.NewReader(`{"method":"session-get"}`))
				req.SetBasicAuth("admin", "guess"+string(rune('a'+w))+string(rune('a'+i%26)))
				req.Header.Set(rpc.SessionIDHeader, sid)
				resp, err := attacker.Do(req)
				code := 0
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					code = resp.StatusCode
				}
				mu.Lock()
				codes[code]++
				mu.Unlock()
			}
		})
	}
	honest := 0
	for time.Since(start) < 2*time.Second || honest < 5 {
		if out, code := transmissionRemoteOrClient(t, d); code != 0 {
			t.Fatalf("the honest client failed during the attack: %s", out)
		}
		honest++
	}
	wg.Wait()
	took := time.Since(start)
	t.Logf("1000 wrong passwords in %v: %v; %d honest calls served meanwhile", took.Round(time.Millisecond), codes, honest)
	// Ten checked at once, then one a second while the attack lasted.
	if allowed := 10 + int(took/time.Second) + 1; codes[http.StatusOK] != 0 || codes[http.StatusUnauthorized] > allowed ||
		codes[http.StatusTooManyRequests] != 1000-codes[http.StatusUnauthorized] {
		t.Errorf("wrong passwords answered %v: want no 200, at most %d 401 and the rest 429", codes, allowed)
	}

	// Still up, still serving, nothing outside touched.
	if d.exited() {
		t.Fatalf("the daemon died: %s", tail(d.out.String(), 3000))
	}
	d.call("session-stats", nil, nil)
	time.Sleep(3 * time.Second) // a watch-directory scan or two
	after := snapshot(t, canary)
	for p, h := range before {
		if after[p] != h {
			t.Errorf("%s changed", p)
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			t.Errorf("%s appeared outside the daemon's directories", p)
		}
	}
	if _, err := os.Lstat(filepath.Join(watch, "link.torrent")); err != nil {
		t.Errorf("the link out of the watch directory was renamed or removed: %v", err)
	}
	for _, tr := range d.torrents() {
		if tr.Name == "secret.bin" {
			t.Errorf("a torrent outside the daemon's directories was added: %+v", tr)
		}
	}
}

type repeatReader byte

func (r repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

// transmissionRemoteOrClient lists the torrents as an honest user:
// with transmission-remote where it is installed, else with rpc.Client.
func transmissionRemoteOrClient(t *testing.T, d *daemon) (string, int) {
	t.Helper()
	if _, err := os.Stat("/usr/bin/transmission-remote"); err == nil {
		return transmissionRemote(t, d.rpcAddr, "-n", d.auth, "-l")
	}
	var out any
	if err := d.client().Call(t.Context(), "torrent-get", map[string]any{"fields": []string{"id"}}, &out); err != nil {
		return err.Error(), 1
	}
	return "", 0
}
