package torrent

import (
	"os"
	"path/filepath"
	"testing"
)

func FuzzParse(f *testing.F) {
	seeds, err := filepath.Glob(filepath.Join(fixtures, "*.torrent"))
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range seeds {
		data, err := os.ReadFile(p)
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
