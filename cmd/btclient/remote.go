package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"btclient/rpc"
	"btclient/torrent"
)

const remoteUsage = `btclient remote [flags] COMMAND [ARGS]

Drive a btclient daemon (or a Transmission daemon) through its RPC.

Commands:
  add FILE|MAGNET     add a .torrent file (sent as its bytes) or a magnet link
  list                every torrent: id, percent done, size, rates, peers, state, name
  info ID             everything about one torrent, its files and trackers
  start ID|all        start a torrent
  stop ID|all         stop a torrent
  remove ID           remove a torrent (its files stay unless --delete)

ID is a torrent's number (from list) or its info hash.`

type remoteFlags struct {
	url         string
	auth        string
	paused      bool
	downloadDir string
	delete      bool
}

func runRemote(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var f remoteFlags
	fs := newFlagSet("btclient remote", remoteUsage, stderr)
	fs.StringVar(&f.url, "rpc", "http://127.0.0.1:9091"+rpc.RPCPath, "URL of the daemon's RPC")
	fs.StringVar(&f.auth, "auth", "", "USER:PASS for a daemon started with --rpc-auth (default: BTCLIENT_RPC_AUTH)")
	fs.BoolVar(&f.paused, "paused", false, "add: add without starting")
	fs.StringVar(&f.downloadDir, "download-dir", "", "add: where the files go on the daemon's machine (absolute, inside its --download-dir)")
	fs.BoolVar(&f.delete, "delete", false, "remove: delete the torrent's files too")
	if done, code := parseFlags(fs, args, stderr); done {
		return code
	}
	if f.auth == "" {
		f.auth = os.Getenv("BTCLIENT_RPC_AUTH")
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return usageError(stderr, "remote needs a command: add, list, info, start, stop or remove")
	}
	cmd, rest := fs.Arg(0), fs.Args()[1:]
	want := map[string]int{"add": 1, "list": 0, "info": 1, "start": 1, "stop": 1, "remove": 1}
	n, ok := want[cmd]
	if !ok {
		return usageError(stderr, "remote: unknown command %q (add, list, info, start, stop, remove)", cmd)
	}
	if len(rest) != n {
		return usageError(stderr, "remote %s takes %d argument(s), got %d", cmd, n, len(rest))
	}
	if (f.paused || f.downloadDir != "") && cmd != "add" {
		return usageError(stderr, "--paused and --download-dir go with add")
	}
	if f.delete && cmd != "remove" {
		return usageError(stderr, "--delete goes with remove")
	}
	if f.auth != "" && !strings.Contains(f.auth, ":") {
		return usageError(stderr, "--auth: want USER:PASS")
	}
	c := rpc.NewClient(f.url, f.auth)
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var err error
	switch cmd {
	case "add":
		var args map[string]any
		if args, err = addArgs(rest[0], f); err != nil {
			return usageError(stderr, "%v", err)
		}
		err = remoteAdd(ctx, c, args, stdout)
	case "list":
		err = remoteList(ctx, c, stdout)
	default:
		var ids any
		if ids, err = parseRemoteID(rest[0], cmd == "start" || cmd == "stop"); err != nil {
			return usageError(stderr, "%v", err)
		}
		switch cmd {
		case "info":
			err = remoteInfo(ctx, c, ids, stdout)
		case "start", "stop":
			err = remoteAction(ctx, c, "torrent-"+cmd, map[string]any{"ids": ids})
		case "remove":
			err = remoteAction(ctx, c, "torrent-remove", map[string]any{"ids": ids, "delete-local-data": f.delete})
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "btclient: %v\n", err)
		return exitError
	}
	return exitOK
}

// parseRemoteID reads a torrent id or info hash ("all" where allowed) into
// an RPC ids value (nil: all).
func parseRemoteID(s string, allowAll bool) (any, error) {
	if s == "all" && allowAll {
		return nil, nil
	}
	if n, err := strconv.Atoi(s); err == nil && n > 0 {
		return []int{n}, nil
	}
	if len(s) == 40 && strings.Trim(strings.ToLower(s), "0123456789abcdef") == "" {
		return []string{strings.ToLower(s)}, nil
	}
	return nil, fmt.Errorf("%q is not a torrent id (a number from list) or a 40-character info hash", s)
}

