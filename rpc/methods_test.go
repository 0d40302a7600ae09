package rpc

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"btclient/index"
	"btclient/internal/testwait"
	"btclient/torrent"
)

func TestTorrentAddAnswersAddedThenDuplicate(t *testing.T) {
	f := newFixture(t, nil)
	data := content(t, f.dir, "song.bin", 100<<10)
	m, _ := torrent.Parse(data)
	hash := fmt.Sprintf("%x", m.InfoHash)
	out := f.method(t, "torrent-add", map[string]any{"metainfo": base64.StdEncoding.EncodeToString(data)})
	added, _ := out["torrent-added"].(map[string]any)
	if added["name"] != "song.bin" || added["hashString"] != hash || added["id"] != 1.0 {
		t.Fatalf("torrent-added: %v", out)
	}
	out = f.method(t, "torrent-add", map[string]any{"metainfo": base64.StdEncoding.EncodeToString(data)})
	if dup, _ := out["torrent-duplicate"].(map[string]any); dup["id"] != 1.0 || dup["hashString"] != hash {
		t.Fatalf("the same again: %v", out)
	}
	mg := "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567&dn=later"
	out = f.method(t, "torrent-add", map[string]any{"filename": mg, "paused": true})
	if added, _ := out["torrent-added"].(map[string]any); added["name"] != "later" || added["id"] != 2.0 {
		t.Fatalf("a magnet: %v", out)
	}
	tr, _ := f.sess.Get(1)
	select {
	case <-tr.Completed():
	case <-time.After(10 * time.Second):
		t.Fatalf("the data already in the download directory was not found: %+v", tr.Status())
	}
}

func TestTorrentAddReadsFilesOnlyInsideItsDirectories(t *testing.T) {
	f := newFixture(t, nil)
	outside := t.TempDir()
	good := content(t, f.dir, "in.bin", 40<<10)
	os.WriteFile(filepath.Join(f.dir, "in.torrent"), good, 0o644)
	os.WriteFile(filepath.Join(outside, "out.torrent"), content(t, outside, "out.bin", 40<<10), 0o644)
	os.Symlink(filepath.Join(outside, "out.torrent"), filepath.Join(f.dir, "link.torrent"))
	os.Symlink(outside, filepath.Join(f.dir, "linkdir"))

	for _, name := range []string{
		filepath.Join(outside, "out.torrent"),
		"../" + filepath.Base(outside) + "/out.torrent",
		filepath.Join(f.dir, "..", filepath.Base(outside), "out.torrent"),
		"link.torrent",
		filepath.Join(f.dir, "linkdir", "out.torrent"),
		"/etc/passwd",
		"/proc/self/environ",
		"in.torrent\x00.x",
	} {
		r := f.failing(t, "torrent-add", map[string]any{"filename": name})
		if !strings.Contains(r, "outside the directories") {
			t.Errorf("filename %q: %q", name, r)
		}
	}
	if r := f.failing(t, "torrent-add", map[string]any{"filename": "missing.torrent"}); !strings.Contains(r, "no such file") {
		t.Errorf("a missing file: %q", r)
	}
	for _, name := range []string{"in.torrent", filepath.Join(f.dir, "in.torrent")} {
		out := f.method(t, "torrent-add", map[string]any{"filename": name})
		if out["torrent-added"] == nil && out["torrent-duplicate"] == nil {
			t.Fatalf("%s: %v", name, out)
		}
	}
	if n := len(f.sess.List()); n != 1 {
		t.Fatalf("%d torrents, want only the one inside", n)
	}
}

func TestDownloadDirMustStayInside(t *testing.T) {
	f := newFixture(t, nil)
	data := base64.StdEncoding.EncodeToString(content(t, t.TempDir(), "x.bin", 20<<10))
	for _, dir := range []string{"/etc", "/tmp", filepath.Join(f.dir, ".."), filepath.Join(f.dir, "a", "..", "..", "b"), "relative/dir"} {
		f.failing(t, "torrent-add", map[string]any{"metainfo": data, "download-dir": dir})
		f.failing(t, "session-set", map[string]any{"download-dir": dir})
	}
	if len(f.sess.List()) != 0 || f.sess.DownloadDir() != f.dir {
		t.Fatalf("a refused directory was used: %d torrents, download dir %s", len(f.sess.List()), f.sess.DownloadDir())
	}
	sub := filepath.Join(f.dir, "films")
	f.method(t, "session-set", map[string]any{"download-dir": sub})
	if got := f.method(t, "session-get", map[string]any{"fields": []string{"download-dir"}}); got["download-dir"] != sub || len(got) != 1 {
		t.Fatalf("session-get after session-set: %v", got)
	}
	f.method(t, "torrent-add", map[string]any{"metainfo": data, "paused": true})
	if st := f.sess.List()[0].Status(); st.DownloadDir != sub {
		t.Fatalf("added into %s, want %s", st.DownloadDir, sub)
	}
}

