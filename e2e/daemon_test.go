package e2e

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"btclient/internal/testwait"
	"btclient/torrent"
)

// The real transmission-remote drives btclient daemon: it adds a .torrent
// (whose data comes from a btclient seeder found through a tracker) and a
// magnet (whose metadata and data come from libtorrent), lists them with
// the right names, percentages and states, shows details, stops and starts
// one, shows the session and its statistics, and removes one with its data.
func TestTransmissionRemoteDrivesTheDaemon(t *testing.T) {
	needTransmissionRemote(t)
	needLibtorrent(t)
	tracker := startTracker(t)

	srcA := t.TempDir()
	contentA := randomFile(t, srcA, "alpha.bin", 6<<20)
	torA := makeTorrent(t, contentA, "--piece-length", "64KiB")
	metaA, _ := torrent.Load(torA)
	seeder(t, "btclient seeder", srcA, torA, "--tracker", tracker)

	srcB := t.TempDir()
	contentB := randomFile(t, srcB, "beta.bin", 5<<20)
	torB := makeTorrent(t, contentB, "--piece-length", "64KiB")
	metaB, _ := torrent.Load(torB)
	ltAddr := hostPort("127.0.0.2", freePort(t, "127.0.0.2"))
	libtorrent(t, "libtorrent seeder", "seed", torB, srcB, ltAddr).waitOutput(time.Minute, "seeding")
	magnetB := metaB.Magnet().String() + "&x.pe=" + ltAddr

	dir := t.TempDir()
	d := startDaemon(t, "daemon", dir, t.TempDir(), "--tracker", tracker)
	tr := func(args ...string) string {
		t.Helper()
		out, code := transmissionRemote(t, d.rpcAddr, args...)
		if code != 0 {
			t.Fatalf("transmission-remote %s: exit %d\n%s", strings.Join(args, " "), code, out)
		}
		return out
	}

	if out := tr("-a", torA); !strings.Contains(out, `responded: "success"`) {
		t.Fatalf("-a FILE: %s", out)
	}
	if out := tr("-a", magnetB); !strings.Contains(out, `responded: "success"`) {
		t.Fatalf("-a MAGNET: %s", out)
	}
	d.waitComplete(metaA.InfoHash, 2*time.Minute)
	d.waitComplete(metaB.InfoHash, 2*time.Minute)
	sameFile(t, contentA, filepath.Join(dir, "alpha.bin"))
	sameFile(t, contentB, filepath.Join(dir, "beta.bin"))

	list := parseRemoteList(tr("-l"))
	if len(list) != 2 {
		t.Fatalf("-l lists %d torrents: %+v", len(list), list)
	}
	for i, want := range []string{"alpha.bin", "beta.bin"} {
		got := list[i]
		// Complete, with no peer taking data right now: Transmission says
		// Idle; with one, Seeding.
		if got.id != i+1 || got.name != want || got.done != "100%" || (got.status != "Idle" && got.status != "Seeding") {
			t.Errorf("-l line %d: %+v, want id %d, %s, 100%%, Idle or Seeding", i, got, i+1, want)
		}
	}

	info := tr("-t", "1", "-i")
	for _, want := range []string{"Name: alpha.bin", fmt.Sprintf("Hash: %x", metaA.InfoHash), "Percent Done: 100%",
		"Location: " + dir, "Total size: 6.29 MB"} {
		if !strings.Contains(info, want) {
			t.Errorf("-t 1 -i lacks %q:\n%s", want, info)
		}
	}

	tr("-t", "1", "-S")
	if l := parseRemoteList(tr("-l")); l[0].status != "Stopped" || l[1].status == "Stopped" {
		t.Fatalf("after -t 1 -S: %+v", l)
	}
	tr("-t", "1", "-s")
	testwait.Until(t, 10*time.Second, "torrent 1 running again", func() bool {
		l := parseRemoteList(tr("-l"))
		return len(l) == 2 && (l[0].status == "Idle" || l[0].status == "Seeding")
	})

	si := tr("-si")
	for _, want := range []string{"RPC version: 16", "Download directory: " + dir,
		"Listenport: " + strconv.Itoa(d.peerPort), "Download speed limit: Unlimited"} {
		if !strings.Contains(si, want) {
			t.Errorf("-si lacks %q:\n%s", want, si)
		}
	}
	st := tr("-st")
	if !strings.Contains(st, "CURRENT SESSION") || !strings.Contains(st, "Downloaded: 11.") {
		t.Errorf("-st does not show the 11 MB downloaded:\n%s", st)
	}

	tr("-t", "2", "--remove-and-delete")
	if _, err := os.Stat(filepath.Join(dir, "beta.bin")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("--remove-and-delete left the data: %v", err)
	}
	if l := parseRemoteList(tr("-l")); len(l) != 1 || l[0].name != "alpha.bin" {
		t.Fatalf("after removing 2: %+v", l)
	}
	sameFile(t, contentA, filepath.Join(dir, "alpha.bin"))
}

