// Package index publishes what a node seeds under the words of its names,
// and answers searches by name across the overlay. Each torrent is
// published once per word of its name and of its files' names, as a small
// record under the key SHA-1("btclient-index-v1:" + word), which the overlay
// places on the nodes that own that key. A search asks for the records of
// each of its words, keeps the torrents that have all of them and merges
// them by info hash, counting providers: the distinct hosts that publish
// it, so one host cannot make its entries outrank others' by publishing
// them many times.
package index

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"btclient/torrent"
)

// Kind is the overlay record kind of the index.
const Kind = "name"

// MaxValueBytes bounds one record's value.
const MaxValueBytes = 512

// Errors of Search about the query itself.
var (
	ErrNoWords       = errors.New("index: the search has no word of two or more letters or digits")
	ErrTooManyWords  = fmt.Errorf("index: a search has at most %d words", MaxQueryWords)
	ErrQueryTooLong  = fmt.Errorf("index: a search is at most %d bytes", MaxQueryBytes)
	errValueTooLarge = errors.New("index: record value too large")
)

// Record is one index record as the overlay returns it.
type Record struct {
	// Origin is the overlay address of the node that published it, as the
	// node holding it saw it.
	Origin string
	// ID is the torrent's info hash in hex.
	ID    string
	Value []byte
}

// Store is the overlay as the index uses it: records of Kind placed by key.
type Store interface {
	// Publish stores every put (in one batch: each owner's share in few
	// messages).
	Publish(ctx context.Context, puts []Put) error
	Withdraw(ctx context.Context, key [20]byte, id string) error
	Query(ctx context.Context, key [20]byte, limit int) ([]Record, error)
}

// Put is one record to publish: the info hash id under key.
type Put struct {
	Key   [20]byte
	ID    string
	Value []byte
}

// Key is where the records of word live.
func Key(word string) [20]byte { return sha1.Sum([]byte("btclient-index-v1:" + word)) }

// Entry is one torrent as the index publishes it.
type Entry struct {
	InfoHash [20]byte
	Name     string
	Size     int64
	Files    int
	// Words are what it is found by: its name's words, then its files'.
	Words []string
}

// EntryOf returns the entry of a torrent.
func EntryOf(m *torrent.MetaInfo) Entry {
	e := Entry{InfoHash: m.InfoHash, Name: CleanName(m.Name), Size: m.TotalLength, Files: len(m.Files)}
	e.Words = Words(m.Name)
	for _, f := range m.Files {
		if len(e.Words) >= MaxWordsPerEntry {
			break
		}
		for _, w := range Words(strings.Join(f.Path, " ")) {
			if !slices.Contains(e.Words, w) {
				e.Words = append(e.Words, w)
			}
		}
	}
	if len(e.Words) > MaxWordsPerEntry {
		e.Words = e.Words[:MaxWordsPerEntry]
	}
	return e
}

// value is a record's payload.
type value struct {
	Name  string `json:"n"`
	Size  int64  `json:"s"`
	Files int    `json:"f"`
}

func (e Entry) value() ([]byte, error) {
	v, err := json.Marshal(value{Name: CleanName(e.Name), Size: e.Size, Files: e.Files})
	if err == nil && len(v) > MaxValueBytes {
		err = errValueTooLarge
	}
	return v, err
}

// Publisher keeps this node's entries published. Add and Remove may be
// called from any goroutine.
type Publisher struct {
	store Store
	max   int

	mu      sync.Mutex
	entries map[[20]byte]Entry
}

// NewPublisher publishes through store, at most max entries (0: 10,000).
func NewPublisher(store Store, max int) *Publisher {
	if max <= 0 {
		max = 10_000
	}
	return &Publisher{store: store, max: max, entries: map[[20]byte]Entry{}}
}

// ErrFull is returned by Add when the publisher holds its maximum.
var ErrFull = errors.New("index: too many names published")

