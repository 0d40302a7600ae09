package tooltest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/bits"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// DebianPython is Debian's own interpreter, the one python3-libtorrent is
// for (another python3 may come first on PATH).
const DebianPython = "/usr/bin/python3"

// NeedLibtorrent skips t, or fails it under CI, unless Debian's python3 can
// import libtorrent.
func NeedLibtorrent(t testing.TB) {
	t.Helper()
	if err := exec.Command(DebianPython, "-c", "import libtorrent").Run(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("python3-libtorrent is not installed under CI: %v", err)
		}
		t.Skipf("python3-libtorrent is not installed (scripts/install-test-deps.sh installs it): %v", err)
	}
}

// TorrentOptions is what a maker writes into a torrent besides the content.
type TorrentOptions struct {
	// PieceLength is in bytes, a power of two of at least 16 KiB; 0 lets
	// the tool choose.
	PieceLength int64
	Private     bool
	// Trackers are announce URLs, one tier each.
	Trackers []string
	// WebSeeds are BEP 19 url-list entries; transmission-create cannot
	// write them (see Maker.WebSeeds).
	WebSeeds []string
	Comment  string
}

// Maker is a third-party program that writes .torrent files.
type Maker struct {
	// Name names the tool in test names and messages.
	Name string
	// WebSeeds reports whether the tool can write url-list.
	WebSeeds bool
	run      func(t testing.TB, content, out string, opt TorrentOptions)
}

// Makers returns every torrent maker the tests compare btclient against:
// transmission-create, mktorrent and libtorrent's create_torrent.
func Makers() []Maker {
	return []Maker{
		{Name: "transmission-create", run: transmissionCreate},
		{Name: "mktorrent", WebSeeds: true, run: mktorrent},
		{Name: "libtorrent", WebSeeds: true, run: libtorrentCreate},
	}
}

// Make writes a torrent of the file or directory content with the maker and
// returns the torrent's path, in a directory of its own that the test
// removes. It skips or fails t (under CI) when the tool is missing.
func (m Maker) Make(t testing.TB, content string, opt TorrentOptions) string {
	t.Helper()
	if len(opt.WebSeeds) > 0 && !m.WebSeeds {
		t.Fatalf("%s cannot write web seeds", m.Name)
	}
	if opt.PieceLength != 0 && (opt.PieceLength < 16<<10 || bits.OnesCount64(uint64(opt.PieceLength)) != 1) {
		t.Fatalf("piece length %d is not a power of two of at least 16 KiB", opt.PieceLength)
	}
	out := filepath.Join(t.TempDir(), filepath.Base(content)+".torrent")
	m.run(t, content, out, opt)
	if _, err := os.Stat(out); err != nil {
		t.Fatalf("%s wrote no torrent: %v", m.Name, err)
	}
	return out
}

// runTool runs a program to completion and fails t with its output when it
// does not succeed.
func runTool(t testing.TB, name string, args ...string) []byte {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out.Bytes())
	}
	return out.Bytes()
}

func transmissionCreate(t testing.TB, content, out string, opt TorrentOptions) {
	t.Helper()
	bin := Need(t, "transmission-create")
	args := []string{"-o", out}
	if opt.PieceLength > 0 {
		args = append(args, "-s", strconv.FormatInt(opt.PieceLength>>10, 10))
	}
	if opt.Private {
		args = append(args, "-p")
	}
	for _, tr := range opt.Trackers {
		args = append(args, "-t", tr)
	}
	if opt.Comment != "" {
		args = append(args, "-c", opt.Comment)
	}
	runTool(t, bin, append(args, content)...)
}

