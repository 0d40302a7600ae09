package e2e

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"btclient/internal/tooltest"
)

// torrentCLI runs the btclient binary to completion and returns its exit
// status, stdout and stderr.
func torrentCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := exec.Command(binary, args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		code = exit.ExitCode()
	default:
		t.Fatalf("run btclient %v: %v", args, err)
	}
	return code, out.String(), errOut.String()
}

// wantOneErrorLine fails unless stderr is one "btclient: …" line that
// mentions every one of words.
func wantOneErrorLine(t *testing.T, stderr string, words ...string) {
	t.Helper()
	if strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "btclient: ") {
		t.Fatalf("stderr %q: want one line starting with \"btclient: \"", stderr)
	}
	for _, w := range words {
		if !strings.Contains(stderr, w) {
			t.Errorf("stderr %q does not mention %q", stderr, w)
		}
	}
}

// TestInfoPrintsInfoHashOfTorrentsMadeByOtherTools: `btclient info` on
// torrents that transmission-create, mktorrent and libtorrent wrote prints
// the info hash that transmission-show and libtorrent read in them.
func TestInfoPrintsInfoHashOfTorrentsMadeByOtherTools(t *testing.T) {
	src := t.TempDir()
	single := randomFile(t, src, "alice.txt", 163_783)
	nested := filepath.Join(src, "album")
	if err := os.MkdirAll(filepath.Join(nested, "disc 1", "deep"), 0o755); err != nil {
		t.Fatal(err)
	}
	randomFile(t, nested, "cover.jpg", 1234)
	randomFile(t, filepath.Join(nested, "disc 1", "deep"), "track.bin", 100_000)

	type made struct {
		name, torrent string
		lines         []string // more lines the output must hold
	}
	var torrents []made
	for _, maker := range tooltest.Makers() {
		torrents = append(torrents,
			made{maker.Name + " single file", maker.Make(t, single, tooltest.TorrentOptions{PieceLength: 32 << 10}), nil},
			made{maker.Name + " nested folders", maker.Make(t, nested, tooltest.TorrentOptions{}),
				[]string{filepath.Join("album", "disc 1", "deep", "track.bin")}})
		if maker.WebSeeds {
			opt := tooltest.TorrentOptions{PieceLength: 32 << 10, Private: true, WebSeeds: []string{"http://127.0.0.1:2/seed/"}}
			torrents = append(torrents, made{maker.Name + " private with a web seed", maker.Make(t, single, opt),
				[]string{"Private:       yes", "Web seed:      http://127.0.0.1:2/seed/"}})
		}
	}
	torrents = append(torrents, made{"libtorrent, over 4 GiB", tooltest.LibtorrentTorrentOfSizes(t, 4<<20,
		tooltest.SizedFile{Path: "Sintel/Sintel.2010.4K.mkv", Length: 5490455272},
		tooltest.SizedFile{Path: "Sintel/subs/en.srt", Length: 1}),
		[]string{"Total size:    5490455273 bytes", "Pieces:        1310"}})

	for _, tt := range torrents {
		t.Run(tt.name, func(t *testing.T) {
			lt := tooltest.ShowWithLibtorrent(t, tt.torrent)
			if tr := tooltest.ShowWithTransmission(t, tt.torrent); tr.InfoHash != lt.InfoHash {
				t.Fatalf("transmission-show reads info hash %s, libtorrent %s", tr.InfoHash, lt.InfoHash)
			}
			code, stdout, stderr := torrentCLI(t, "info", tt.torrent)
			if code != 0 {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
			for _, want := range append([]string{"Info hash:     " + lt.InfoHash, "Name:          " + lt.Name}, tt.lines...) {
				if !strings.Contains(stdout, want) {
					t.Errorf("output lacks %q:\n%s", want, stdout)
				}
			}
		})
	}
}

func TestInfoRejectsBadTorrents(t *testing.T) {
	dir := t.TempDir()
	// A multi-file torrent whose only file would land in ../escape.txt.
	climbing := filepath.Join(dir, "climbing.torrent")
	info := "d5:filesld6:lengthi1e4:pathl2:..10:escape.txteee4:name3:dir12:piece lengthi16384e6:pieces20:" +
		strings.Repeat("x", 20) + "e"
	if err := os.WriteFile(climbing, []byte("d4:info"+info+"e"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The shape of webtorrent-fixtures' corrupt.torrent: the info
	// dictionary has no name.
	corrupt := filepath.Join(dir, "corrupt.torrent")
	if err := os.WriteFile(corrupt, []byte("d8:announce17:udp://127.0.0.1:14:infod6:lengthi163783e12:piece lengthi16384e6:pieces200:"+
		strings.Repeat("x", 200)+"ee"), 0o644); err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(dir, "truncated.torrent")
	if err := os.WriteFile(truncated, []byte("d4:infod4:name"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		args  []string
		words []string
	}{
		{"a torrent without a name", []string{"info", corrupt}, []string{"corrupt.torrent", "missing name"}},
		{"a path that climbs out of the download directory", []string{"info", climbing}, []string{"climbing.torrent", `".."`}},
		{"a truncated torrent", []string{"info", truncated}, []string{"truncated.torrent"}},
		{"a missing file", []string{"info", filepath.Join(dir, "absent.torrent")}, []string{"absent.torrent"}},
		{"no argument", []string{"info"}, []string{"TORRENT"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := torrentCLI(t, tt.args...)
			if code != 2 {
				t.Fatalf("exit %d, want 2; stdout %q stderr %q", code, stdout, stderr)
			}
			wantOneErrorLine(t, stderr, tt.words...)
		})
	}
}

func TestCreateThenInfoRoundTrip(t *testing.T) {
	content := filepath.Join(t.TempDir(), "album")
	if err := os.MkdirAll(filepath.Join(content, "disc1"), 0o755); err != nil {
		t.Fatal(err)
	}
	randomFile(t, filepath.Join(content, "disc1"), "track.bin", 300_000)
	randomFile(t, content, "cover.jpg", 1234)

	out := filepath.Join(t.TempDir(), "album.torrent")
	code, stdout, stderr := torrentCLI(t, "create", "-o", out, "--piece-length", "32KiB",
		"--announce", "http://t1.example/announce,http://t2.example/announce", "--comment", "round trip", "--private", content)
	if code != 0 {
		t.Fatalf("create: exit %d, stderr %q", code, stderr)
	}
	m := regexp.MustCompile(`Info hash:\s+([0-9a-f]{40})`).FindStringSubmatch(stdout)
	if m == nil || !strings.Contains(stdout, out) {
		t.Fatalf("create output lacks the info hash or the output path:\n%s", stdout)
	}
	hash := m[1]

	code, stdout, stderr = torrentCLI(t, "info", out)
	if code != 0 {
		t.Fatalf("info: exit %d, stderr %q", code, stderr)
	}
	for _, want := range []string{
		"Name:          album",
		"Info hash:     " + hash,
		"Total size:    301234 bytes",
		"Piece length:  32768 bytes",
		"Pieces:        10",
		"Private:       yes",
		"Comment:       round trip",
		"tier 1: http://t1.example/announce",
		"tier 2: http://t2.example/announce",
		"Files (2):",
		"1234  " + filepath.Join("album", "cover.jpg"),
		"300000  " + filepath.Join("album", "disc1", "track.bin"),
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("info output lacks %q:\n%s", want, stdout)
		}
	}

	// The harness's makeTorrent (create with defaults) gives the same info
	// hash: nothing in the info dictionary depends on the run.
	again := makeTorrent(t, content, "--piece-length", "32768", "--private")
	if _, stdout, _ := torrentCLI(t, "info", again); !strings.Contains(stdout, hash) {
		t.Errorf("re-creating the torrent changed its info hash:\n%s", stdout)
	}
}

func TestCreateWritesNameDotTorrentByDefault(t *testing.T) {
	content := randomFile(t, t.TempDir(), "data.bin", 20_000)
	cwd := t.TempDir()
	cmd := exec.Command(binary, "create", content)
	cmd.Dir = cwd
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("create: %v\n%s", err, b)
	}
	if _, err := os.Stat(filepath.Join(cwd, "data.bin.torrent")); err != nil {
		t.Fatal(err)
	}
}

func TestCreateRejectsBadInput(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	file := randomFile(t, dir, "f.bin", 100)
	tests := []struct {
		name  string
		args  []string
		code  int
		words []string
	}{
		{"an empty directory", []string{"create", empty}, 2, []string{"empty"}},
		{"a path that does not exist", []string{"create", filepath.Join(dir, "missing")}, 2, []string{"missing"}},
		{"a piece length that is not a power of two", []string{"create", "--piece-length", "100KiB", file}, 2, []string{"power of two"}},
		{"a piece length below 16 KiB", []string{"create", "--piece-length", "8192", file}, 2, []string{"16KiB"}},
		{"a piece length that is not a size", []string{"create", "--piece-length", "big", file}, 2, []string{"not a size"}},
		{"two paths", []string{"create", file, file}, 2, []string{"one PATH"}},
		{"an output directory that does not exist", []string{"create", "-o", filepath.Join(dir, "no", "x.torrent"), file}, 1, []string{"x.torrent"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := torrentCLI(t, tt.args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d; stderr %q", code, tt.code, stderr)
			}
			wantOneErrorLine(t, stderr, tt.words...)
		})
	}
}

func TestCreateAndInfoHelp(t *testing.T) {
	for _, sub := range []string{"create", "info"} {
		code, _, stderr := torrentCLI(t, sub, "--help")
		if code != 0 || !strings.Contains(stderr, "Usage: btclient "+sub) {
			t.Errorf("%s --help: exit %d, output %q", sub, code, stderr)
		}
	}
}
