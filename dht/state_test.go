package dht

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"btclient/internal/testwait"
)

func TestRestartRejoinsFromTheSavedTableWithoutBootstrap(t *testing.T) {
	boot := udpNode(t, nil)
	var others []*Node
	for range 4 {
		others = append(others, udpNode(t, nil, boot))
	}
	state := filepath.Join(t.TempDir(), "dht.state")
	cfg := testConfig()
	cfg.StateFile = state
	cfg.Bootstrap = []string{boot.Addr().String()}
	first, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	stop := runNode(t, first)
	waitJoined(t, first)
	for _, o := range others {
		waitJoined(t, o)
	}
	testwait.Until(t, 10*time.Second, "the table to hold every node", func() bool { return first.Stats().Nodes >= 5 })
	stop() // a clean exit saves the table
	if _, err := os.Stat(state); err != nil {
		t.Fatalf("no table saved: %v", err)
	}

	ih := randomID()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := others[2].Announce(ctx, ih, 7002, false); err != nil {
		t.Fatal(err)
	}

	// The same address and state file, no bootstrap node.
	cfg.Bootstrap = nil
	cfg.ListenAddr = first.Addr().String()
	second, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if second.ID() != first.ID() {
		t.Fatal("the node id was not kept")
	}
	runNode(t, second)
	waitJoined(t, second)
	peers, err := second.GetPeers(ctx, ih)
	if err != nil {
		t.Fatal(err)
	}
	if want := netip.MustParseAddrPort("127.0.0.1:7002"); !slices.Contains(peers, want) {
		t.Fatalf("the restarted node found %v, want %v", peers, want)
	}
	if st := second.Stats(); st.GoodNodes < 3 {
		t.Fatalf("the restarted node has %d good nodes", st.GoodNodes)
	}
}

func TestAnUnreadableSavedTableStartsAfresh(t *testing.T) {
	for _, content := range []string{"", "garbage", "d2:id3:abce", "d2:id20:aaaaaaaaaaaaaaaaaaaa5:nodes3:xyze"} {
		state := filepath.Join(t.TempDir(), "dht.state")
		if err := os.WriteFile(state, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg := testConfig()
		cfg.StateFile = state
		n, err := New(cfg)
		if err != nil {
			t.Fatalf("%q: %v", content, err)
		}
		n.tr.Close()
		if n.Stats().Nodes != 0 {
			t.Fatalf("%q: nodes restored from junk", content)
		}
	}
}

func TestConfigValidation(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
	}{
		{"zero K", func(c *Config) { c.K = 0 }},
		{"negative timeout", func(c *Config) { c.QueryTimeout = -1 }},
		{"slow query past the timeout", func(c *Config) { c.SlowQuery = 3 * time.Second }},
		{"tiny packet bound", func(c *Config) { c.MaxPacketSize = 100 }},
		{"amplification factor below 1", func(c *Config) { c.AmplificationFactor = 0.5 }},
		{"bootstrap without a port", func(c *Config) { c.Bootstrap = []string{"router.example"} }},
		{"no address", func(c *Config) { c.ListenAddr = "" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.mutate(&c)
			if _, err := New(c); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	if c := DefaultConfig(); len(c.Bootstrap) != 0 || c.StateFile != "" {
		t.Fatal("the default names a bootstrap node or a state file")
	}
}
