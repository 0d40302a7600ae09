package torrent

import (
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"btclient/internal/tooltest"
)

// toolContent writes the kinds of content the old real-world fixtures had,
// below a fresh directory: a single file, a flat directory of several
// files, and a directory with nested folders (names with spaces, an empty
// file).
func toolContent(t *testing.T) (single, flat, nested string) {
	t.Helper()
	root := t.TempDir()
	single = filepath.Join(root, "alice.txt")
	writeFile(t, single, 163_783)
	flat = filepath.Join(root, "numbers")
	for i, name := range []string{"1.txt", "2.txt", "3.txt"} {
		writeFile(t, filepath.Join(flat, name), i+1)
	}
	nested = filepath.Join(root, "album")
	writeFile(t, filepath.Join(nested, "cover.jpg"), 1234)
	writeFile(t, filepath.Join(nested, "disc 1", "track 01.bin"), 70_000)
	writeFile(t, filepath.Join(nested, "disc 1", "deep", "er", "notes.txt"), 333)
	writeFile(t, filepath.Join(nested, "disc 2", "track 01.bin"), 50_001)
	return single, flat, nested
}

// TestParseTorrentsMadeByOtherTools has transmission-create, mktorrent and
// libtorrent make torrents, and checks that btclient reads each the way
// transmission-show and libtorrent's torrent_info do (info hash, name,
// piece length and count, private flag, web seeds, file paths and lengths),
// and that every piece hash the other tool wrote matches the content laid
// out by btclient's file layout.
func TestParseTorrentsMadeByOtherTools(t *testing.T) {
	single, flat, nested := toolContent(t)
	tests := []struct {
		name    string
		content string
		opt     tooltest.TorrentOptions
		webSeed bool // only tools that can write url-list
	}{
		{name: "a single file", content: single, opt: tooltest.TorrentOptions{PieceLength: 32 << 10}},
		{name: "a flat directory", content: flat},
		{name: "nested folders with a tracker and a comment", content: nested,
			opt: tooltest.TorrentOptions{PieceLength: 32 << 10, Trackers: []string{"http://127.0.0.1:1/announce"}, Comment: "made elsewhere"}},
		{name: "private", content: nested,
			opt: tooltest.TorrentOptions{PieceLength: 32 << 10, Private: true, Trackers: []string{"http://127.0.0.1:1/announce?passkey=x"}}},
		{name: "private with a url-list", content: single, webSeed: true,
			opt: tooltest.TorrentOptions{PieceLength: 32 << 10, Private: true, WebSeeds: []string{"http://127.0.0.1:2/seed/"}}},
	}
	for _, maker := range tooltest.Makers() {
		for _, tt := range tests {
			if tt.webSeed && !maker.WebSeeds {
				continue
			}
			t.Run(maker.Name+"/"+tt.name, func(t *testing.T) {
				tor := maker.Make(t, tt.content, tt.opt)
				m, err := Load(tor)
				if err != nil {
					t.Fatal(err)
				}
				checkAgainstReaders(t, m, tor)
				if st, err := os.Stat(tt.content); err != nil || m.MultiFile != st.IsDir() {
					t.Errorf("multi-file %v for %s", m.MultiFile, tt.content)
				}
				if m.Private != tt.opt.Private || !reflect.DeepEqual(m.URLList, tt.opt.WebSeeds) {
					t.Errorf("private %v url-list %q; %s was asked for %v and %q", m.Private, m.URLList, maker.Name, tt.opt.Private, tt.opt.WebSeeds)
				}
				if tt.opt.PieceLength != 0 && m.PieceLength != tt.opt.PieceLength {
					t.Errorf("piece length %d, asked for %d", m.PieceLength, tt.opt.PieceLength)
				}
				if tt.opt.Comment != "" && m.Comment != tt.opt.Comment {
					t.Errorf("comment %q, want %q", m.Comment, tt.opt.Comment)
				}
				if want := tt.opt.Trackers; len(want) > 0 && (len(m.Trackers()) != 1 || !reflect.DeepEqual(m.Trackers()[0], want)) {
					t.Errorf("trackers %q, want %q", m.Trackers(), want)
				}
				verifyPieces(t, m, filepath.Dir(tt.content))

				// Another tool's torrent, cut short, is refused like ours.
				data, err := os.ReadFile(tor)
				if err != nil {
					t.Fatal(err)
				}
				for _, cut := range []int{len(data) / 2, len(data) - 1} {
					if _, err := Parse(data[:cut]); !errors.Is(err, ErrSyntax) {
						t.Errorf("%d of %d bytes: err = %v, want ErrSyntax", cut, len(data), err)
					}
				}
			})
		}
	}
}

