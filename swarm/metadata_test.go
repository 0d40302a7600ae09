package swarm

import (
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"btclient/bencode"
	"btclient/internal/peerwiretest"
	"btclient/internal/testwait"
	"btclient/peerwire"
	"btclient/torrent"
)

// realTorrent returns random content and metainfo with real info bytes (so
// it can be served over BEP 9); pad makes the info dictionary that much
// larger, to span several metadata pieces.
func realTorrent(t testing.TB, size, pieceLen, pad int) ([]byte, *torrent.MetaInfo) {
	t.Helper()
	data := make([]byte, size)
	rand.Read(data)
	var hashes []byte
	for off := 0; off < size; off += pieceLen {
		h := sha1.Sum(data[off:min(off+pieceLen, size)])
		hashes = append(hashes, h[:]...)
	}
	info := map[string]any{"name": "data", "length": int64(size), "piece length": int64(pieceLen), "pieces": string(hashes)}
	if pad > 0 {
		info["x-padding"] = strings.Repeat("p", pad)
	}
	raw, err := bencode.Marshal(info)
	if err != nil {
		t.Fatal(err)
	}
	m, err := torrent.ParseInfo(raw, sha1.Sum(raw))
	if err != nil {
		t.Fatal(err)
	}
	return data, m
}

// magnetLeecher starts a torrent that knows only the info hash; the
// returned function gives the storage it opened once the metadata came.
type magnetResult struct {
	tr    *Torrent
	addr  string
	mu    sync.Mutex
	store *memStorage
	got   *torrent.MetaInfo
}

func (r *magnetResult) storage() *memStorage {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.store
}

