package torrent

import (
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// writeFile writes size pseudo-random bytes (seeded by size) to path.
func writeFile(t testing.TB, path string, size int) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(uint64(size), 7))
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCreateSingleFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "movie.bin")
	writeFile(t, path, 100_000)
	data, m, err := Create(path, CreateOptions{
		PieceLength: 16 << 10,
		Announce:    "http://tracker.example/announce",
		Comment:     "a test",
		Private:     true,
	})
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(parsed, m) {
		t.Fatalf("returned MetaInfo differs from parsing the returned bytes:\n%+v\n%+v", m, parsed)
	}
	if m.Name != "movie.bin" || m.MultiFile || m.TotalLength != 100_000 || m.NumPieces() != 7 ||
		!m.Private || m.Comment != "a test" || m.CreatedBy != "btclient" || m.CreationDate == 0 {
		t.Fatalf("unexpected metainfo %+v", m)
	}
	if got := m.Trackers(); !reflect.DeepEqual(got, [][]string{{"http://tracker.example/announce"}}) {
		t.Errorf("trackers %q", got)
	}
	verifyPieces(t, m, dir)
}

func TestCreateDirectoryRoundTrip(t *testing.T) {
	root := filepath.Join(t.TempDir(), "album")
	writeFile(t, filepath.Join(root, "b.txt"), 5_000)
	writeFile(t, filepath.Join(root, "a", "z.bin"), 40_000)
	writeFile(t, filepath.Join(root, "a", "deep", "er", "x"), 1)
	writeFile(t, filepath.Join(root, ".hidden"), 0)
	if err := os.Symlink("b.txt", filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	opt := CreateOptions{
		PieceLength:  16 << 10,
		AnnounceList: [][]string{{"http://t1/", "http://t2/"}, {"http://t3/"}},
		CreatedBy:    "tester",
	}
	data, m, err := Create(root, opt)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Parse(data); err != nil {
		t.Fatal(err)
	}
	want := []File{
		{Path: []string{".hidden"}, Length: 0, Offset: 0},
		{Path: []string{"a", "deep", "er", "x"}, Length: 1, Offset: 0},
		{Path: []string{"a", "z.bin"}, Length: 40_000, Offset: 1},
		{Path: []string{"b.txt"}, Length: 5_000, Offset: 40_001},
	}
	if !reflect.DeepEqual(m.Files, want) {
		t.Fatalf("files %+v, want %+v (sorted, symlink skipped)", m.Files, want)
	}
	if m.Name != "album" || !m.MultiFile || m.TotalLength != 45_001 || m.CreatedBy != "tester" ||
		m.Announce != "http://t1/" || !reflect.DeepEqual(m.Trackers(), opt.AnnounceList) {
		t.Fatalf("unexpected metainfo %+v", m)
	}
	verifyPieces(t, m, filepath.Dir(root))

	_, again, err := Create(root, opt)
	if err != nil {
		t.Fatal(err)
	}
	if again.InfoHash != m.InfoHash {
		t.Fatal("creating the same directory twice gave different info hashes")
	}
}

func TestCreateChoosesPieceLength(t *testing.T) {
	tests := []struct {
		total int64
		want  int64
	}{
		{1, 16 << 10},
		{2000 * 16 << 10, 16 << 10},
		{2000*16<<10 + 1, 32 << 10},
		{700 << 20, 512 << 10},
		{4 << 30, 4 << 20},
		{1 << 50, 16 << 20},
	}
	for _, tt := range tests {
		if got := choosePieceLength(tt.total); got != tt.want {
			t.Errorf("choosePieceLength(%d) = %d, want %d", tt.total, got, tt.want)
		}
		if n := (tt.total + tt.want - 1) / tt.want; tt.want < 16<<20 && n > 2000 {
			t.Errorf("%d bytes: %d pieces", tt.total, n)
		}
	}
}

func TestCreateRejectsBadInput(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	onlyEmpty := filepath.Join(dir, "only-empty")
	file := filepath.Join(dir, "f")
	for _, d := range []string{empty, onlyEmpty} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(onlyEmpty, "zero"), 0)
	writeFile(t, file, 10)
	writeFile(t, filepath.Join(dir, "bad", `back\slash`), 10)
	tests := []struct {
		name string
		path string
		opt  CreateOptions
		kind error
	}{
		{"an empty directory", empty, CreateOptions{}, ErrEmpty},
		{"a directory of empty files", onlyEmpty, CreateOptions{}, ErrEmpty},
		{"a path that does not exist", filepath.Join(dir, "missing"), CreateOptions{}, fs.ErrNotExist},
		{"a negative piece length", file, CreateOptions{PieceLength: -1}, ErrInvalid},
		{"a file name no torrent may hold", filepath.Join(dir, "bad"), CreateOptions{}, ErrUnsafePath},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Create(tt.path, tt.opt)
			if !errors.Is(err, tt.kind) {
				t.Fatalf("error %v, want %v", err, tt.kind)
			}
		})
	}
}
