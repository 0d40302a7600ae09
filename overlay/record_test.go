package overlay

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestPublishQueryWithdrawOfAnotherKind uses the generic record API with a
// kind other than providers, across a small overlay.
func TestPublishQueryWithdrawOfAnotherKind(t *testing.T) {
	cfg := fastConfig(20)
	nodes := cluster(t, cfg, 4)
	key := ih(0x77)
	r := Record{Kind: "name", Key: key, ID: "ubuntu-24.04.iso", Value: []byte(`{"info_hash":"ab"}`)}
	if err := nodes[0].Publish(testCtx(t, 5*time.Second), r); err != nil {
		t.Fatal(err)
	}
	// Providers of the same key are another kind: untouched.
	if ps, err := nodes[1].Lookup(testCtx(t, 5*time.Second), key, 0); err != nil || len(ps) != 0 {
		t.Fatalf("a name record showed up as providers: %v, %v", ps, err)
	}
	for _, n := range nodes {
		got, err := n.Query(testCtx(t, 5*time.Second), "name", key, 10)
		if err != nil || len(got) != 1 || got[0].ID != r.ID || !bytes.Equal(got[0].Value, r.Value) {
			t.Fatalf("%s: query = %+v, %v", n.Addr(), got, err)
		}
	}
	time.Sleep(5 * time.Millisecond) // the tombstone must be a newer write
	if err := nodes[0].Withdraw(testCtx(t, 5*time.Second), "name", key, r.ID); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if got, err := n.Query(testCtx(t, 5*time.Second), "name", key, 10); err != nil || len(got) != 0 {
			t.Fatalf("%s: after Withdraw query = %+v, %v", n.Addr(), got, err)
		}
	}
}

func TestPublishRejectsRecordsOutOfBounds(t *testing.T) {
	cfg := fastConfig(1)
	cfg.HealthInterval = time.Hour
	n := startNode(t, cfg)
	for _, r := range []Record{
		{Kind: "", Key: ih(1), ID: "x"},
		{Kind: "Name", Key: ih(1), ID: "x"},
		{Kind: strings.Repeat("a", 17), Key: ih(1), ID: "x"},
		{Kind: "name", Key: ih(1), ID: ""},
		{Kind: "name", Key: ih(1), ID: strings.Repeat("x", 301)},
		{Kind: "name", Key: ih(1), ID: "x", Value: make([]byte, cfg.MaxValueBytes+1)},
	} {
		if err := n.Publish(testCtx(t, time.Second), r); err == nil {
			t.Errorf("Publish(%q, %d-byte id, %d-byte value) accepted", r.Kind, len(r.ID), len(r.Value))
		}
	}
	// One origin holds at most MaxRecordsPerOriginKey records of one key on
	// any owner (here itself).
	for i := range cfg.MaxRecordsPerOriginKey + 10 {
		if err := n.Publish(testCtx(t, time.Second), Record{Kind: "name", Key: ih(2), ID: string(rune('a'+i%26)) + strings.Repeat("z", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if got := n.store.OriginLen(n.Addr()); got != cfg.MaxRecordsPerOriginKey {
		t.Fatalf("the owner holds %d records of one origin under one key, want %d", got, cfg.MaxRecordsPerOriginKey)
	}
}
