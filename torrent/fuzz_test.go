package torrent

import (
	"crypto/sha1"
	"path/filepath"
	"strconv"
	"testing"
)

func FuzzParse(f *testing.F) {
	// Whole torrents as btclient writes them; tools_test.go checks those
	// of other tools.
	dir := f.TempDir()
	for _, size := range []int{1, 40_000} {
		writeFile(f, filepath.Join(dir, "d", "sub", strconv.Itoa(size)), size)
	}
	for _, path := range []string{filepath.Join(dir, "d"), filepath.Join(dir, "d", "sub", "1")} {
		data, _, err := Create(path, CreateOptions{PieceLength: 16 << 10, Private: true, AnnounceList: [][]string{{"http://a/"}, {"udp://b:1"}}})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add(wrap(multiInfo("d", 3, fileEntry(1, "a", "b"), fileEntry(2, "c"))))
	f.Add(wrap(multiInfo("d", 1, fileEntry(1, "..", "x"))))
	f.Add([]byte("d4:infod4:name1:x6:pieces20:" + hashes(1) + "12:piece lengthi16384e6:lengthi1eee"))
	f.Add([]byte("d4:infolllllllllleeeeeeeeeee"))
	f.Add([]byte("d4:info99999999999:e"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data)
		if err != nil {
			return
		}
		if len(m.Files) == 0 || m.PieceLength <= 0 || m.TotalLength <= 0 {
			t.Fatalf("accepted metainfo without content: %+v", m)
		}
		var offset int64
		for _, file := range m.Files {
			if file.Offset != offset || file.Length < 0 {
				t.Fatalf("bad layout: %+v", m.Files)
			}
			offset += file.Length
			if p := m.FilePath(file); !filepath.IsLocal(p) {
				t.Fatalf("file path %q escapes the download directory", p)
			}
		}
		if offset != m.TotalLength {
			t.Fatalf("files sum to %d, TotalLength %d", offset, m.TotalLength)
		}
		var sum int64
		for i := range m.NumPieces() {
			sum += m.PieceSize(i)
			if s := m.PieceSize(i); s <= 0 || s > m.PieceLength {
				t.Fatalf("piece %d has size %d", i, s)
			}
		}
		if sum != m.TotalLength {
			t.Fatalf("pieces sum to %d, TotalLength %d", sum, m.TotalLength)
		}
	})
}

// FuzzParseMagnet: any string gives a Magnet or an error, never a panic, and
// an accepted link survives String and ParseMagnet unchanged.
func FuzzParseMagnet(f *testing.F) {
	f.Add("magnet:?xt=urn:btih:722fe65b2aa26d14f35b4ad627d20236e481d924&dn=a&tr=udp://h:1&x.pe=1.2.3.4:5")
	f.Add("magnet:?xt=urn:btih:OIX6MWZKUJWRJ423JLLCPUQCG3SIDWJE")
	f.Fuzz(func(t *testing.T, uri string) {
		m, err := ParseMagnet(uri)
		if err != nil {
			return
		}
		again, err := ParseMagnet(m.String())
		if err != nil {
			t.Fatalf("%q: String() %q does not parse: %v", uri, m.String(), err)
		}
		if again.InfoHash != m.InfoHash || again.Name != m.Name || len(again.Trackers) != len(m.Trackers) || len(again.Peers) != len(m.Peers) {
			t.Fatalf("%q: round trip changed %+v into %+v", uri, m, again)
		}
	})
}

// FuzzParseInfo: raw info bytes from a peer never panic the parser.
func FuzzParseInfo(f *testing.F) {
	f.Add([]byte("d6:lengthi40000e4:name5:f.bin12:piece lengthi16384e6:pieces60:" + hashes(3) + "e"))
	f.Fuzz(func(t *testing.T, info []byte) {
		m, err := ParseInfo(info, sha1.Sum(info))
		if err == nil && m.TotalLength <= 0 {
			t.Fatalf("accepted an info dictionary with nothing to download")
		}
	})
}