func TestTorrentGetFieldsIdsAndFormats(t *testing.T) {
	f := newFixture(t, nil)
	var hashes []string
	for i := range 3 {
		data := content(t, f.dir, fmt.Sprintf("f%d.bin", i), 50<<10)
		m, _ := torrent.Parse(data)
		hashes = append(hashes, fmt.Sprintf("%x", m.InfoHash))
		f.method(t, "torrent-add", map[string]any{"metainfo": base64.StdEncoding.EncodeToString(data)})
	}
	for _, tr := range f.sess.List() {
		<-tr.Completed()
	}
	fields := []string{"id", "name", "hashString", "status", "percentDone", "totalSize", "sizeWhenDone",
		"leftUntilDone", "haveValid", "rateDownload", "rateUpload", "downloadedEver", "uploadedEver",
		"uploadRatio", "eta", "peersConnected", "downloadDir", "addedDate", "doneDate", "isFinished",
		"magnetLink", "metadataPercentComplete", "files", "fileStats", "trackers", "error", "errorString",
		"no-such-field"}
	out := f.method(t, "torrent-get", map[string]any{"fields": fields, "ids": 2})
	list, _ := out["torrents"].([]any)
	if len(list) != 1 {
		t.Fatalf("ids 2: %v", out)
	}
	tr := list[0].(map[string]any)
	want := map[string]any{
		"id": 2.0, "name": "f1.bin", "hashString": hashes[1], "status": float64(statusSeed), "percentDone": 1.0,
		"totalSize": float64(50 << 10), "leftUntilDone": 0.0, "haveValid": float64(50 << 10), "error": 0.0,
		"errorString": "", "downloadDir": f.dir, "isFinished": false, "metadataPercentComplete": 1.0,
		"eta": float64(etaNotAvailable),
	}
	for k, v := range want {
		if tr[k] != v {
			t.Errorf("%s = %v, want %v", k, tr[k], v)
		}
	}
	if _, ok := tr["no-such-field"]; ok {
		t.Errorf("an unknown field was answered")
	}
	if files := tr["files"].([]any); len(files) != 1 || files[0].(map[string]any)["bytesCompleted"] != float64(50<<10) {
		t.Errorf("files: %v", tr["files"])
	}
	if !strings.HasPrefix(tr["magnetLink"].(string), "magnet:?xt=urn:btih:"+hashes[1]) {
		t.Errorf("magnetLink %v", tr["magnetLink"])
	}

	count := func(ids any) int {
		args := map[string]any{"fields": []string{"id"}}
		if ids != nil {
			args["ids"] = ids
		}
		return len(f.method(t, "torrent-get", args)["torrents"].([]any))
	}
	for _, tc := range []struct {
		ids  any
		want int
	}{
		{nil, 3}, {1, 1}, {[]any{1, 3}, 2}, {hashes[2], 1}, {[]any{hashes[0], 2, 99}, 2}, {99, 0}, {[]any{}, 0},
		{"recently-active", 3},
	} {
		if got := count(tc.ids); got != tc.want {
			t.Errorf("ids %v: %d torrents, want %d", tc.ids, got, tc.want)
		}
	}

	out = f.method(t, "torrent-get", map[string]any{"fields": []string{"id", "name"}, "format": "table"})
	rows := out["torrents"].([]any)
	if len(rows) != 4 || fmt.Sprint(rows[0]) != "[id name]" || fmt.Sprint(rows[3]) != "[3 f2.bin]" {
		t.Fatalf("table: %v", rows)
	}

	f.method(t, "torrent-remove", map[string]any{"ids": []any{3}})
	out = f.method(t, "torrent-get", map[string]any{"fields": []string{"id"}, "ids": "recently-active"})
	if fmt.Sprint(out["removed"]) != "[3]" {
		t.Fatalf("removed: %v", out["removed"])
	}
}

