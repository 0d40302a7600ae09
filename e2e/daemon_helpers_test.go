package e2e

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"btclient/internal/testwait"
	"btclient/rpc"
	"btclient/torrent"
)

// daemon is a running `btclient daemon` on loopback.
type daemon struct {
	*proc
	t        *testing.T
	rpcAddr  string // HOST:PORT of the RPC
	status   string // HOST:PORT of /status
	peerPort int
	dir      string // --download-dir
	state    string // --state-dir
	args     []string
	auth     string
}

// startDaemon runs a daemon downloading into dir with its state in state;
// extra flags follow the defaults (tracker discovery only, so peers come
// from what a test gives it). It returns once the RPC answers.
func startDaemon(t *testing.T, label, dir, state string, extra ...string) *daemon {
	t.Helper()
	d := &daemon{
		t: t, dir: dir, state: state,
		rpcAddr:  hostPort("127.0.0.1", freePort(t, "127.0.0.1")),
		status:   hostPort("127.0.0.1", freePort(t, "127.0.0.1")),
		peerPort: freePort(t, "127.0.0.1"),
	}
	d.args = append([]string{"daemon", "--rpc-listen", d.rpcAddr, "--status", d.status,
		"-p", strconv.Itoa(d.peerPort), "--download-dir", dir, "--state-dir", state,
		"--discovery-mode", "tracker", "--overlay-port", "0"}, extra...)
	for i, a := range extra {
		if a == "--rpc-auth" && i+1 < len(extra) {
			d.auth = extra[i+1]
		}
	}
	d.start(label)
	return d
}

// start runs the daemon process (again) and waits for its RPC.
func (d *daemon) start(label string) {
	d.t.Helper()
	d.proc = btclient(d.t, label, d.args...)
	c := d.client()
	testwait.Until(d.t, 30*time.Second, label+" RPC", func() bool {
		if d.exited() {
			d.t.Fatalf("%s exited: %s", label, tail(d.out.String(), 3000))
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return c.Call(ctx, "session-stats", nil, nil) == nil
	})
}

func (d *daemon) url() string { return "http://" + d.rpcAddr + rpc.RPCPath }

func (d *daemon) client() *rpc.Client { return rpc.NewClient(d.url(), d.auth) }

func (d *daemon) peerAddr() string { return hostPort("127.0.0.1", d.peerPort) }

// call runs an RPC method and fails the test unless it succeeds.
func (d *daemon) call(method string, args, out any) {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := d.client().Call(ctx, method, args, out); err != nil {
		d.t.Fatalf("%s: %v", method, err)
	}
}

// rpcTorrent is what the tests read of torrent-get.
type rpcTorrent struct {
	ID          int     `json:"id"`
	Name        string  `json:"name"`
	HashString  string  `json:"hashString"`
	Status      int     `json:"status"`
	PercentDone float64 `json:"percentDone"`
	HaveValid   int64   `json:"haveValid"`
	TotalSize   int64   `json:"totalSize"`
	Pieces      string  `json:"pieces"`
	ErrorString string  `json:"errorString"`
}

// torrents returns every torrent of the daemon.
func (d *daemon) torrents() []rpcTorrent {
	d.t.Helper()
	var out struct {
		Torrents []rpcTorrent `json:"torrents"`
	}
	d.call("torrent-get", map[string]any{"fields": []string{"id", "name", "hashString", "status",
		"percentDone", "haveValid", "totalSize", "pieces", "errorString"}}, &out)
	return out.Torrents
}

// byHash returns the daemon's torrent with that info hash.
func (d *daemon) byHash(ih [20]byte) (rpcTorrent, bool) {
	for _, t := range d.torrents() {
		if t.HashString == fmt.Sprintf("%x", ih) {
			return t, true
		}
	}
	return rpcTorrent{}, false
}

// waitComplete waits until the torrent of ih is 100 % done.
func (d *daemon) waitComplete(ih [20]byte, within time.Duration) {
	d.t.Helper()
	testwait.Until(d.t, within, fmt.Sprintf("torrent %x complete", ih[:4]), func() bool {
		t, ok := d.byHash(ih)
		return ok && t.PercentDone == 1 && t.HaveValid == t.TotalSize
	})
}

// daemonStatus is the daemon's GET /status: every torrent.
type daemonStatus struct {
	Torrents []struct {
		ID       int    `json:"id"`
		Name     string `json:"name"`
		InfoHash string `json:"info_hash"`
		State    string `json:"state"`
		Hashed   int    `json:"hashed_on_start"`
		Pieces   int    `json:"pieces"`
		Have     int    `json:"have_pieces"`
	} `json:"torrents"`
}

func (d *daemon) statusNow() daemonStatus {
	d.t.Helper()
	var st daemonStatus
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + d.status + "/status")
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&st); err != nil {
		d.t.Fatal(err)
	}
	return st
}