// addArgs reads what `remote add` sends: a magnet as filename, a local
// .torrent's bytes as metainfo.
func addArgs(what string, f remoteFlags) (map[string]any, error) {
	args := map[string]any{"paused": f.paused}
	if f.downloadDir != "" {
		args["download-dir"] = f.downloadDir
	}
	if torrent.IsMagnet(what) {
		if _, err := torrent.ParseMagnet(what); err != nil {
			return nil, err
		}
		args["filename"] = what
		return args, nil
	}
	data, err := readTorrentFile(what)
	if err != nil {
		return nil, err
	}
	if _, err := torrent.Parse(data); err != nil {
		return nil, fmt.Errorf("torrent: %s: %v", what, errors.Unwrap(err))
	}
	args["metainfo"] = base64.StdEncoding.EncodeToString(data)
	return args, nil
}

func remoteAdd(ctx context.Context, c *rpc.Client, args map[string]any, stdout io.Writer) error {
	type added struct {
		ID         int    `json:"id"`
		Name       string `json:"name"`
		HashString string `json:"hashString"`
	}
	var out struct {
		Added *added `json:"torrent-added"`
		Dup   *added `json:"torrent-duplicate"`
	}
	if err := c.Call(ctx, "torrent-add", args, &out); err != nil {
		return err
	}
	switch {
	case out.Added != nil:
		fmt.Fprintf(stdout, "added %d %s %s\n", out.Added.ID, out.Added.HashString, out.Added.Name)
	case out.Dup != nil:
		fmt.Fprintf(stdout, "already there: %d %s %s\n", out.Dup.ID, out.Dup.HashString, out.Dup.Name)
	default:
		return errors.New("the daemon answered neither torrent-added nor torrent-duplicate")
	}
	return nil
}

func remoteAction(ctx context.Context, c *rpc.Client, method string, args map[string]any) error {
	if args["ids"] == nil {
		delete(args, "ids")
	}
	return c.Call(ctx, method, args, nil)
}

// remoteTorrent is what list and info read of a torrent.
type remoteTorrent struct {
	ID             int     `json:"id"`
	Name           string  `json:"name"`
	HashString     string  `json:"hashString"`
	Status         int     `json:"status"`
	Error          int     `json:"error"`
	ErrorString    string  `json:"errorString"`
	PercentDone    float64 `json:"percentDone"`
	TotalSize      int64   `json:"totalSize"`
	HaveValid      int64   `json:"haveValid"`
	LeftUntilDone  int64   `json:"leftUntilDone"`
	RateDownload   int64   `json:"rateDownload"`
	RateUpload     int64   `json:"rateUpload"`
	DownloadedEver int64   `json:"downloadedEver"`
	UploadedEver   int64   `json:"uploadedEver"`
	UploadRatio    float64 `json:"uploadRatio"`
	PeersConnected int     `json:"peersConnected"`
	ETA            int64   `json:"eta"`
	DownloadDir    string  `json:"downloadDir"`
	MagnetLink     string  `json:"magnetLink"`
	AddedDate      int64   `json:"addedDate"`
	DoneDate       int64   `json:"doneDate"`
	MetadataDone   float64 `json:"metadataPercentComplete"`
	Files          []struct {
		Name           string `json:"name"`
		Length         int64  `json:"length"`
		BytesCompleted int64  `json:"bytesCompleted"`
	} `json:"files"`
	Trackers []struct {
		Announce string `json:"announce"`
		Tier     int    `json:"tier"`
	} `json:"trackers"`
}

var listFields = []string{"id", "name", "status", "error", "errorString", "percentDone", "totalSize",
	"rateDownload", "rateUpload", "peersConnected", "metadataPercentComplete"}

func remoteList(ctx context.Context, c *rpc.Client, stdout io.Writer) error {
	var out struct {
		Torrents []remoteTorrent `json:"torrents"`
	}
	if err := c.Call(ctx, "torrent-get", map[string]any{"fields": listFields}, &out); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "ID\tDone\tSize\tDown\tUp\tPeers\t Status\t Name")
	for _, t := range out.Torrents {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t %s\t %s\n", t.ID, percent(t), humanBytes(t.TotalSize),
			humanRate(t.RateDownload), humanRate(t.RateUpload), t.PeersConnected, statusName(t), t.Name)
	}
	return tw.Flush()
}