// Add publishes each entry under each of its words (again if it was
// there: that renews it), all in one batch. Entries past the publisher's
// maximum are left out and ErrFull returned.
func (p *Publisher) Add(ctx context.Context, entries ...Entry) error {
	var (
		puts []Put
		errs []error
	)
	for _, e := range entries {
		v, err := e.value()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		p.mu.Lock()
		_, had := p.entries[e.InfoHash]
		full := !had && len(p.entries) >= p.max
		if !full {
			p.entries[e.InfoHash] = e
		}
		p.mu.Unlock()
		if full {
			errs = append(errs, ErrFull)
			break
		}
		id := hex.EncodeToString(e.InfoHash[:])
		for _, w := range e.Words {
			puts = append(puts, Put{Key: Key(w), ID: id, Value: v})
		}
	}
	if len(puts) > 0 {
		if err := p.store.Publish(ctx, puts); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Remove withdraws the entry of ih, if published.
func (p *Publisher) Remove(ctx context.Context, ih [20]byte) error {
	p.mu.Lock()
	e, ok := p.entries[ih]
	delete(p.entries, ih)
	p.mu.Unlock()
	if !ok {
		return nil
	}
	id := hex.EncodeToString(ih[:])
	var errs []error
	for _, w := range e.Words {
		if err := p.store.Withdraw(ctx, Key(w), id); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Has reports whether ih is published.
func (p *Publisher) Has(ih [20]byte) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.entries[ih]
	return ok
}

// Len is how many entries are published.
func (p *Publisher) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.entries)
}

// Renew publishes every entry again, so that their records outlive the
// overlay's TTL.
func (p *Publisher) Renew(ctx context.Context) error {
	p.mu.Lock()
	all := make([]Entry, 0, len(p.entries))
	for _, e := range p.entries {
		all = append(all, e)
	}
	p.mu.Unlock()
	return p.Add(ctx, all...)
}

// Result is one torrent found.
type Result struct {
	InfoHash string `json:"info_hash"`
	Name     string `json:"name"`
	Size     int64  `json:"size"`
	Files    int    `json:"files"`
	// Providers is how many hosts publish it.
	Providers int    `json:"providers"`
	Magnet    string `json:"magnet"`
}

// CheckQuery returns the error Search would give for the query itself
// (ErrNoWords, ErrTooManyWords, ErrQueryTooLong), nil if it is searchable.
func CheckQuery(query string) error {
	_, err := queryWords(query)
	return err
}

func queryWords(query string) ([]string, error) {
	if len(query) > MaxQueryBytes {
		return nil, ErrQueryTooLong
	}
	words := Words(query)
	switch {
	case len(words) == 0:
		return nil, ErrNoWords
	case len(words) > MaxQueryWords:
		return nil, ErrTooManyWords
	}
	return words, nil
}

// MaxRecordsPerWord bounds the records a search reads for one word.
const MaxRecordsPerWord = 2000

// Search finds the torrents whose words include every word of query, best
// first (most providers, then by name), at most limit (0: 50).
func Search(ctx context.Context, store Store, query string, limit int) ([]Result, error) {
	words, err := queryWords(query)
	if err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = 50
	}
	recs := make([][]Record, len(words))
	errs := make([]error, len(words))
	var wg sync.WaitGroup
	for i, w := range words {
		wg.Go(func() { recs[i], errs[i] = store.Query(ctx, Key(w), MaxRecordsPerWord) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("index: search: %w", err)
		}
	}
	return merge(recs, limit), nil
}

// SaturatedAt is how many records make a word too common to exclude
// anything: the overlay answers at most 100 records of a key (its
// MaxRecordsPerMessage), so a torrent missing from a word that common may
// only have been left out.
const SaturatedAt = 100

// merge keeps the torrents that the rarest word's records name and that
// every other word's records name too (words too common to tell aside),
// counting the hosts that publish each under the rarest word.
func merge(perWord [][]Record, limit int) []Result {
	perWord = slices.Clone(perWord)
	slices.SortStableFunc(perWord, func(a, b []Record) int { return len(a) - len(b) })
	hosts := map[string]map[string]value{} // info hash → host → what it says
	for _, r := range perWord[0] {
		id, v, ok := parseRecord(r)
		if !ok {
			continue
		}
		if hosts[id] == nil {
			hosts[id] = map[string]value{}
		}
		hosts[id][host(r.Origin)] = v
	}
	for _, recs := range perWord[1:] {
		if len(recs) >= SaturatedAt {
			continue
		}
		named := map[string]bool{}
		for _, r := range recs {
			if id, _, ok := parseRecord(r); ok {
				named[id] = true
			}
		}
		for id := range hosts {
			if !named[id] {
				delete(hosts, id)
			}
		}
	}
	var out []Result
	for id, hs := range hosts {
		v := consensus(hs)
		var ih [20]byte
		hex.Decode(ih[:], []byte(id))
		name := CleanName(v.Name)
		out = append(out, Result{InfoHash: id, Name: name, Size: v.Size, Files: v.Files, Providers: len(hs),
			Magnet: (&torrent.Magnet{InfoHash: ih, Name: name}).String()})
	}
	slices.SortFunc(out, func(a, b Result) int {
		if a.Providers != b.Providers {
			return b.Providers - a.Providers
		}
		if c := strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)); c != 0 {
			return c
		}
		return strings.Compare(a.InfoHash, b.InfoHash)
	})
	if len(out) > limit {
		out = out[:limit]
	}
	return out
}