func TestStopStartVerifyRemove(t *testing.T) {
	f := newFixture(t, nil)
	data := content(t, f.dir, "v.bin", 80<<10)
	f.method(t, "torrent-add", map[string]any{"metainfo": base64.StdEncoding.EncodeToString(data)})
	tr, _ := f.sess.Get(1)
	<-tr.Completed()
	status := func() float64 {
		out := f.method(t, "torrent-get", map[string]any{"fields": []string{"status"}, "ids": 1})
		return out["torrents"].([]any)[0].(map[string]any)["status"].(float64)
	}
	f.method(t, "torrent-stop", map[string]any{"ids": 1})
	if s := status(); s != statusStopped {
		t.Fatalf("after torrent-stop: status %v", s)
	}
	f.method(t, "torrent-start", map[string]any{"ids": []any{1}})
	testwait.Until(t, 10*time.Second, "seeding again", func() bool { return status() == statusSeed })
	f.method(t, "torrent-verify", map[string]any{"ids": 1})
	testwait.Until(t, 10*time.Second, "seeding after the check", func() bool { return status() == statusSeed })
	if st := tr.Status(); st.Hashed != st.Pieces {
		t.Fatalf("verify hashed %d of %d pieces", st.Hashed, st.Pieces)
	}
	f.method(t, "torrent-remove", map[string]any{"ids": 1, "delete-local-data": true})
	if _, err := os.Stat(filepath.Join(f.dir, "v.bin")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the data is still there: %v", err)
	}
	if len(f.sess.List()) != 0 {
		t.Fatal("still listed")
	}
}

func TestSpeedLimitsInKilobytes(t *testing.T) {
	f := newFixture(t, nil)
	f.method(t, "session-set", map[string]any{"speed-limit-down": 250, "speed-limit-down-enabled": true})
	if up, down := f.sess.Rates(); up != 0 || down != 250_000 {
		t.Fatalf("rates %d %d, want 0 and 250 kB/s", up, down)
	}
	got := f.method(t, "session-get", nil)
	if got["speed-limit-down"] != 250.0 || got["speed-limit-down-enabled"] != true || got["speed-limit-up-enabled"] != false {
		t.Fatalf("session-get: %v", got)
	}
	// Disabled, the value is kept for the next enable.
	f.method(t, "session-set", map[string]any{"speed-limit-down-enabled": false})
	f.method(t, "session-set", map[string]any{"speed-limit-down-enabled": true})
	if _, down := f.sess.Rates(); down != 250_000 {
		t.Fatalf("re-enabled: %d", down)
	}
	f.failing(t, "session-set", map[string]any{"speed-limit-up": -5})
	f.failing(t, "session-set", map[string]any{"alt-speed-enabled": true})
	f.failing(t, "session-set", map[string]any{"peer-port": f.sess.PeerPort() + 1})

	data := content(t, f.dir, "l.bin", 20<<10)
	f.method(t, "torrent-add", map[string]any{"metainfo": base64.StdEncoding.EncodeToString(data), "paused": true})
	f.method(t, "torrent-set", map[string]any{"ids": 1, "uploadLimit": 40, "uploadLimited": true, "downloadLimit": 7})
	tr, _ := f.sess.Get(1)
	if st := tr.Status(); st.UploadLimit != 40_000 || st.DownloadLimit != 0 {
		t.Fatalf("torrent caps %d %d, want 40 kB/s up and none down (downloadLimited not set)", st.UploadLimit, st.DownloadLimit)
	}
	out := f.method(t, "torrent-get", map[string]any{"ids": 1, "fields": []string{"uploadLimit", "uploadLimited", "downloadLimit", "downloadLimited"}})
	if fmt.Sprint(out["torrents"]) != "[map[downloadLimit:7 downloadLimited:false uploadLimit:40 uploadLimited:true]]" {
		t.Fatalf("torrent-get limits: %v", out["torrents"])
	}
	f.failing(t, "torrent-set", map[string]any{"ids": 1, "location": "/tmp"})
}