func mktorrent(t testing.TB, content, out string, opt TorrentOptions) {
	t.Helper()
	bin := Need(t, "mktorrent")
	args := []string{"-o", out, "-t", "1"}
	if opt.PieceLength > 0 {
		args = append(args, "-l", strconv.Itoa(bits.TrailingZeros64(uint64(opt.PieceLength))))
	}
	if opt.Private {
		args = append(args, "-p")
	}
	for _, tr := range opt.Trackers {
		args = append(args, "-a", tr)
	}
	for _, w := range opt.WebSeeds {
		args = append(args, "-w", w)
	}
	if opt.Comment != "" {
		args = append(args, "-c", opt.Comment)
	}
	runTool(t, bin, append(args, content)...)
}

// libtorrentScript makes a v1 torrent (a hybrid v1/v2 one is another
// format) with libtorrent's create_torrent. Its one argument is a JSON
// object: content, out, piece_length, private, trackers, web_seeds,
// comment; or, instead of content, files ([path, length] pairs that need not
// exist) and a placeholder hash for every piece.
const libtorrentScript = `
import json, os, sys
import libtorrent as lt
a = json.loads(sys.argv[1])
fs = lt.file_storage()
if a.get("files"):
    for path, length in a["files"]:
        fs.add_file(path, length)
else:
    lt.add_files(fs, a["content"])
ct = lt.create_torrent(fs, a["piece_length"], flags=lt.create_torrent.v1_only)
ct.set_priv(a["private"])
for tier, url in enumerate(a["trackers"]):
    ct.add_tracker(url, tier)
for url in a["web_seeds"]:
    ct.add_url_seed(url)
if a["comment"]:
    ct.set_comment(a["comment"])
if a.get("files"):
    for i in range(ct.num_pieces()):
        ct.set_hash(i, bytes([1 + i % 255]) * 20)
else:
    lt.set_piece_hashes(ct, os.path.dirname(os.path.abspath(a["content"])))
with open(a["out"], "wb") as f:
    f.write(lt.bencode(ct.generate()))
`

type libtorrentArgs struct {
	Content     string   `json:"content,omitempty"`
	Files       [][2]any `json:"files,omitempty"`
	Out         string   `json:"out"`
	PieceLength int64    `json:"piece_length"`
	Private     bool     `json:"private"`
	Trackers    []string `json:"trackers"`
	WebSeeds    []string `json:"web_seeds"`
	Comment     string   `json:"comment"`
}

func runLibtorrentScript(t testing.TB, a libtorrentArgs) {
	t.Helper()
	NeedLibtorrent(t)
	if a.Trackers == nil {
		a.Trackers = []string{}
	}
	if a.WebSeeds == nil {
		a.WebSeeds = []string{}
	}
	arg, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	runTool(t, DebianPython, "-c", libtorrentScript, string(arg))
}

func libtorrentCreate(t testing.TB, content, out string, opt TorrentOptions) {
	t.Helper()
	runLibtorrentScript(t, libtorrentArgs{
		Content: content, Out: out, PieceLength: opt.PieceLength, Private: opt.Private,
		Trackers: opt.Trackers, WebSeeds: opt.WebSeeds, Comment: opt.Comment,
	})
}

// SizedFile is a file of a torrent whose content does not exist.
type SizedFile struct {
	// Path is slash-separated and starts with the torrent's name.
	Path   string
	Length int64
}

// LibtorrentTorrentOfSizes has libtorrent write a torrent of files that
// need not exist (gigabytes, say), with a placeholder hash for every piece,
// and returns its path: the shape of a big real-world torrent without
// hashing its data.
func LibtorrentTorrentOfSizes(t testing.TB, pieceLength int64, files ...SizedFile) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "sized.torrent")
	a := libtorrentArgs{Out: out, PieceLength: pieceLength}
	for _, f := range files {
		a.Files = append(a.Files, [2]any{f.Path, f.Length})
	}
	runLibtorrentScript(t, a)
	return out
}

// Description is what a reader tool says a torrent holds.
type Description struct {
	InfoHash    string // lower-case hex
	Name        string
	PieceLength int64
	Pieces      int
	Private     bool
	WebSeeds    []string
	// Files are listed in the torrent's order, paths slash-separated and,
	// in a multi-file torrent, starting with the torrent's name.
	Files []SizedFile
}

