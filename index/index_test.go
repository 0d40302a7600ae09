package index

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"btclient/internal/testwait"
	"btclient/torrent"
)

func TestWords(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"Canción de Cuna.ogg", []string{"cancion", "de", "cuna", "ogg"}},
		{"CANCIÓN canción cancion", []string{"cancion"}},
		{"Ångström_ﬁle-2 (final).tar.gz", []string{"angstrom", "file", "final", "tar", "gz"}},
		{"a b c", nil},
		{"Привет мир.txt", []string{"привет", "мир", "txt"}},
		{"日本語 ファイル", []string{"日本語", "ファイル"}},
		{"Ελληνικά", []string{"ελληνικα"}},
		{"x\x00y\nzz\x1b[31m", []string{"zz", "31m"}},
		{"bad\xffutf8", []string{"bad", "utf8"}},
		{strings.Repeat("w", MaxWordBytes) + " ok " + strings.Repeat("v", MaxWordBytes+1), []string{strings.Repeat("w", MaxWordBytes), "ok"}},
	} {
		if got := Words(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("Words(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestCleanName(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain name.mkv", "plain name.mkv"},
		{"../../etc/passwd", ".. .. etc passwd"},
		{"C:\\x\ny\x1b[2Jz", "C: x y [2Jz"},
		{"  lots   of\tspace ", "lots of space"},
		{"bad\xffbyte", "bad byte"},
		{"rtl\u202eevil", "rtl evil"},
	} {
		if got := CleanName(tc.in); got != tc.want {
			t.Errorf("CleanName(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	long := CleanName(strings.Repeat("ü", 1<<20))
	if len(long) > MaxNameBytes || !strings.HasPrefix(long, "üü") || strings.ContainsRune(long, '\uFFFD') {
		t.Errorf("a 2 MiB name cleaned to %d bytes (%q…)", len(long), long[:8])
	}
}

// memStore is an in-process Store shared by several publishers, each seen
// from its own origin address.
type memStore struct {
	mu   sync.Mutex
	recs map[[20]byte]map[string]Record // key → origin+id → record
}

func newMemStore() *memStore { return &memStore{recs: map[[20]byte]map[string]Record{}} }

type originView struct {
	s      *memStore
	origin string
}

func (s *memStore) as(origin string) Store { return originView{s, origin} }

func (v originView) Publish(_ context.Context, puts []Put) error {
	v.s.mu.Lock()
	defer v.s.mu.Unlock()
	for _, p := range puts {
		if v.s.recs[p.Key] == nil {
			v.s.recs[p.Key] = map[string]Record{}
		}
		v.s.recs[p.Key][v.origin+" "+p.ID] = Record{Origin: v.origin, ID: p.ID, Value: p.Value}
	}
	return nil
}

func (v originView) Withdraw(_ context.Context, key [20]byte, id string) error {
	v.s.mu.Lock()
	defer v.s.mu.Unlock()
	delete(v.s.recs[key], v.origin+" "+id)
	return nil
}

func (v originView) Query(_ context.Context, key [20]byte, limit int) ([]Record, error) {
	v.s.mu.Lock()
	defer v.s.mu.Unlock()
	var out []Record
	for _, r := range v.s.recs[key] {
		if len(out) == limit {
			break
		}
		out = append(out, r)
	}
	return out, nil
}

func entry(name string, size int64, files ...string) Entry {
	m := &torrent.MetaInfo{Name: name, TotalLength: size, InfoHash: sha1.Sum([]byte(name))}
	for _, f := range files {
		m.Files = append(m.Files, torrent.File{Path: strings.Split(f, "/")})
	}
	return EntryOf(m)
}

func TestSearch(t *testing.T) {
	ctx := context.Background()
	store := newMemStore()
	a := NewPublisher(store.as("127.0.0.1:7001"), 0)
	b := NewPublisher(store.as("127.0.0.2:7001"), 0)
	aSecond := NewPublisher(store.as("127.0.0.1:7002"), 0) // same host as a
	song := entry("Canción de Cuna.ogg", 1000)
	album := entry("Greatest Hits", 5000, "Greatest Hits/01 Canción.ogg", "Greatest Hits/02 Other.ogg")
	other := entry("Other Song.mp3", 10)
	for _, p := range []struct {
		pub     *Publisher
		entries []Entry
	}{{a, []Entry{song, album, other}}, {b, []Entry{album}}, {aSecond, []Entry{song}}} {
		for _, e := range p.entries {
			if err := p.pub.Add(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
	}

	names := func(rs []Result) []string {
		var out []string
		for _, r := range rs {
			out = append(out, fmt.Sprintf("%s/%d", r.Name, r.Providers))
		}
		return out
	}
	for _, tc := range []struct {
		query string
		want  []string
	}{
		// album has two hosts; the song two nodes on one host.
		{"cancion", []string{"Greatest Hits/2", "Canción de Cuna.ogg/1"}},
		{"CANCIÓN cuna", []string{"Canción de Cuna.ogg/1"}},
		{"ogg other", []string{"Greatest Hits/2"}},
		{"song", []string{"Other Song.mp3/1"}},
		{"nothing matches", nil},
	} {
		rs, err := Search(ctx, a.store, tc.query, 10)
		if err != nil {
			t.Fatalf("%q: %v", tc.query, err)
		}
		if got := names(rs); !slices.Equal(got, tc.want) {
			t.Errorf("search %q = %q, want %q", tc.query, got, tc.want)
		}
	}
	rs, _ := Search(ctx, a.store, "cuna", 10)
	m, err := torrent.ParseMagnet(rs[0].Magnet)
	if err != nil || m.InfoHash != song.InfoHash || rs[0].InfoHash != hex.EncodeToString(song.InfoHash[:]) || rs[0].Size != 1000 {
		t.Errorf("result %+v (magnet %v, %v) does not name the song", rs[0], m, err)
	}

	// Withdrawn: gone from results.
	if err := a.Remove(ctx, other.InfoHash); err != nil {
		t.Fatal(err)
	}
	if rs, _ := Search(ctx, a.store, "song", 10); len(rs) != 0 {
		t.Errorf("a withdrawn entry is still found: %v", names(rs))
	}
	if rs, _ := Search(ctx, a.store, "cancion", 1); len(rs) != 1 {
		t.Errorf("limit 1 gave %d results", len(rs))
	}
}

func TestSearchBounds(t *testing.T) {
	store := newMemStore().as("127.0.0.1:1")
	for _, tc := range []struct {
		query string
		want  error
	}{
		{"", ErrNoWords},
		{"a ! ?", ErrNoWords},
		{strings.Repeat("word ", 10_000), ErrQueryTooLong},
		{"w1 w2 w3 w4 w5 w6 w7 w8 w9", ErrTooManyWords},
	} {
		if _, err := Search(context.Background(), store, tc.query, 10); err != tc.want {
			t.Errorf("search %.20q: %v, want %v", tc.query, err, tc.want)
		}
	}
}

func TestHostileRecordsIgnored(t *testing.T) {
	ctx := context.Background()
	s := newMemStore()
	honest := NewPublisher(s.as("10.0.0.1:1"), 0)
	e := entry("honest file", 42)
	if err := honest.Add(ctx, e); err != nil {
		t.Fatal(err)
	}
	evil := s.as("10.0.0.66:1")
	id := hex.EncodeToString(e.InfoHash[:])
	for _, r := range []struct{ id, value string }{
		{"not hex", `{"n":"x","s":1}`},
		{id[:10], `{"n":"x","s":1}`},
		{id, `not json`},
		{hex.EncodeToString(make([]byte, 20)), `{"n":"` + strings.Repeat("x", MaxValueBytes) + `","s":1}`},
		{hex.EncodeToString(make([]byte, 20)), `{"n":"negative","s":-5}`},
	} {
		if err := evil.Publish(ctx, []Put{{Key("honest"), r.id, []byte(r.value)}}); err != nil {
			t.Fatal(err)
		}
	}
	// The evil host renames the honest entry: one voice against one, and
	// the honest name sorts first.
	evil.Publish(ctx, []Put{{Key("honest"), id, []byte(`{"n":"zzz evil name","s":42}`)},
		{Key("file"), id, []byte(`{"n":"zzz evil name","s":42}`)}})
	rs, err := Search(ctx, s.as("10.0.0.2:1"), "honest file", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 || rs[0].Name != "honest file" || rs[0].Providers != 2 {
		t.Errorf("results %+v, want only the honest file (2 providers)", rs)
	}
}

func TestPublisherCap(t *testing.T) {
	p := NewPublisher(newMemStore().as("127.0.0.1:1"), 2)
	ctx := context.Background()
	for i, want := range []error{nil, nil, ErrFull} {
		if err := p.Add(ctx, entry(fmt.Sprintf("file %d", i), 1)); !errors.Is(err, want) || (want == nil) != (err == nil) {
			t.Errorf("add %d: %v, want %v", i, err, want)
		}
	}
	if err := p.Add(ctx, entry("file 0", 1)); err != nil {
		t.Errorf("renewing a published entry at the cap: %v", err)
	}
	if p.Len() != 2 {
		t.Errorf("%d published, want 2", p.Len())
	}
}

func TestFollowKeepsPublishedWhatIsSeeded(t *testing.T) {
	store := newMemStore().as("127.0.0.1:1")
	p := NewPublisher(store, 0)
	var mu sync.Mutex
	seeded := []*torrent.MetaInfo{{Name: "first file", InfoHash: [20]byte{1}, TotalLength: 1}}
	list := func() []*torrent.MetaInfo {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(seeded)
	}
	poke := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.Follow(ctx, list, time.Hour, time.Hour, poke, slog.New(slog.DiscardHandler))
	}()
	found := func(q string) int {
		rs, err := Search(context.Background(), store, q, 10)
		if err != nil {
			t.Fatal(err)
		}
		return len(rs)
	}
	testwait.Until(t, 5*time.Second, "the first file published", func() bool { return found("first") == 1 })
	mu.Lock()
	seeded = []*torrent.MetaInfo{{Name: "second file", InfoHash: [20]byte{2}, TotalLength: 1}}
	mu.Unlock()
	poke <- struct{}{}
	testwait.Until(t, 5*time.Second, "the first withdrawn and the second published", func() bool { return found("first") == 0 && found("second") == 1 })
	cancel()
	<-done
}

// A word so common that the overlay holds only some of its records cannot
// exclude a torrent the rarer words name.
func TestSaturatedWordsDoNotExclude(t *testing.T) {
	ctx := context.Background()
	s := newMemStore()
	pub := NewPublisher(s.as("10.0.0.1:1"), 0)
	for i := range SaturatedAt + 10 {
		if err := pub.Add(ctx, entry(fmt.Sprintf("common %d", i), 1)); err != nil {
			t.Fatal(err)
		}
	}
	rare := entry("common rare", 1)
	if err := pub.Add(ctx, rare); err != nil {
		t.Fatal(err)
	}
	// The overlay kept only some of "common": not the rare one's.
	s.mu.Lock()
	delete(s.recs[Key("common")], "10.0.0.1:1 "+hex.EncodeToString(rare.InfoHash[:]))
	s.mu.Unlock()
	rs, err := Search(ctx, s.as("10.0.0.2:1"), "rare common", 10)
	if err != nil || len(rs) != 1 || rs[0].Name != "common rare" {
		t.Fatalf("results %+v, %v; want the rare one", rs, err)
	}
}
