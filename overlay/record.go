package overlay

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"time"
)

// KindProvider is the Kind of the records that say which peer-wire address
// provides which torrent: Key is the info hash, ID the address, Value the
// provider's peer id and bytes left.
const KindProvider = "peer"

// Bounds of a record's fields; Config.MaxValueBytes bounds Value.
const (
	maxKindLen = 16
	maxIDLen   = 300
	// recordOverhead is what a record costs the store beside its kind, id
	// and value: the key, times, map entries. Caps in bytes count it.
	recordOverhead = 96
)

// Record is one entry of the overlay's key space. Records are placed by Key
// on the Replicas live nodes nearest to it; each origin (the node that
// published it) holds at most one record per (Kind, Key, ID), and readers
// merge the origins' records of an ID by last-writer-wins on Seen.
type Record struct {
	// Kind names what the record is: 1-16 characters of a-z, 0-9, '-', '_'.
	Kind string
	// Key places the record; Query finds records by (Kind, Key).
	Key [20]byte
	// ID tells the records of one Key apart (1-300 bytes).
	ID string
	// Value is the payload, at most Config.MaxValueBytes bytes.
	Value []byte
	// Seen is the record's version: the newest wins. Zero means now.
	Seen time.Time
	// Stopped marks a tombstone (Withdraw): it wins like any record and
	// hides the ID from readers until it expires.
	Stopped bool
	// Expires is when holders drop the record unless its origin renews it.
	// Set by the overlay; ignored on Publish.
	Expires time.Time
	// Origin is the overlay address of the node that published it, as the
	// node holding it took it (puts are accepted only from their origin's
	// IP). Set on the records Query returns; ignored on Publish and on puts.
	Origin string
}

// size is what the record costs in the store's byte caps.
func (r Record) size() int64 {
	return int64(len(r.Kind) + len(r.ID) + len(r.Value) + recordOverhead)
}

// validate checks what every stored record must have.
func (r Record) validate(maxValue int) error {
	if err := validKind(r.Kind); err != nil {
		return err
	}
	if r.ID == "" || len(r.ID) > maxIDLen {
		return fmt.Errorf("record id: want 1-%d bytes, got %d", maxIDLen, len(r.ID))
	}
	if len(r.Value) > maxValue {
		return fmt.Errorf("record %s/%s: value of %d bytes, more than %d", r.Kind, truncate(r.ID, 32), len(r.Value), maxValue)
	}
	if r.Seen.IsZero() || r.Seen.Unix() <= 0 {
		return fmt.Errorf("record %s/%s: no seen time", r.Kind, truncate(r.ID, 32))
	}
	return nil
}

// validKind checks a record kind: 1-16 characters of a-z, 0-9, '-', '_'.
func validKind(kind string) error {
	if kind == "" || len(kind) > maxKindLen {
		return fmt.Errorf("record kind %q: want 1-%d characters", truncate(kind, 32), maxKindLen)
	}
	for _, c := range kind {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("record kind %q: want a-z, 0-9, '-' or '_'", truncate(kind, 32))
		}
	}
	return nil
}

// sameContent reports whether a and b say the same thing (times aside).
func sameContent(a, b Record) bool {
	return a.Stopped == b.Stopped && string(a.Value) == string(b.Value)
}

// recordWins reports whether a replaces b under last-writer-wins; ties break
// towards a tombstone, then the greater value, so every node picks the same.
func recordWins(a, b Record) bool {
	if !a.Seen.Equal(b.Seen) {
		return a.Seen.After(b.Seen)
	}
	if a.Stopped != b.Stopped {
		return a.Stopped
	}
	return string(a.Value) > string(b.Value)
}

// fingerprint hashes what a digest compares: everything but Expires.
func (r Record) fingerprint() uint64 {
	h := fnv.New64a()
	var ms [8]byte
	t := uint64(r.Seen.UnixMilli())
	for i := range ms {
		ms[i] = byte(t >> (8 * i))
	}
	h.Write([]byte(r.Kind))
	h.Write([]byte{0})
	h.Write(r.Key[:])
	h.Write([]byte(r.ID))
	h.Write([]byte{0})
	h.Write(ms[:])
	if r.Stopped {
		h.Write([]byte{1})
	}
	h.Write(r.Value)
	return h.Sum64()
}

// digest summarises a set of records: count and an order-free hash.
type digest struct {
	sum   uint64
	count int
}

func (d *digest) add(r Record) { d.addFingerprint(r.fingerprint()) }

// addFingerprint adds a record by its fingerprint, computed once for all
// the digests it enters.
func (d *digest) addFingerprint(fp uint64) {
	d.sum ^= fp
	d.count++
}

func (d digest) hex() string { return strconv.FormatUint(d.sum, 16) }

type wireRecord struct {
	Kind    string `json:"kind"`
	Key     string `json:"key"`
	ID      string `json:"id"`
	Value   []byte `json:"value,omitempty"`
	Seen    int64  `json:"seen"`
	Expires int64  `json:"exp,omitempty"`
	Stopped bool   `json:"stopped,omitempty"`
	Origin  string `json:"origin,omitempty"`
}

// MarshalJSON writes {"kind","key","id","value","seen","exp","stopped"}: key
// in hex, value in base64, times in unix milliseconds.
func (r Record) MarshalJSON() ([]byte, error) {
	w := wireRecord{Kind: r.Kind, Key: hex.EncodeToString(r.Key[:]), ID: r.ID, Value: r.Value,
		Seen: r.Seen.UnixMilli(), Stopped: r.Stopped, Origin: r.Origin}
	if !r.Expires.IsZero() {
		w.Expires = r.Expires.UnixMilli()
	}
	return json.Marshal(w)
}

// UnmarshalJSON reads the wire form.
func (r *Record) UnmarshalJSON(b []byte) error {
	var w wireRecord
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	key, err := ParseInfoHash(w.Key)
	if err != nil {
		return fmt.Errorf("record key: %w", err)
	}
	if w.Seen <= 0 {
		return errors.New("record seen missing")
	}
	*r = Record{Kind: w.Kind, Key: key, ID: w.ID, Value: w.Value, Seen: time.UnixMilli(w.Seen), Stopped: w.Stopped, Origin: w.Origin}
	if w.Expires > 0 {
		r.Expires = time.UnixMilli(w.Expires)
	}
	return nil
}

// providerValue is a provider record's Value.
type providerValue struct {
	PeerID string `json:"p,omitempty"`
	Left   int64  `json:"l,omitempty"`
}

// providerRecord turns a provider of infoHash into its record.
func providerRecord(infoHash [20]byte, p Provider) Record {
	v, _ := json.Marshal(providerValue{PeerID: p.PeerID, Left: p.Left})
	return Record{Kind: KindProvider, Key: infoHash, ID: p.Addr, Value: v, Seen: p.LastSeen, Stopped: p.Stopped}
}

// recordProvider turns a provider record back into a Provider; ok is false
// for a record that is not a valid provider.
func recordProvider(r Record) (Provider, bool) {
	if r.Kind != KindProvider {
		return Provider{}, false
	}
	var v providerValue
	if len(r.Value) > 0 && json.Unmarshal(r.Value, &v) != nil {
		return Provider{}, false
	}
	p := Provider{Addr: r.ID, PeerID: v.PeerID, Left: v.Left, LastSeen: r.Seen, Stopped: r.Stopped}
	if p.validate() != nil {
		return Provider{}, false
	}
	return p, true
}