// parseRecord checks one record: its info hash (lower-case hex) and value.
func parseRecord(r Record) (id string, v value, ok bool) {
	ih, err := hex.DecodeString(r.ID)
	if err != nil || len(ih) != 20 || len(r.Value) > MaxValueBytes {
		return "", v, false
	}
	if json.Unmarshal(r.Value, &v) != nil || v.Size < 0 || v.Files < 0 {
		return "", v, false
	}
	return hex.EncodeToString(ih), v, true
}

// consensus is what most hosts say of a torrent (ties: the smallest name),
// so one host cannot rename what others provide.
func consensus(hosts map[string]value) value {
	count := map[value]int{}
	for _, v := range hosts {
		count[v]++
	}
	var best value
	n := 0
	for v, c := range count {
		if c > n || (c == n && v.Name < best.Name) {
			best, n = v, c
		}
	}
	return best
}

// host is the IP of an overlay address: a host running many nodes counts
// once.
func host(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

// Follow keeps the published entries equal to what list returns (the
// torrents this node seeds), checking every interval and whenever poke
// receives, and publishes them all again every renew (0: never), until ctx
// is done. An error is logged once (until another comes); what failed is
// tried again at the next renewal.
func (p *Publisher) Follow(ctx context.Context, list func() []*torrent.MetaInfo, every, renew time.Duration, poke <-chan struct{}, log *slog.Logger) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	var renewC <-chan time.Time
	if renew > 0 {
		rt := time.NewTicker(renew)
		defer rt.Stop()
		renewC = rt.C
	}
	lastErr := "" // logged once until it changes
	for {
		want := map[[20]byte]bool{}
		var fresh []Entry
		for _, m := range list() {
			want[m.InfoHash] = true
			if !p.Has(m.InfoHash) {
				fresh = append(fresh, EntryOf(m))
			}
		}
		// New entries go out together, a few hundred to a batch.
		for len(fresh) > 0 && ctx.Err() == nil {
			n := min(len(fresh), 500)
			if err := p.Add(ctx, fresh[:n]...); err != nil && ctx.Err() == nil && err.Error() != lastErr {
				lastErr = err.Error()
				log.Warn("cannot publish names", "err", err)
			}
			fresh = fresh[n:]
		}
		for _, ih := range p.hashes() {
			if !want[ih] {
				if err := p.Remove(ctx, ih); err != nil && ctx.Err() == nil {
					log.Warn("cannot withdraw a name", "err", err)
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-poke:
		case <-renewC:
			if err := p.Renew(ctx); err != nil && ctx.Err() == nil {
				log.Warn("renewing the published names", "err", err)
			}
		}
	}
}

func (p *Publisher) hashes() [][20]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([][20]byte, 0, len(p.entries))
	for ih := range p.entries {
		out = append(out, ih)
	}
	return out
}