func TestSessionStatsAndClient(t *testing.T) {
	closed := make(chan struct{})
	f := newFixture(t, func(c *Config) {
		c.User, c.Password = "u", "p"
		c.Close = func() { close(closed) }
	})
	c := NewClient(f.url, "u:p")
	ctx := context.Background()
	var stats struct {
		TorrentCount int `json:"torrentCount"`
		Current      struct {
			SessionCount int `json:"sessionCount"`
		} `json:"current-stats"`
	}
	if err := c.Call(ctx, "session-stats", nil, &stats); err != nil {
		t.Fatal(err)
	}
	if stats.TorrentCount != 0 || stats.Current.SessionCount != 1 {
		t.Fatalf("stats %+v", stats)
	}
	var rerr *Error
	if err := c.Call(ctx, "torrent-get", map[string]any{}, nil); !errors.As(err, &rerr) || rerr.Result != "no fields specified" {
		t.Fatalf("an error result: %v", err)
	}
	if err := NewClient(f.url, "u:wrong").Call(ctx, "session-get", nil, nil); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("wrong password: %v", err)
	}
	if err := c.Call(ctx, "session-close", nil, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("session-close did not call Close")
	}
}

func TestALinkInsideLeadingOutIsRefused(t *testing.T) {
	f := newFixture(t, nil)
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "x.torrent"), content(t, outside, "x.bin", 20<<10), 0o644)
	os.Symlink(outside, filepath.Join(f.dir, "escape"))
	if r := f.failing(t, "torrent-add", map[string]any{"filename": "escape/x.torrent"}); !strings.Contains(r, "outside the directories") {
		t.Fatalf("through a directory link: %q", r)
	}
	data := base64.StdEncoding.EncodeToString(content(t, t.TempDir(), "y.bin", 20<<10))
	if r := f.failing(t, "torrent-add", map[string]any{"metainfo": data, "download-dir": filepath.Join(f.dir, "escape")}); !strings.Contains(r, "outside the directories") {
		t.Fatalf("a download dir through a link: %q", r)
	}
}

// btclient-search hands the query to the index and bounds how many searches
// run at once.
func TestSearchMethod(t *testing.T) {
	if r := newFixture(t, nil).failing(t, "btclient-search", map[string]any{"query": "x"}); !strings.Contains(r, "overlay") {
		t.Errorf("without an index: %q", r)
	}
	release := make(chan struct{})
	var queries []string
	var mu sync.Mutex
	f := newFixture(t, func(c *Config) {
		c.MaxSearches = 1
		c.Search = func(ctx context.Context, query string, limit int) ([]index.Result, error) {
			mu.Lock()
			queries = append(queries, fmt.Sprintf("%s/%d", query, limit))
			mu.Unlock()
			if query == "slow" {
				<-release
			}
			if query == "none" {
				return nil, nil
			}
			return []index.Result{{InfoHash: strings.Repeat("ab", 20), Name: "found it", Size: 5, Providers: 2, Magnet: "magnet:?xt=urn:btih:" + strings.Repeat("ab", 20)}}, nil
		}
	})
	out := f.method(t, "btclient-search", map[string]any{"query": "found", "limit": 7})
	rs, _ := out["results"].([]any)
	if len(rs) != 1 || rs[0].(map[string]any)["name"] != "found it" || rs[0].(map[string]any)["providers"] != float64(2) {
		t.Errorf("results %v", out)
	}
	if rs, _ := f.method(t, "btclient-search", map[string]any{"query": "none"})["results"].([]any); rs == nil || len(rs) != 0 {
		t.Errorf("no results should be an empty list")
	}
	for _, bad := range []map[string]any{{}, {"query": "  "}, {"query": 5}, {"query": "x", "limit": 0}, {"query": "x", "limit": 501}} {
		f.failing(t, "btclient-search", bad)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.method(t, "btclient-search", map[string]any{"query": "slow"})
	}()
	testwait.Until(t, 5*time.Second, "the slow search running", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Contains(queries, "slow/50")
	})
	if r := f.failing(t, "btclient-search", map[string]any{"query": "second"}); !strings.Contains(r, "too many searches") {
		t.Errorf("a search beyond MaxSearches: %q", r)
	}
	close(release)
	<-done
	mu.Lock()
	defer mu.Unlock()
	if !slices.Contains(queries, "found/7") {
		t.Errorf("queries seen: %v", queries)
	}
}