// libtorrentShowScript prints what libtorrent's torrent_info reads in the
// torrent named by its argument, as JSON.
const libtorrentShowScript = `
import json, sys
import libtorrent as lt
ti = lt.torrent_info(sys.argv[1])
fs = ti.files()
print(json.dumps({
    "InfoHash": str(ti.info_hashes().v1),
    "Name": ti.name(),
    "PieceLength": ti.piece_length(),
    "Pieces": ti.num_pieces(),
    "Private": ti.priv(),
    "WebSeeds": [w["url"] for w in ti.web_seeds()],
    "Files": [{"Path": fs.file_path(i).replace("\\", "/"), "Length": fs.file_size(i)} for i in range(fs.num_files())],
}))
`

// ShowWithLibtorrent reads the torrent at path with libtorrent.
func ShowWithLibtorrent(t testing.TB, path string) Description {
	t.Helper()
	NeedLibtorrent(t)
	out := runTool(t, DebianPython, "-c", libtorrentShowScript, path)
	var d Description
	if err := json.Unmarshal(out, &d); err != nil {
		t.Fatalf("libtorrent's reading of %s: %v\n%s", path, err, out)
	}
	return d
}

var (
	showField = regexp.MustCompile(`(?m)^  (Name|Hash|Piece Count|Piece Size|Privacy): (.*)$`)
	showFile  = regexp.MustCompile(`^  (.*) \([0-9.]+ [kMGT]?B\)$`)
	showUnits = map[string]int64{"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}
)

// ShowWithTransmission reads the torrent at path with transmission-show.
// It prints file sizes rounded, so every file's Length is -1 (unknown).
func ShowWithTransmission(t testing.TB, path string) Description {
	t.Helper()
	bin := Need(t, "transmission-show")
	out := string(runTool(t, bin, path))
	var d Description
	fail := func(format string, a ...any) {
		t.Helper()
		t.Fatalf("transmission-show %s: %s\n%s", path, fmt.Sprintf(format, a...), out)
	}
	general, rest, _ := strings.Cut(out, "\nTRACKERS\n")
	for _, m := range showField.FindAllStringSubmatch(general, -1) {
		switch key, value := m[1], strings.TrimSpace(m[2]); key {
		case "Name":
			d.Name = value
		case "Hash":
			d.InfoHash = value
		case "Piece Count":
			n, err := strconv.Atoi(value)
			if err != nil {
				fail("piece count %q", value)
			}
			d.Pieces = n
		case "Piece Size":
			num, unit, _ := strings.Cut(value, " ")
			f, err := strconv.ParseFloat(num, 64)
			if err != nil || showUnits[unit] == 0 {
				fail("piece size %q", value)
			}
			d.PieceLength = int64(f * float64(showUnits[unit]))
		case "Privacy":
			d.Private = value == "Private torrent"
		}
	}
	if before, seeds, ok := strings.Cut(rest, "\nWEBSEEDS\n"); ok {
		seeds, _, _ = strings.Cut(seeds, "\nFILES\n")
		rest = before + "\nFILES\n" + strings.SplitN(rest, "\nFILES\n", 2)[1]
		for _, line := range strings.Split(seeds, "\n") {
			if s := strings.TrimSpace(line); s != "" {
				d.WebSeeds = append(d.WebSeeds, s)
			}
		}
	}
	_, files, ok := strings.Cut(rest, "\nFILES\n")
	if !ok {
		fail("no FILES section")
	}
	for _, line := range strings.Split(files, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		m := showFile.FindStringSubmatch(line)
		if m == nil {
			fail("file line %q", line)
		}
		d.Files = append(d.Files, SizedFile{Path: m[1], Length: -1})
	}
	if d.InfoHash == "" || d.Name == "" || d.Pieces == 0 || d.PieceLength == 0 {
		fail("missing a general field: %+v", d)
	}
	return d
}
