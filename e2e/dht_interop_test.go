package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"btclient/dht"
	"btclient/internal/testwait"
)

// ltDHT starts a libtorrent DHT node (testdata/lt_dht.py) on listen.
func ltDHT(t *testing.T, label, listen string, args ...string) *proc {
	t.Helper()
	script, _ := filepath.Abs("testdata/lt_dht.py")
	p := start(t, label, debianPython, append([]string{script, "--listen", listen}, args...)...)
	p.waitOutput(30*time.Second, "dht up")
	return p
}

// btclientDHT starts `btclient dht` on listen and waits until it listens.
func btclientDHT(t *testing.T, label, listen string, args ...string) *proc {
	t.Helper()
	p := btclient(t, label, append([]string{"dht", "--listen", listen}, args...)...)
	p.waitOutput(10*time.Second, "dht listening on "+listen)
	return p
}

// goDHT runs a dht.Node of this process on listen until the test ends: the
// side of btclient that looks up and announces.
func goDHT(t *testing.T, listen string, bootstrap ...string) *dht.Node {
	t.Helper()
	cfg := dht.DefaultConfig()
	cfg.ListenAddr = listen
	cfg.Bootstrap = bootstrap
	cfg.MaintenanceInterval = time.Second // rejoin quickly while the table is small
	n, err := dht.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("dht node: %v", err)
		}
	})
	return n
}

func randomInfoHash(t *testing.T) [20]byte {
	var ih [20]byte
	rand.Read(ih[:])
	return ih
}

// TestDHTFindsALibtorrentPeer: a libtorrent session announces an info hash
// into a DHT of libtorrent nodes and a `btclient dht` node; a btclient
// node that knows only a libtorrent node finds the peer with get_peers.
func TestDHTFindsALibtorrentPeer(t *testing.T) {
	needLibtorrent(t)
	bt := hostPort("127.0.0.2", freePort(t, "127.0.0.2"))
	btclientDHT(t, "btclient dht", bt)
	ltNode := hostPort("127.0.0.3", freePort(t, "127.0.0.3"))
	ltDHT(t, "libtorrent node", ltNode, "--node", bt)

	ih := randomInfoHash(t)
	ltAnnouncer := hostPort("127.0.0.4", freePort(t, "127.0.0.4"))
	ann := ltDHT(t, "libtorrent announcer", ltAnnouncer, "--node", bt, "--node", ltNode,
		"--announce", hex.EncodeToString(ih[:]), "--save", t.TempDir())
	ann.waitOutput(30*time.Second, "announcing")

	seeker := goDHT(t, hostPort("127.0.0.5", freePort(t, "127.0.0.5")), ltNode)
	want := netip.MustParseAddrPort(ltAnnouncer) // libtorrent announces its listen port
	var last []netip.AddrPort
	testwait.Until(t, 90*time.Second, "btclient to find libtorrent's peer through the DHT", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var err error
		if last, err = seeker.GetPeers(ctx, ih); err != nil {
			t.Logf("get_peers: %v", err)
		}
		if slices.Contains(last, want) {
			return true
		}
		time.Sleep(time.Second)
		return false
	})
	st := seeker.Stats()
	t.Logf("found %v (table %d nodes, %d lookups, %d packets in, %d out)", last, st.Nodes, st.Lookups, st.PacketsIn, st.PacketsOut)
}

// TestLibtorrentFindsABtclientPeer: a btclient node announces an info hash
// into a DHT of btclient nodes (two `btclient dht` processes); a libtorrent
// session given only one of them finds the peer with dht_get_peers.
func TestLibtorrentFindsABtclientPeer(t *testing.T) {
	needLibtorrent(t)
	bt1 := hostPort("127.0.0.6", freePort(t, "127.0.0.6"))
	btclientDHT(t, "btclient dht 1", bt1)
	bt2 := hostPort("127.0.0.7", freePort(t, "127.0.0.7"))
	btclientDHT(t, "btclient dht 2", bt2, "--bootstrap", bt1)

	ih := randomInfoHash(t)
	announcer := goDHT(t, hostPort("127.0.0.8", freePort(t, "127.0.0.8")), bt1)
	testwait.Until(t, 30*time.Second, "the btclient announce to be taken", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := announcer.Announce(ctx, ih, 7777, false)
		return err == nil
	})

	lt := ltDHT(t, "libtorrent seeker", hostPort("127.0.0.9", freePort(t, "127.0.0.9")), "--node", bt1,
		"--get-peers", hex.EncodeToString(ih[:]), "--want", "127.0.0.8:7777", "--timeout", "90")
	if code := lt.wait(2 * time.Minute); code != 0 {
		t.Fatalf("libtorrent did not find btclient's peer (exit %d)\n%s", code, tail(lt.out.String(), 2000))
	}
	if !strings.Contains(lt.out.String(), "found 127.0.0.8:7777") {
		t.Fatalf("libtorrent output:\n%s", lt.out.String())
	}
	t.Logf("libtorrent:\n%s", lt.out.String())
}
