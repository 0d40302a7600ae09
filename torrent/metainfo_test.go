package torrent

import (
	"crypto/sha1"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseRejectsTorrentWithoutName(t *testing.T) {
	// The shape of webtorrent-fixtures' corrupt.torrent: a real torrent
	// whose info dictionary lost its name.
	path := filepath.Join(t.TempDir(), "corrupt.torrent")
	info := bd("length", bi(163783), "piece length", bi(16384), "pieces", bs(hashes(10)))
	if err := os.WriteFile(path, []byte(bd("announce", bs("udp://127.0.0.1:1"), "created by", bs("WebTorrent"), "info", info)), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if err == nil {
		t.Fatal("corrupt.torrent parsed")
	}
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "missing name") ||
		!strings.Contains(err.Error(), "corrupt.torrent") {
		t.Fatalf("error %q: want ErrInvalid naming the file and the missing name", err)
	}
}

func TestParseFileLayout(t *testing.T) {
	m, err := Parse(wrap(multiInfo("dir", 10,
		fileEntry(3, "a", "b.txt"),
		fileEntry(0, "empty"),
		fileEntry(7, "c")),
	))
	if err != nil {
		t.Fatal(err)
	}
	want := []File{
		{Path: []string{"a", "b.txt"}, Length: 3, Offset: 0},
		{Path: []string{"empty"}, Length: 0, Offset: 3},
		{Path: []string{"c"}, Length: 7, Offset: 3},
	}
	if !reflect.DeepEqual(m.Files, want) {
		t.Fatalf("files %+v, want %+v", m.Files, want)
	}
	if got, want := m.FilePath(m.Files[0]), filepath.Join("dir", "a", "b.txt"); got != want {
		t.Errorf("FilePath %q, want %q", got, want)
	}
	single, err := Parse(wrap(bd("length", bi(5), "name", bs("f.bin"), "piece length", bi(2), "pieces", bs(hashes(3)))))
	if err != nil {
		t.Fatal(err)
	}
	if got := single.FilePath(single.Files[0]); got != "f.bin" {
		t.Errorf("single-file FilePath %q, want f.bin", got)
	}
	sizes := []int64{single.PieceSize(0), single.PieceSize(1), single.PieceSize(2), single.PieceSize(3), single.PieceSize(-1)}
	if !reflect.DeepEqual(sizes, []int64{2, 2, 1, 0, 0}) {
		t.Errorf("piece sizes %v, want [2 2 1 0 0]", sizes)
	}
}

func TestParseOptionalFields(t *testing.T) {
	info := bd("length", bi(1), "name", bs("x"), "name.utf-8", bs("ünï"), "piece length", bi(16384), "pieces", bs(hashes(1)), "private", bi(1))
	tests := []struct {
		name     string
		data     string
		trackers [][]string
		urls     []string
		check    func(*MetaInfo) bool
	}{
		{
			name:     "announce alone is one tier",
			data:     bd("announce", bs("http://a/"), "info", info),
			trackers: [][]string{{"http://a/"}},
		},
		{
			name:     "announce-list wins over announce and drops empty tiers",
			data:     bd("announce", bs("http://a/"), "announce-list", bl(bl(bs("http://b/"), bs("http://c/")), bl(), bl(bs("udp://d/"))), "info", info),
			trackers: [][]string{{"http://b/", "http://c/"}, {"udp://d/"}},
		},
		{name: "no trackers at all", data: bd("info", info), trackers: nil},
		{name: "url-list as a string", data: bd("info", info, "url-list", bs("http://seed/")), urls: []string{"http://seed/"}},
		{name: "url-list as a list", data: bd("info", info, "url-list", bl(bs("http://s1/"), bs("http://s2/"))), urls: []string{"http://s1/", "http://s2/"}},
		{name: "ill-typed metadata is ignored", data: bd("comment", bi(3), "creation date", bs("today"), "info", info, "url-list", bi(1))},
		{
			name: "metadata is read",
			data: bd("comment", bs("hi"), "created by", bs("me"), "creation date", bi(42), "info", info),
			check: func(m *MetaInfo) bool {
				return m.Comment == "hi" && m.CreatedBy == "me" && m.CreationDate == 42
			},
		},
		{name: "name.utf-8 is preferred and private is read", data: bd("info", info), check: func(m *MetaInfo) bool {
			return m.Name == "ünï" && m.Private
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse([]byte(tt.data))
			if err != nil {
				t.Fatal(err)
			}
			if got := m.Trackers(); !reflect.DeepEqual(got, tt.trackers) {
				t.Errorf("trackers %q, want %q", got, tt.trackers)
			}
			if !reflect.DeepEqual(m.URLList, tt.urls) {
				t.Errorf("url-list %q, want %q", m.URLList, tt.urls)
			}
			if tt.check != nil && !tt.check(m) {
				t.Errorf("unexpected metainfo %+v", m)
			}
		})
	}
}

func TestParseHashesInfoBytesAsWritten(t *testing.T) {
	// Keys out of canonical order: re-encoding the decoded dictionary would
	// sort them and give a different hash.
	info := "d4:name1:x6:pieces20:" + hashes(1) + "12:piece lengthi16384e6:lengthi1ee"
	data := []byte("d4:info" + info + "8:announce3:urle")
	m, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	canonical := bd("length", bi(1), "name", bs("x"), "piece length", bi(16384), "pieces", bs(hashes(1)))
	if m.InfoHash != sha1.Sum([]byte(info)) {
		t.Fatalf("info hash %x, want SHA-1 of the raw bytes %x", m.InfoHash, sha1.Sum([]byte(info)))
	}
	if m.InfoHash == sha1.Sum([]byte(canonical)) {
		t.Fatal("test is broken: raw and canonical info dictionaries hash the same")
	}
}

func TestParseRejectsHostileInput(t *testing.T) {
	okInfo := bd("length", bi(1), "name", bs("x"), "piece length", bi(16384), "pieces", bs(hashes(1)))
	// A whole, valid torrent to cut short (tools_test.go cuts those of
	// other tools the same way).
	content := filepath.Join(t.TempDir(), "alice.txt")
	writeFile(t, content, 163_783)
	alice, _, err := Create(content, CreateOptions{PieceLength: 16 << 10, Announce: "http://127.0.0.1:1/announce"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		data []byte
		kind error
		msg  string // a substring of the error
	}{
		// Paths that climb out of the download directory.
		{"a path that climbs out of the download directory", wrap(multiInfo("d", 1, fileEntry(1, "..", "etc", "passwd"))), ErrUnsafePath, `".."`},
		{"a path component holding ../", wrap(multiInfo("d", 1, fileEntry(1, "../x"))), ErrUnsafePath, "separator"},
		{"an absolute path", wrap(multiInfo("d", 1, fileEntry(1, "/etc/passwd"))), ErrUnsafePath, "separator"},
		{"a backslash in a path component", wrap(multiInfo("d", 1, fileEntry(1, `..\x`))), ErrUnsafePath, "separator"},
		{"a dot path component", wrap(multiInfo("d", 1, fileEntry(1, "a", ".", "b"))), ErrUnsafePath, `"."`},
		{"an empty path component", wrap(multiInfo("d", 1, fileEntry(1, "a", ""))), ErrUnsafePath, "empty path component"},
		{"an empty path", wrap(multiInfo("d", 1, fileEntry(1))), ErrUnsafePath, "path is empty"},
		{"a NUL in a path component", wrap(multiInfo("d", 1, fileEntry(1, "a\x00b"))), ErrUnsafePath, "NUL"},
		{"an unsafe path.utf-8 beside a safe path", wrap(multiInfo("d", 1, bd("length", bi(1), "path", bl(bs("ok")), "path.utf-8", bl(bs(".."))))), ErrUnsafePath, `".."`},
		{"a name of ..", wrap(bd("length", bi(1), "name", bs(".."), "piece length", bi(16384), "pieces", bs(hashes(1)))), ErrUnsafePath, "name"},
		{"a name of .", wrap(multiInfo(".", 1, fileEntry(1, "a"))), ErrUnsafePath, "name"},
		{"a name with a separator", wrap(bd("length", bi(1), "name", bs("a/b"), "piece length", bi(16384), "pieces", bs(hashes(1)))), ErrUnsafePath, "separator"},
		{"an empty name", wrap(bd("length", bi(1), "name", bs(""), "piece length", bi(16384), "pieces", bs(hashes(1)))), ErrUnsafePath, "name"},
		{"the same file twice", wrap(multiInfo("d", 2, fileEntry(1, "a"), fileEntry(1, "a"))), ErrInvalid, "listed twice"},
		{"a file that is also a directory", wrap(multiInfo("d", 2, fileEntry(1, "a"), fileEntry(1, "a", "b"))), ErrInvalid, "both a file and a directory"},
		{"a directory that is also a file", wrap(multiInfo("d", 2, fileEntry(1, "a", "b"), fileEntry(1, "a"))), ErrInvalid, "both a file and a directory"},

		// Missing or contradictory fields.
		{"no info dictionary", []byte(bd("announce", bs("x"))), ErrInvalid, "missing info"},
		{"info that is not a dictionary", wrap(bl()), ErrInvalid, "info is not a dictionary"},
		{"a missing name", wrap(bd("length", bi(1), "piece length", bi(16384), "pieces", bs(hashes(1)))), ErrInvalid, "missing name"},
		{"missing pieces", wrap(bd("length", bi(1), "name", bs("x"), "piece length", bi(16384))), ErrInvalid, "missing pieces"},
		{"a missing piece length", wrap(bd("length", bi(1), "name", bs("x"), "pieces", bs(hashes(1)))), ErrInvalid, "missing piece length"},
		{"a zero piece length", wrap(bd("length", bi(1), "name", bs("x"), "piece length", bi(0), "pieces", bs(hashes(1)))), ErrInvalid, "piece length 0"},
		{"a negative piece length", wrap(bd("length", bi(1), "name", bs("x"), "piece length", bi(-16384), "pieces", bs(hashes(1)))), ErrInvalid, "piece length -16384"},
		{"a huge piece length", wrap(bd("length", bi(1), "name", bs("x"), "piece length", bi(1<<40), "pieces", bs(hashes(1)))), ErrInvalid, "piece length"},
		{"pieces not a multiple of 20", wrap(bd("length", bi(1), "name", bs("x"), "piece length", bi(16384), "pieces", bs("short"))), ErrInvalid, "not a multiple of 20"},
		{"too many pieces for the length", wrap(bd("length", bi(1), "name", bs("x"), "piece length", bi(16384), "pieces", bs(hashes(2)))), ErrInvalid, "2 piece hashes"},
		{"too few pieces for the length", wrap(bd("length", bi(16385), "name", bs("x"), "piece length", bi(16384), "pieces", bs(hashes(1)))), ErrInvalid, "1 piece hashes"},
		{"a negative length", wrap(bd("length", bi(-1), "name", bs("x"), "piece length", bi(16384), "pieces", bs(hashes(1)))), ErrInvalid, "negative length"},
		{"a negative file length", wrap(multiInfo("d", 1, fileEntry(-1, "a"), fileEntry(2, "b"))), ErrInvalid, "negative length"},
		{"lengths that overflow", wrap(multiInfo("d", 1, fileEntry(1<<62, "a"), fileEntry(1<<62, "b"), fileEntry(1<<62, "c"))), ErrInvalid, "overflows"},
		{"both length and files", wrap(bd("files", bl(fileEntry(1, "a")), "length", bi(1), "name", bs("x"), "piece length", bi(16384), "pieces", bs(hashes(1)))), ErrInvalid, "both length and files"},
		{"neither length nor files", wrap(bd("name", bs("x"), "piece length", bi(16384), "pieces", bs(hashes(1)))), ErrInvalid, "missing length or files"},
		{"an empty file list", wrap(multiInfo("d", 0)), ErrInvalid, "files is empty"},
		{"no content at all", wrap(bd("length", bi(0), "name", bs("x"), "piece length", bi(16384), "pieces", bs(""))), ErrInvalid, "total length is 0"},
		{"a length that is a string", wrap(bd("length", bs("1"), "name", bs("x"), "piece length", bi(16384), "pieces", bs(hashes(1)))), ErrInvalid, "length is not an integer"},

		// Broken bencode.
		{"empty data", nil, ErrSyntax, "empty"},
		{"truncated data", alice[:len(alice)/2], ErrSyntax, "past the end"},
		{"data cut before the last byte", alice[:len(alice)-1], ErrSyntax, "unterminated dictionary"},
		{"data cut inside an integer", []byte("d4:infod6:lengthi12"), ErrSyntax, "unterminated integer"},
		{"deep nesting", []byte("d4:info" + strings.Repeat("l", 100000) + strings.Repeat("e", 100000) + "e"), ErrSyntax, "nested deeper"},
		{"deep nesting without an end", []byte("d1:a" + strings.Repeat("d1:a", 1<<20)), ErrSyntax, "nested deeper"},
		{"a huge string length", []byte("d4:info99999999999999999999:xe"), ErrSyntax, "runs past the end"},
		{"a string length just past the data", []byte("d4:info4096:" + okInfo + "e"), ErrSyntax, "runs past the end"},
		{"a negative string length", []byte("d4:info-1:xe"), ErrSyntax, "unexpected byte"},
		{"an integer out of range", wrap(bd("length", "i99999999999999999999e", "name", bs("x"))), ErrSyntax, "out of range"},
		{"a float", wrap(bd("length", "i1.5e", "name", bs("x"))), ErrSyntax, "bad integer"},
		{"an integer with a plus sign", wrap(bd("length", "i+1e", "name", bs("x"))), ErrSyntax, "bad integer"},
		{"an empty integer", wrap(bd("length", "ie", "name", bs("x"))), ErrSyntax, "bad integer"},
		{"a dictionary key that is not a string", []byte("di1e4:infoe"), ErrSyntax, "key is not a string"},
		{"a duplicate info key", []byte(bd("info", okInfo, "info", okInfo)), ErrSyntax, "duplicate dictionary key"},
		{"a duplicate key out of order", wrap("d4:name1:x6:lengthi1e4:name1:ye"), ErrSyntax, "duplicate dictionary key"},
		{"trailing data", append(append([]byte(nil), alice...), "junk"...), ErrSyntax, "trailing data"},
		{"a top level that is a list", []byte("l4:infoe"), ErrSyntax, "not a dictionary"},
		{"data over the size limit", []byte("d4:info" + strings.Repeat("0", MaxTorrentSize)), ErrTooLarge, "more than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse(tt.data)
			if err == nil {
				t.Fatalf("parsed: %+v", m)
			}
			if !errors.Is(err, tt.kind) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("error %q: want kind %q mentioning %q", err, tt.kind, tt.msg)
			}
			if !strings.HasPrefix(err.Error(), "torrent: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
}

func TestLoadRejectsOversizedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big.torrent")
	if err := os.WriteFile(path, make([]byte, MaxTorrentSize+1), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), path) {
		t.Fatalf("error %v: want ErrTooLarge naming %s", err, path)
	}
}

func TestLoadReportsMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.torrent")
	if _, err := Load(path); !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), path) {
		t.Fatalf("error %v: want ErrNotExist naming %s", err, path)
	}
}

func TestTrackersReturnsACopy(t *testing.T) {
	m := &MetaInfo{AnnounceList: [][]string{{"a"}}}
	m.Trackers()[0][0] = "changed"
	if m.AnnounceList[0][0] != "a" {
		t.Fatal("Trackers returned the MetaInfo's own slices")
	}
}
