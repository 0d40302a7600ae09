package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"btclient/index"
	"btclient/internal/testwait"
	"btclient/torrent"
)

// sharer is one daemon sharing one folder, its overlay node on its own
// loopback address.
type sharer struct {
	*daemon
	folder  string
	overlay string // HOST:PORT of its overlay node
}

// startSharers runs n daemons, each sharing its own folder (filled by fill
// before it starts), joined in one overlay through the first.
func startSharers(t *testing.T, n int, fill func(i int, folder string)) []*sharer {
	t.Helper()
	var out []*sharer
	for i := range n {
		ip := fmt.Sprintf("127.0.0.%d", 30+i)
		s := &sharer{folder: t.TempDir(), overlay: hostPort(ip, freePort(t, ip))}
		fill(i, s.folder)
		args := []string{"--share", s.folder, "--discovery-mode", "overlay", "--bind", ip,
			"--overlay-port", strings.Split(s.overlay, ":")[1], "--dht=false"}
		if i > 0 {
			args = append(args, "--bootstrap", out[0].overlay)
		}
		s.daemon = startDaemon(t, fmt.Sprintf("sharer%d", i), t.TempDir(), t.TempDir(), args...)
		out = append(out, s)
	}
	return out
}

// search runs `btclient search --json` against a daemon's RPC (or with
// --bootstrap given in extra) and returns the results.
func search(t *testing.T, extra []string, words ...string) ([]index.Result, error) {
	t.Helper()
	args := append(append([]string{"search", "--json", "--timeout", "5s"}, extra...), words...)
	out, err := exec.Command(binary, args...).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return nil, fmt.Errorf("%v: %s", err, ee.Stderr)
		}
		return nil, err
	}
	var rs []index.Result
	if err := json.Unmarshal(out, &rs); err != nil {
		return nil, fmt.Errorf("not JSON: %v: %s", err, out)
	}
	return rs, nil
}

func (s *sharer) search(t *testing.T, words ...string) []index.Result {
	t.Helper()
	rs, err := search(t, []string{"--rpc", s.url()}, words...)
	if err != nil {
		t.Fatalf("search %q: %v", words, err)
	}
	return rs
}

// Ten daemons share ten folders named in many scripts; every name is found
// from other nodes, and a result's magnet fetches the file byte-identical.
func TestShareAndSearchAcrossTenNodes(t *testing.T) {
	names := []string{
		"Canción de cuna.ogg", "Привет мир.txt", "日本語 ファイル.bin", "file with  spaces.dat",
		"Ελληνικά νέα.txt", "naïve café.md", "عربي ملف.txt", "हिन्दी गाना.mp3", "🎵 emoji song.flac",
		"Plain Folder",
	}
	sharers := startSharers(t, len(names), func(i int, folder string) {
		if i == len(names)-1 {
			os.Mkdir(filepath.Join(folder, names[i]), 0o755)
			randomFile(t, filepath.Join(folder, names[i]), "inner track.wav", 70<<10)
			randomFile(t, filepath.Join(folder, names[i]), "second.wav", 30<<10)
			return
		}
		randomFile(t, folder, names[i], int64(64<<10+i*1000))
	})
	for i, name := range names {
		asker := sharers[(i+3)%len(sharers)]
		words := index.Words(name)
		testwait.Until(t, 60*time.Second, fmt.Sprintf("%q found from %s", name, asker.name), func() bool {
			for _, r := range asker.search(t, words...) {
				if r.Name == index.CleanName(name) && r.Providers == 1 {
					return true
				}
			}
			return false
		})
	}
	// Accents folded and case ignored; a file inside a folder is found by
	// its own name.
	for query, want := range map[string]string{"CANCION": "Canción de cuna.ogg", "Cafe NAIVE": "naïve café.md", "inner": "Plain Folder"} {
		rs := sharers[0].search(t, query)
		if len(rs) != 1 || rs[0].Name != want {
			t.Errorf("search %q = %+v, want %q", query, rs, want)
		}
	}
	// The same search straight through the overlay, without a daemon.
	rs, err := search(t, []string{"--bootstrap", sharers[5].overlay}, "Привет")
	if err != nil || len(rs) != 1 || rs[0].Name != "Привет мир.txt" {
		t.Fatalf("search --bootstrap: %+v, %v", rs, err)
	}

	// Fetch a result through its magnet on another node.
	fetcher := sharers[6]
	var added map[string]any
	fetcher.call("torrent-add", map[string]any{"filename": rs[0].Magnet}, &added)
	m, err := torrent.ParseMagnet(rs[0].Magnet)
	if err != nil {
		t.Fatal(err)
	}
	fetcher.waitComplete(m.InfoHash, 60*time.Second)
	sameFile(t, filepath.Join(sharers[1].folder, names[1]), filepath.Join(fetcher.dir, names[1]))
	// Now two hosts provide it.
	testwait.Until(t, 30*time.Second, "the fetcher counted as a second provider", func() bool {
		rs := sharers[2].search(t, "привет", "мир")
		return len(rs) == 1 && rs[0].Providers == 2
	})
}