// With --rpc-auth, transmission-remote fails without -n user:pass and
// works with it.
func TestTransmissionRemoteNeedsTheDaemonsPassword(t *testing.T) {
	needTransmissionRemote(t)
	d := startDaemon(t, "daemon", t.TempDir(), t.TempDir(), "--rpc-auth", "alice:open sesame")
	out, code := transmissionRemote(t, d.rpcAddr, "-l")
	if code == 0 || !strings.Contains(out, "401") {
		t.Fatalf("without credentials: exit %d\n%s", code, out)
	}
	out, code = transmissionRemote(t, d.rpcAddr, "-n", "alice:wrong", "-l")
	if code == 0 {
		t.Fatalf("with a wrong password: exit 0\n%s", out)
	}
	out, code = transmissionRemote(t, d.rpcAddr, "-n", "alice:open sesame", "-l")
	if code != 0 || !strings.Contains(out, "ID") {
		t.Fatalf("with the password: exit %d\n%s", code, out)
	}
	// BTCLIENT_RPC_AUTH is the flag's environment variable.
	env := startEnv(t, "daemon (env auth)", []string{"BTCLIENT_RPC_AUTH=bob:pw"}, binary, "daemon",
		"--rpc-listen", hostPort("127.0.0.1", freePort(t, "127.0.0.1")), "-p", "0",
		"--download-dir", t.TempDir(), "--state-dir", t.TempDir(), "--discovery-mode", "tracker", "--overlay-port", "0")
	testwait.Until(t, 20*time.Second, "the daemon listening", func() bool { return strings.Contains(env.out.String(), "auth=true") })
}

// One daemon seeds three torrents and downloads two more at the same time,
// every peer knowing only its one peer-wire port: btclient leechers dial it
// for what it seeds, libtorrent seeders dial it for what it downloads (a
// btclient seeder waits to be dialed).
func TestDaemonSeedsAndDownloadsManyTorrentsThroughOnePort(t *testing.T) {
	needLibtorrent(t)
	dir := t.TempDir()
	d := startDaemon(t, "daemon", dir, t.TempDir())
	add := func(tor string) *torrent.MetaInfo {
		t.Helper()
		data, err := os.ReadFile(tor)
		if err != nil {
			t.Fatal(err)
		}
		d.call("torrent-add", map[string]any{"metainfo": base64.StdEncoding.EncodeToString(data)}, nil)
		m, _ := torrent.Load(tor)
		return m
	}
	type job struct {
		content, tor string
		meta         *torrent.MetaInfo
	}
	var seeds, gets []job
	for i := range 3 {
		content := randomFile(t, dir, fmt.Sprintf("seed%d.bin", i), int64(3+i)<<20)
		tor := makeTorrent(t, content, "--piece-length", "64KiB")
		seeds = append(seeds, job{content, tor, add(tor)})
	}
	for i := range 2 {
		src := t.TempDir()
		content := randomFile(t, src, fmt.Sprintf("get%d.bin", i), int64(4+i)<<20)
		tor := makeTorrent(t, content, "--piece-length", "64KiB")
		gets = append(gets, job{content, tor, add(tor)})
	}
	for _, s := range seeds {
		d.waitComplete(s.meta.InfoHash, 30*time.Second)
	}
	for i, g := range gets {
		ip := fmt.Sprintf("127.0.0.%d", 3+i)
		libtorrent(t, fmt.Sprintf("libtorrent seeder %d (dials the daemon)", i), "seed", g.tor, filepath.Dir(g.content),
			hostPort(ip, freePort(t, ip)), d.peerAddr())
	}
	var leechers []*proc
	var dsts []string
	for i, s := range seeds {
		dst := t.TempDir()
		dsts = append(dsts, dst)
		leechers = append(leechers, leecher(t, fmt.Sprintf("leecher %d", i), dst, s.tor, "", d.peerAddr()))
	}
	for _, g := range gets {
		d.waitComplete(g.meta.InfoHash, 2*time.Minute)
		sameFile(t, g.content, filepath.Join(dir, filepath.Base(g.content)))
	}
	for i, l := range leechers {
		if code := l.wait(2 * time.Minute); code != 0 {
			t.Fatalf("leecher %d exit status %d", i, code)
		}
		sameFile(t, seeds[i].content, filepath.Join(dsts[i], filepath.Base(seeds[i].content)))
	}
	if n := len(d.torrents()); n != 5 {
		t.Fatalf("the daemon holds %d torrents, want 5", n)
	}
}