func remoteInfo(ctx context.Context, c *rpc.Client, ids any, stdout io.Writer) error {
	fields := append(slicesClone(listFields), "hashString", "haveValid", "leftUntilDone", "downloadedEver",
		"uploadedEver", "uploadRatio", "eta", "downloadDir", "magnetLink", "addedDate", "doneDate", "files", "trackers")
	var out struct {
		Torrents []remoteTorrent `json:"torrents"`
	}
	if err := c.Call(ctx, "torrent-get", map[string]any{"fields": fields, "ids": ids}, &out); err != nil {
		return err
	}
	if len(out.Torrents) == 0 {
		return fmt.Errorf("no torrent %v", ids)
	}
	for _, t := range out.Torrents {
		w := tabwriter.NewWriter(stdout, 0, 0, 1, ' ', 0)
		line := func(k, v string) { fmt.Fprintf(w, "%s:\t%s\n", k, v) }
		line("Id", strconv.Itoa(t.ID))
		line("Name", t.Name)
		line("Hash", t.HashString)
		line("State", statusName(t))
		if t.ErrorString != "" {
			line("Error", t.ErrorString)
		}
		line("Location", t.DownloadDir)
		line("Percent done", percent(t))
		line("Size", fmt.Sprintf("%s (%s verified, %s left)", humanBytes(t.TotalSize), humanBytes(t.HaveValid), humanBytes(t.LeftUntilDone)))
		line("Download rate", humanRate(t.RateDownload))
		line("Upload rate", humanRate(t.RateUpload))
		if t.ETA >= 0 {
			line("ETA", (time.Duration(t.ETA) * time.Second).String())
		}
		line("Downloaded", humanBytes(t.DownloadedEver))
		line("Uploaded", humanBytes(t.UploadedEver))
		if t.UploadRatio >= 0 {
			line("Ratio", fmt.Sprintf("%.2f", t.UploadRatio))
		}
		line("Peers", strconv.Itoa(t.PeersConnected))
		line("Added", dateString(t.AddedDate))
		line("Completed", dateString(t.DoneDate))
		line("Magnet", t.MagnetLink)
		for _, tr := range t.Trackers {
			line("Tracker", fmt.Sprintf("%s (tier %d)", tr.Announce, tr.Tier))
		}
		for _, f := range t.Files {
			line("File", fmt.Sprintf("%s (%s, %s done)", f.Name, humanBytes(f.Length), humanBytes(f.BytesCompleted)))
		}
		if err := w.Flush(); err != nil {
			return err
		}
		fmt.Fprintln(stdout)
	}
	return nil
}

func slicesClone(s []string) []string { return append([]string(nil), s...) }

// statusName names Transmission's status numbers as transmission-remote does.
func statusName(t remoteTorrent) string {
	if t.Error != 0 {
		return "Error"
	}
	switch t.Status {
	case 0:
		return "Stopped"
	case 1:
		return "Will Verify"
	case 2:
		return "Verifying"
	case 3, 5:
		return "Queued"
	case 4:
		if t.MetadataDone < 1 {
			return "Fetching metadata"
		}
		return "Downloading"
	case 6:
		return "Seeding"
	}
	return "Unknown"
}

func percent(t remoteTorrent) string {
	if t.TotalSize == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.0f%%", math.Floor(100*t.PercentDone)) // 99.6 % is not done yet
}

func humanBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	f, units := float64(n), []string{"kB", "MB", "GB", "TB", "PB"}
	i := -1
	for f >= unit && i < len(units)-1 {
		f /= unit
		i++
	}
	return fmt.Sprintf("%.1f %s", f, units[i])
}

func humanRate(n int64) string { return humanBytes(n) + "/s" }

func dateString(unix int64) string {
	if unix == 0 {
		return "-"
	}
	return time.Unix(unix, 0).Format(time.DateTime)
}
