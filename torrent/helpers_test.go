package torrent

import (
	"crypto/sha1"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Tiny bencode writers for crafting torrents byte by byte, keys in the order
// given (so tests can write non-canonical dictionaries).

func bs(s string) string    { return fmt.Sprintf("%d:%s", len(s), s) }
func bi(n int64) string     { return fmt.Sprintf("i%de", n) }
func bl(v ...string) string { return "l" + strings.Join(v, "") + "e" }

// bd takes alternating keys (plain) and values (already encoded).
func bd(kv ...string) string {
	var b strings.Builder
	b.WriteByte('d')
	for i := 0; i < len(kv); i += 2 {
		b.WriteString(bs(kv[i]))
		b.WriteString(kv[i+1])
	}
	b.WriteByte('e')
	return b.String()
}

// hashes returns n fake piece hashes.
func hashes(n int) string { return strings.Repeat("0123456789abcdefghij", n) }

// wrap puts an encoded info dictionary into a minimal torrent.
func wrap(info string) []byte {
	return []byte(bd("announce", bs("http://t.example/announce"), "info", info))
}

// fileEntry encodes one entry of "files".
func fileEntry(length int64, path ...string) string {
	var p []string
	for _, c := range path {
		p = append(p, bs(c))
	}
	return bd("length", bi(length), "path", bl(p...))
}

// multiInfo encodes a valid multi-file info dictionary around the given
// file entries, with one 16 KiB piece per 16 KiB of totalLength.
func multiInfo(name string, totalLength int64, files ...string) string {
	n := int((totalLength + 16383) / 16384)
	return bd("files", bl(files...), "name", bs(name), "piece length", bi(16384), "pieces", bs(hashes(n)))
}

// readPiece reads piece i of m from the content below root, following the
// file layout through Offset and Length.
func readPiece(t *testing.T, m *MetaInfo, root string, i int) []byte {
	t.Helper()
	start := int64(i) * m.PieceLength
	end := start + m.PieceSize(i)
	buf := make([]byte, 0, end-start)
	for _, f := range m.Files {
		lo, hi := max(start, f.Offset), min(end, f.Offset+f.Length)
		if lo >= hi {
			continue
		}
		fh, err := os.Open(filepath.Join(root, m.FilePath(f)))
		if err != nil {
			t.Fatal(err)
		}
		chunk := make([]byte, hi-lo)
		_, err = fh.ReadAt(chunk, lo-f.Offset)
		fh.Close()
		if err != nil {
			t.Fatalf("read %s: %v", m.FilePath(f), err)
		}
		buf = append(buf, chunk...)
	}
	if int64(len(buf)) != end-start {
		t.Fatalf("piece %d: files cover %d bytes, want %d", i, len(buf), end-start)
	}
	return buf
}

// verifyPieces checks every piece of the content below root against m.
func verifyPieces(t *testing.T, m *MetaInfo, root string) {
	t.Helper()
	for i := range m.NumPieces() {
		if got := sha1.Sum(readPiece(t, m, root, i)); got != m.Pieces[i] {
			t.Fatalf("piece %d of %d: hash %x, want %x", i, m.NumPieces(), got, m.Pieces[i])
		}
	}
}