// verifiedOnDisk fails the test unless every piece the base64 bitfield
// claims hashes right in the files below dir; it returns how many it claims.
func verifiedOnDisk(t *testing.T, dir string, m *torrent.MetaInfo, pieces string) int {
	t.Helper()
	bf, err := base64.StdEncoding.DecodeString(pieces)
	if err != nil {
		t.Fatalf("pieces %q: %v", pieces, err)
	}
	claimed := 0
	for i := range m.NumPieces() {
		if i/8 >= len(bf) || bf[i/8]&(0x80>>(i%8)) == 0 {
			continue
		}
		claimed++
		if got := pieceHash(t, dir, m, i); got != m.Pieces[i] {
			t.Fatalf("piece %d is reported verified but its bytes on disk do not hash right", i)
		}
	}
	return claimed
}

// pieceHash hashes piece i as it is on disk now (missing bytes read as
// nothing, so they fail).
func pieceHash(t *testing.T, dir string, m *torrent.MetaInfo, i int) [20]byte {
	t.Helper()
	h := sha1.New()
	start, end := int64(i)*m.PieceLength, int64(i)*m.PieceLength+m.PieceSize(i)
	for _, f := range m.Files {
		lo, hi := max(start, f.Offset), min(end, f.Offset+f.Length)
		if lo >= hi {
			continue
		}
		fh, err := os.Open(filepath.Join(dir, m.FilePath(f)))
		if err != nil {
			continue
		}
		io.Copy(h, io.NewSectionReader(fh, lo-f.Offset, hi-lo))
		fh.Close()
	}
	var sum [20]byte
	copy(sum[:], h.Sum(nil))
	return sum
}

// transmissionRemote runs Debian's transmission-remote against addr and
// returns its output and exit status.
func transmissionRemote(t *testing.T, addr string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "transmission-remote", append([]string{addr}, args...)...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("transmission-remote %s: timed out", strings.Join(args, " "))
	}
	code := 0
	if err != nil {
		code = -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
	}
	return string(out), code
}

// listedTorrent is one line of `transmission-remote -l`.
type listedTorrent struct {
	id     int
	done   string
	status string
	name   string
}

// remoteListRE reads a line of transmission-remote -l: id, done, ..., the
// status (one of its words) and the name.
var remoteListRE = regexp.MustCompile(`^\s*(\d+)\*?\s+(\S+)\s+.*?\s(Idle|Seeding|Downloading|Up & Down|Uploading|Stopped|Finished|Verifying|Will Verify|Queued)\s+(.+)$`)

func parseRemoteList(out string) []listedTorrent {
	var list []listedTorrent
	for _, line := range strings.Split(out, "\n") {
		m := remoteListRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		id, _ := strconv.Atoi(m[1])
		list = append(list, listedTorrent{id: id, done: m[2], status: m[3], name: strings.TrimSpace(m[4])})
	}
	return list
}

// startTracker runs `btclient tracker` on loopback and returns its
// announce URL.
func startTracker(t *testing.T) string {
	t.Helper()
	addr := hostPort("127.0.0.1", freePort(t, "127.0.0.1"))
	p := btclient(t, "tracker", "tracker", "--listen", addr, "--interval", "1m", "--quiet")
	url := "http://" + addr + "/announce"
	testwait.Until(t, 10*time.Second, "tracker", func() bool {
		if p.exited() {
			t.Fatalf("tracker exited: %s", p.out.String())
		}
		c := http.Client{Timeout: time.Second}
		resp, err := c.Get("http://" + addr + "/scrape")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return true
	})
	return url
}

func needTransmissionRemote(t *testing.T) { needBinary(t, "transmission-remote") }