// A file written into a shared folder is found within 10 s; a removed one
// and a node that leaves are gone from the results.
func TestSharedFolderChangesReachTheIndex(t *testing.T) {
	sharers := startSharers(t, 3, func(i int, folder string) {
		randomFile(t, folder, fmt.Sprintf("initial%d.bin", i), 20<<10)
	})
	testwait.Until(t, 60*time.Second, "the initial files indexed", func() bool {
		return len(sharers[2].search(t, "initial0")) == 1 && len(sharers[0].search(t, "initial2")) == 1
	})

	written := time.Now()
	randomFile(t, sharers[0].folder, "brand new report.pdf", 40<<10)
	took := testwait.Until(t, 30*time.Second, "the new file found", func() bool {
		return len(sharers[1].search(t, "brand", "report")) == 1
	})
	t.Logf("a new file was found from another node %.1f s after it was written", time.Since(written).Seconds())
	if took > 10*time.Second {
		t.Errorf("a new file took %v to be found, want within 10 s", took)
	}

	if err := os.Remove(filepath.Join(sharers[0].folder, "brand new report.pdf")); err != nil {
		t.Fatal(err)
	}
	removed := time.Now()
	testwait.Until(t, 30*time.Second, "the removed file gone", func() bool { return len(sharers[1].search(t, "brand")) == 0 })
	t.Logf("a removed file left the results after %.1f s", time.Since(removed).Seconds())

	sharers[2].kill()
	killed := time.Now()
	testwait.Until(t, 120*time.Second, "the killed node's file gone", func() bool { return len(sharers[1].search(t, "initial2")) == 0 })
	t.Logf("a killed node's file left the results after %.1f s", time.Since(killed).Seconds())
	if rs := sharers[1].search(t, "initial0"); len(rs) != 1 {
		t.Errorf("a live node's file is gone too: %+v", rs)
	}
}

// Hostile searches get one clear error, and the daemon still answers.
func TestSearchRefusesHostileQueries(t *testing.T) {
	sharers := startSharers(t, 1, func(i int, folder string) { randomFile(t, folder, "still here.txt", 10<<10) })
	s := sharers[0]
	for _, words := range [][]string{
		{strings.Repeat("word ", 10_000)},
		{"w1", "w2", "w3", "w4", "w5", "w6", "w7", "w8", "w9"},
		{"!", "?"},
	} {
		cmd := exec.Command(binary, append([]string{"search", "--rpc", s.url()}, words...)...)
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || strings.Count(strings.TrimSpace(string(out)), "\n") != 0 {
			t.Errorf("search %.30q: %v, %q; want exit 2 and one line", words, err, out)
		}
	}
	// Through the RPC, past the CLI's checks.
	var out map[string]any
	if err := s.client().Call(context.Background(), "btclient-search", map[string]any{"query": strings.Repeat("x ", 100_000)}, &out); err == nil {
		t.Error("a 200 kB query was answered")
	}
	// A flood of searches at once: some may be refused, none hangs, and an
	// honest search afterwards is answered.
	done := make(chan error, 64)
	for range 64 {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			done <- s.client().Call(ctx, "btclient-search", map[string]any{"query": "flood words " + strconv.Itoa(len(done))}, nil)
		}()
	}
	refused := 0
	for range 64 {
		if err := <-done; err != nil {
			if !strings.Contains(err.Error(), "too many") && !strings.Contains(err.Error(), "busy") {
				t.Errorf("a flooded search failed oddly: %v", err)
			}
			refused++
		}
	}
	t.Logf("%d of 64 concurrent searches refused", refused)
	testwait.Until(t, 30*time.Second, "the honest search answered", func() bool {
		rs, err := search(t, []string{"--rpc", s.url()}, "still")
		return err == nil && len(rs) == 1
	})
}