// kill -9 mid-download and while seeding: every torrent comes back and
// resumes, and no piece is ever reported verified that does not verify on
// disk; a clean restart hashes nothing.
func TestDaemonRestarts(t *testing.T) {
	tracker := startTracker(t)
	src := t.TempDir()
	content := randomFile(t, src, "film.bin", 48<<20)
	tor := makeTorrent(t, content, "--piece-length", "256KiB")
	film, _ := torrent.Load(tor)
	// A capped seeder keeps the download going for a dozen seconds.
	seeder(t, "seeder", src, tor, "--tracker", tracker, "--max-upload-rate", "4MiB")

	dir := t.TempDir()
	keep := randomFile(t, dir, "keep.bin", 3<<20)
	keepTor := makeTorrent(t, keep, "--piece-length", "64KiB")
	kept, _ := torrent.Load(keepTor)
	d := startDaemon(t, "daemon", dir, t.TempDir(), "--tracker", tracker)
	for _, p := range []string{keepTor, tor} {
		data, _ := os.ReadFile(p)
		d.call("torrent-add", map[string]any{"metainfo": base64.StdEncoding.EncodeToString(data)}, nil)
	}
	d.waitComplete(kept.InfoHash, 30*time.Second)

	var before int64
	testwait.Until(t, time.Minute, "the download a quarter done", func() bool {
		f, _ := d.byHash(film.InfoHash)
		before = f.HaveValid
		return f.HaveValid > film.TotalLength/4
	})
	if before > film.TotalLength*3/4 {
		t.Fatalf("the download went too fast to be cut in the middle (%d of %d)", before, film.TotalLength)
	}
	d.kill()
	t.Logf("killed mid-download with %d of %d bytes verified", before, film.TotalLength)

	d.start("daemon (after kill -9 mid-download)")
	if n := len(d.torrents()); n != 2 {
		t.Fatalf("%d torrents back, want 2", n)
	}
	// Until the check is over, and after: whatever is claimed verifies.
	var after int64
	testwait.Until(t, time.Minute, "the check over", func() bool {
		f, _ := d.byHash(film.InfoHash)
		verifiedOnDisk(t, dir, film, f.Pieces)
		after = f.HaveValid
		return f.Status != 2
	})
	t.Logf("back with %d bytes verified", after)
	if after < before {
		t.Fatalf("resumed with %d bytes, had %d verified before the kill", after, before)
	}
	for i := 0; ; i++ {
		f, _ := d.byHash(film.InfoHash)
		verifiedOnDisk(t, dir, film, f.Pieces)
		if f.PercentDone == 1 {
			break
		}
		if i > 1200 {
			t.Fatal("the download did not finish after the restart")
		}
		time.Sleep(100 * time.Millisecond)
	}
	sameFile(t, content, filepath.Join(dir, "film.bin"))

	// kill -9 while seeding: both back, complete, nothing hashed (the
	// resume data was saved at completion).
	time.Sleep(time.Second)
	d.kill()
	d.start("daemon (after kill -9 while seeding)")
	for _, m := range []*torrent.MetaInfo{film, kept} {
		d.waitComplete(m.InfoHash, 30*time.Second)
		f, _ := d.byHash(m.InfoHash)
		if n := verifiedOnDisk(t, dir, m, f.Pieces); n != m.NumPieces() {
			t.Fatalf("%s: %d of %d pieces after the restart", m.Name, n, m.NumPieces())
		}
	}
	for _, st := range d.statusNow().Torrents {
		if st.Hashed != 0 {
			t.Errorf("after kill -9 while seeding, %s hashed %d pieces, want 0", st.Name, st.Hashed)
		}
	}

	// A clean stop and start: exit 0, nothing hashed.
	d.signal(syscall.SIGTERM)
	if code := d.wait(30 * time.Second); code != 0 {
		t.Fatalf("SIGTERM: exit %d", code)
	}
	d.start("daemon (after a clean stop)")
	testwait.Until(t, 30*time.Second, "both seeding", func() bool {
		st := d.statusNow()
		return len(st.Torrents) == 2 && st.Torrents[0].State == "seeding" && st.Torrents[1].State == "seeding"
	})
	for _, st := range d.statusNow().Torrents {
		if st.Hashed != 0 {
			t.Errorf("after a clean restart, %s hashed %d pieces, want 0", st.Name, st.Hashed)
		}
	}
	if !strings.Contains(d.out.String(), "hashed=0") || strings.Contains(d.out.String(), "hashed=1") {
		t.Errorf("the log of the clean restart does not say hashed=0 for every torrent:\n%s", tail(d.out.String(), 2000))
	}
}