func magnetLeecher(t *testing.T, cfg Config, infoHash [20]byte, peers ...string) *magnetResult {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &magnetResult{addr: ln.Addr().String()}
	id, _ := peerwire.NewPeerID()
	tr, err := New(cfg, Options{
		InfoHash: infoHash,
		OpenStorage: func(m *torrent.MetaInfo) (Storage, error) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.store = newMemStorage(int(m.TotalLength), nil)
			return r.store, nil
		},
		GotMetadata: func(m *torrent.MetaInfo) { r.mu.Lock(); r.got = m; r.mu.Unlock() },
		PeerID:      id, Listener: ln, Peers: peers,
		Logger: testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	r.tr = tr
	testwait.Run(t, "Run", tr.Run)
	return r
}

// testLogger logs to the test at debug level with BTCLIENT_DEBUG set.
func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("BTCLIENT_DEBUG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// fastConfig shrinks the metadata and PEX timers for tests.
func fastConfig() Config {
	cfg := DefaultConfig()
	cfg.MetadataTimeout = time.Second
	cfg.PEXInterval = 2 * time.Second
	cfg.Tick = 100 * time.Millisecond
	return cfg
}

func checkMagnetDownload(t *testing.T, r *magnetResult, data []byte, m *torrent.MetaInfo) {
	t.Helper()
	waitDone(t, r.tr, 30*time.Second)
	if !bytes.Equal(r.storage().data, data) {
		t.Fatal("downloaded data differs")
	}
	r.mu.Lock()
	got := r.got
	r.mu.Unlock()
	if got == nil || got.InfoHash != m.InfoHash || !bytes.Equal(got.InfoBytes, m.InfoBytes) {
		t.Fatal("GotMetadata did not see the verified metadata")
	}
	if s := r.tr.Stats(); s.Name != "data" || s.Size != int64(len(data)) {
		t.Fatalf("stats after the metadata: %+v", s)
	}
}

func TestMagnetFetchesMetadataThenDownloads(t *testing.T) {
	tests := []struct {
		name    string
		seeders int
		pad     int
	}{
		{"one seeder, one metadata piece", 1, 0},
		{"three seeders, metadata in five pieces", 3, 70 << 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, m := realTorrent(t, 1<<20+777, 64<<10, tt.pad)
			var addrs []string
			for range tt.seeders {
				_, a := session(t, DefaultConfig(), m, newMemStorage(len(data), data))
				addrs = append(addrs, a)
			}
			r := magnetLeecher(t, fastConfig(), m.InfoHash, addrs...)
			if s := r.tr.Stats(); s.State != StateMetadata && s.State != StateDownloading && s.State != StateSeeding {
				t.Fatalf("state at start = %q", s.State)
			}
			checkMagnetDownload(t, r, data, m)
		})
	}
}

// With two peers offering it, the metadata's pieces are asked of both.
func TestMetadataPiecesComeFromSeveralPeers(t *testing.T) {
	_, m := realTorrent(t, 256<<10, 16<<10, 60<<10) // 4 metadata pieces
	size := int64(len(m.InfoBytes))
	honest := func(c *peerwiretest.Conn, piece int) {
		time.Sleep(100 * time.Millisecond) // both handshakes are in before any piece
		c.SendExt(peerwire.ExtMetadata, peerwire.MetadataMsg{Type: peerwire.MetadataData, Piece: piece, TotalSize: size, Data: metadataPiece(m.InfoBytes, piece)}.Marshal())
	}
	a, b := metadataServer(t, m, size, honest, nil), metadataServer(t, m, size, honest, nil)
	r := magnetLeecher(t, fastConfig(), m.InfoHash, a, b)
	deadline := time.Now().Add(10 * time.Second)
	for r.tr.Stats().State == StateMetadata {
		if time.Now().After(deadline) {
			t.Fatalf("no metadata after 10 s: %+v", r.tr.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := r.tr.Stats().MetadataPeers; got != 2 {
		t.Fatalf("metadata came from %d peers, want both", got)
	}
}

func TestMagnetWaitsForPeersWhileFetchingMetadata(t *testing.T) {
	var h [20]byte
	rand.Read(h[:])
	r := magnetLeecher(t, fastConfig(), h)
	time.Sleep(300 * time.Millisecond)
	s := r.tr.Stats()
	if s.State != StateMetadata || s.Size != 0 {
		t.Fatalf("stats = %+v, want fetching metadata with the size unknown", s)
	}
	if r.storage() != nil {
		t.Fatal("storage opened before the metadata is known")
	}
}

// A magnet leecher serves the metadata it fetched to the next one.
func TestMetadataIsServedOnwards(t *testing.T) {
	data, m := realTorrent(t, 512<<10, 32<<10, 20<<10)
	_, seed := session(t, DefaultConfig(), m, newMemStorage(len(data), data))
	first := magnetLeecher(t, fastConfig(), m.InfoHash, seed)
	checkMagnetDownload(t, first, data, m)
	second := magnetLeecher(t, fastConfig(), m.InfoHash, first.addr)
	checkMagnetDownload(t, second, data, m)
}

// metadataServer is a fake peer that offers the metadata of m and answers
// requests with answer (nil: it never answers).
func metadataServer(t *testing.T, m *torrent.MetaInfo, size int64, answer func(c *peerwiretest.Conn, piece int), asked *atomic.Int64) string {
	return peerwiretest.Listen(t, peerwiretest.Peer{
		InfoHash: m.InfoHash,
		Ext:      &peerwire.ExtHandshake{M: map[string]int{peerwire.ExtMetadata: 3}, MetadataSize: size},
		Handle: func(c *peerwiretest.Conn, msg peerwire.Message) {
			if msg.ID != peerwire.Extended {
				return
			}
			id, body, _ := peerwire.SplitExtended(msg.Payload)
			if id != extIDMetadata+2 { // our m said ut_metadata is 3
				return
			}
			mm, err := peerwire.ParseMetadataMsg(body)
			if err != nil || mm.Type != peerwire.MetadataRequest {
				return
			}
			if asked != nil {
				asked.Add(1)
			}
			if answer != nil {
				answer(c, mm.Piece)
			}
		},
	})
}

func metadataPiece(info []byte, piece int) []byte {
	off := piece * peerwire.MetadataPieceSize
	return info[off:min(off+peerwire.MetadataPieceSize, len(info))]
}

func TestMagnetAmongHostilePeers(t *testing.T) {
	data, m := realTorrent(t, 1<<20, 64<<10, 40<<10) // metadata in 3 pieces
	info := m.InfoBytes
	size := int64(len(info))
	tests := []struct {
		name  string
		liar  func(t *testing.T, asked *atomic.Int64) string
		check func(t *testing.T, asked *atomic.Int64, r *magnetResult)
	}{
		{"claims 4 GiB of metadata", func(t *testing.T, asked *atomic.Int64) string {
			return metadataServer(t, m, 4<<30, nil, asked)
		}, func(t *testing.T, asked *atomic.Int64, r *magnetResult) {
			if asked.Load() != 0 {
				t.Errorf("a peer claiming 4 GiB of metadata was asked %d times", asked.Load())
			}
		}},
		{"sends metadata that does not hash", func(t *testing.T, asked *atomic.Int64) string {
			return metadataServer(t, m, size, func(c *peerwiretest.Conn, piece int) {
				junk := bytes.Repeat([]byte{'x'}, len(metadataPiece(info, piece)))
				c.SendExt(peerwire.ExtMetadata, peerwire.MetadataMsg{Type: peerwire.MetadataData, Piece: piece, TotalSize: size, Data: junk}.Marshal())
			}, asked)
		}, func(t *testing.T, asked *atomic.Int64, r *magnetResult) {
			if r.tr.Stats().BadPeers < 1 && asked.Load() > 0 {
				t.Error("the peer that sent bad metadata was not dropped")
			}
		}},
		{"rejects every piece", func(t *testing.T, asked *atomic.Int64) string {
			return metadataServer(t, m, size, func(c *peerwiretest.Conn, piece int) {
				c.SendExt(peerwire.ExtMetadata, peerwire.MetadataMsg{Type: peerwire.MetadataReject, Piece: piece}.Marshal())
			}, asked)
		}, nil},
		{"never answers", func(t *testing.T, asked *atomic.Int64) string {
			return metadataServer(t, m, size, nil, asked)
		}, nil},
		{"sends pieces nobody asked for", func(t *testing.T, asked *atomic.Int64) string {
			return peerwiretest.Listen(t, peerwiretest.Peer{
				InfoHash: m.InfoHash,
				Ext:      &peerwire.ExtHandshake{M: map[string]int{peerwire.ExtMetadata: 3}},
				OnConnect: func(c *peerwiretest.Conn) {
					for c.TheirExt() == nil { // wait for their handshake
						time.Sleep(10 * time.Millisecond)
					}
					for i := range 1000 {
						junk := peerwire.MetadataMsg{Type: peerwire.MetadataData, Piece: i % 3, TotalSize: size, Data: metadataPiece(info, i%3)}
						if !c.SendExt(peerwire.ExtMetadata, junk.Marshal()) {
							return
						}
					}
				},
			})
		}, nil},
		{"sends extension messages before its handshake", func(t *testing.T, asked *atomic.Int64) string {
			return peerwiretest.Listen(t, peerwiretest.Peer{
				InfoHash: m.InfoHash,
				OnConnect: func(c *peerwiretest.Conn) {
					for range 20 {
						c.Send(peerwire.ExtendedMessage(extIDMetadata, peerwire.MetadataMsg{Type: peerwire.MetadataData, Piece: 0, TotalSize: size, Data: metadataPiece(info, 0)}.Marshal()))
						c.Send(peerwire.ExtendedMessage(extIDPEX, []byte("garbage")))
					}
				},
			})
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var asked atomic.Int64
			liar := tt.liar(t, &asked)
			_, honest := session(t, DefaultConfig(), m, newMemStorage(len(data), data))
			r := magnetLeecher(t, fastConfig(), m.InfoHash, liar, honest)
			checkMagnetDownload(t, r, data, m)
			if tt.check != nil {
				tt.check(t, &asked, r)
			}
		})
	}
}

// Several liars with honest sizes and junk data, dialed first: the copy put
// together from all of them fails, every liar is found and banned, and the
// metadata comes from the honest peer.
func TestMetadataLiarsAreFoundAmongSeveral(t *testing.T) {
	data, m := realTorrent(t, 512<<10, 32<<10, 60<<10) // 4 metadata pieces
	size := int64(len(m.InfoBytes))
	var liars []string
	for range 3 {
		liars = append(liars, metadataServer(t, m, size, func(c *peerwiretest.Conn, piece int) {
			junk := bytes.Repeat([]byte{'?'}, len(metadataPiece(m.InfoBytes, piece)))
			c.SendExt(peerwire.ExtMetadata, peerwire.MetadataMsg{Type: peerwire.MetadataData, Piece: piece, TotalSize: size, Data: junk}.Marshal())
		}, nil))
	}
	_, honest := session(t, DefaultConfig(), m, newMemStorage(len(data), data))
	r := magnetLeecher(t, fastConfig(), m.InfoHash, append(liars, honest)...)
	checkMagnetDownload(t, r, data, m)
}

func TestSeederRejectsMetadataItDoesNotHave(t *testing.T) {
	_, m := realTorrent(t, 64<<10, 16<<10, 0)
	var h [20]byte
	rand.Read(h[:])
	r := magnetLeecher(t, fastConfig(), h)
	replies := make(chan peerwire.MetadataMsg, 4)
	peerwiretest.Dial(t, r.addr, peerwiretest.Peer{
		InfoHash: h,
		Ext:      &peerwire.ExtHandshake{M: map[string]int{peerwire.ExtMetadata: 3}},
		OnConnect: func(c *peerwiretest.Conn) {
			for c.TheirExt() == nil {
				time.Sleep(10 * time.Millisecond)
			}
			c.SendExt(peerwire.ExtMetadata, peerwire.MetadataMsg{Type: peerwire.MetadataRequest, Piece: 0}.Marshal())
		},
		Handle: func(c *peerwiretest.Conn, msg peerwire.Message) {
			if id, body, err := peerwire.SplitExtended(msg.Payload); msg.ID == peerwire.Extended && err == nil && id == 3 {
				if mm, err := peerwire.ParseMetadataMsg(body); err == nil {
					replies <- mm
				}
			}
		},
	})
	select {
	case mm := <-replies:
		if mm.Type != peerwire.MetadataReject {
			t.Fatalf("reply type %d, want a reject while the metadata is unknown", mm.Type)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no reply to a metadata request")
	}
	_ = m
}