// TestParseBigTorrentMadeByLibtorrent reads a multi-file torrent of more
// than 4 GiB, with a file over 4 GiB, as libtorrent writes one (its piece
// hashes are placeholders: nothing is hashed).
func TestParseBigTorrentMadeByLibtorrent(t *testing.T) {
	const film = 5<<30 + 12_345
	tor := tooltest.LibtorrentTorrentOfSizes(t, 4<<20,
		tooltest.SizedFile{Path: "Big Movie/film.mkv", Length: film},
		tooltest.SizedFile{Path: "Big Movie/subs/en.srt", Length: 40_000},
		tooltest.SizedFile{Path: "Big Movie/subs/deep/fr.srt", Length: 1})
	m, err := Load(tor)
	if err != nil {
		t.Fatal(err)
	}
	checkAgainstReaders(t, m, tor)
	total := int64(film + 40_000 + 1)
	if !m.MultiFile || m.TotalLength != total || m.NumPieces() != int((total+4<<20-1)/(4<<20)) {
		t.Fatalf("multi-file %v, total %d, %d pieces; want a multi-file torrent of %d bytes in 4 MiB pieces", m.MultiFile, m.TotalLength, m.NumPieces(), total)
	}
	if last := m.PieceSize(m.NumPieces() - 1); last != total%(4<<20) {
		t.Errorf("last piece %d bytes, want %d", last, total%(4<<20))
	}
	if f := m.Files[2]; f.Offset != film+40_000 || m.FilePath(f) != filepath.Join("Big Movie", "subs", "deep", "fr.srt") {
		t.Errorf("last file %+v at %s", f, m.FilePath(f))
	}
}

// checkAgainstReaders compares btclient's reading of the torrent at path
// with transmission-show's and libtorrent's.
func checkAgainstReaders(t *testing.T, m *MetaInfo, path string) {
	t.Helper()
	ours := tooltest.Description{
		InfoHash:    hex.EncodeToString(m.InfoHash[:]),
		Name:        m.Name,
		PieceLength: m.PieceLength,
		Pieces:      m.NumPieces(),
		Private:     m.Private,
		WebSeeds:    m.URLList,
	}
	for _, f := range m.Files {
		p := m.Name
		if m.MultiFile {
			p += "/" + strings.Join(f.Path, "/")
		}
		ours.Files = append(ours.Files, tooltest.SizedFile{Path: p, Length: f.Length})
	}
	for _, reader := range []struct {
		name string
		show func(testing.TB, string) tooltest.Description
	}{
		{"libtorrent", tooltest.ShowWithLibtorrent},
		{"transmission-show", tooltest.ShowWithTransmission},
	} {
		theirs := reader.show(t, path)
		want := ours
		if reader.name == "transmission-show" {
			// It prints rounded sizes, in sorted order: compare the set of
			// paths.
			want.Files = nil
			for _, f := range ours.Files {
				want.Files = append(want.Files, tooltest.SizedFile{Path: f.Path, Length: -1})
			}
			byPath := func(a, b tooltest.SizedFile) int { return strings.Compare(a.Path, b.Path) }
			slices.SortFunc(want.Files, byPath)
			slices.SortFunc(theirs.Files, byPath)
		}
		if len(theirs.WebSeeds) == 0 && len(want.WebSeeds) == 0 {
			theirs.WebSeeds, want.WebSeeds = nil, nil
		}
		if !reflect.DeepEqual(theirs, want) {
			t.Errorf("btclient and %s read %s differently:\nbtclient: %+v\n%s: %+v", reader.name, filepath.Base(path), want, reader.name, theirs)
		}
	}
}