// btclient remote drives the daemon: add (a file and a magnet), list,
// info, stop, start, remove --delete; its errors are clear and exit 1.
func TestBtclientRemoteDrivesTheDaemon(t *testing.T) {
	dir := t.TempDir()
	content := randomFile(t, dir, "doc.bin", 2<<20)
	tor := makeTorrent(t, content, "--piece-length", "64KiB")
	meta, _ := torrent.Load(tor)
	d := startDaemon(t, "daemon", dir, t.TempDir(), "--rpc-auth", "me:pw")
	remote := func(want int, args ...string) string {
		t.Helper()
		p := btclient(t, "remote "+strings.Join(args, " "), append([]string{"remote", "--rpc", d.url(), "--auth", "me:pw"}, args...)...)
		if code := p.wait(30 * time.Second); code != want {
			t.Fatalf("btclient remote %s: exit %d, want %d\n%s", strings.Join(args, " "), code, want, p.out.String())
		}
		return p.out.String()
	}
	if out := remote(0, "add", tor); !strings.Contains(out, fmt.Sprintf("added 1 %x doc.bin", meta.InfoHash)) {
		t.Fatalf("add: %s", out)
	}
	if out := remote(0, "add", "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567&dn=later", "--paused"); !strings.Contains(out, "added 2") {
		t.Fatalf("add a magnet: %s", out)
	}
	d.waitComplete(meta.InfoHash, 30*time.Second)
	list := remote(0, "list")
	if !strings.Contains(list, "100%") || !strings.Contains(list, "Seeding") || !strings.Contains(list, "Stopped") {
		t.Fatalf("list:\n%s", list)
	}
	if out := remote(0, "info", "1"); !strings.Contains(out, "Name:          doc.bin") || !strings.Contains(out, "File:") {
		t.Fatalf("info:\n%s", out)
	}
	remote(0, "stop", "1")
	if out := remote(0, "info", fmt.Sprintf("%x", meta.InfoHash)); !strings.Contains(out, "State:         Stopped") {
		t.Fatalf("info after stop:\n%s", out)
	}
	remote(0, "start", "all")
	remote(0, "remove", "1", "--delete")
	if _, err := os.Stat(content); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("remove --delete left the data: %v", err)
	}
	if out := remote(1, "add", "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567", "--download-dir", "/etc"); !strings.Contains(out, "outside the directories") {
		t.Fatalf("a refused directory: %s", out)
	}
	p := btclient(t, "remote (wrong password)", "remote", "--rpc", d.url(), "--auth", "me:nope", "list")
	if code := p.wait(30 * time.Second); code != 1 || !strings.Contains(p.out.String(), "unauthorized") {
		t.Fatalf("wrong password: exit %d\n%s", code, p.out.String())
	}
}
