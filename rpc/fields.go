package rpc

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"btclient/session"
	"btclient/torrent"
)

// Transmission's torrent status numbers.
const (
	statusStopped      = 0
	statusCheckWait    = 1
	statusCheck        = 2
	statusDownloadWait = 3
	statusDownload     = 4
	statusSeedWait     = 5
	statusSeed         = 6
)

// Transmission's error kinds: btclient reports only its own failures.
const (
	errorNone  = 0
	errorLocal = 3
)

// Transmission's "not available" and "unknown" ETAs and ratios.
const (
	etaNotAvailable = -1
	etaUnknown      = -2
	ratioNA         = -1
)

// view is one torrent as torrent-get sees it; the metainfo and files are
// looked up only when a field needs them.
type view struct {
	s     *Server
	t     *session.Torrent
	st    session.Status
	now   time.Time
	queue int
	meta  *torrent.MetaInfo
	files []session.FileStatus
	got   struct{ meta, files bool }
}

func (v *view) metaInfo() *torrent.MetaInfo {
	if !v.got.meta {
		v.meta, v.got.meta = v.t.Meta(), true
	}
	return v.meta
}

func (v *view) fileList() []session.FileStatus {
	if !v.got.files {
		v.files, v.got.files = v.t.Files(), true
	}
	return v.files
}

func (v *view) left() int64 { return v.st.Size - v.st.Done }

// torrentFields maps each torrent-get field btclient knows to its value.
// Fields it cannot fill truthfully are not here: a request for one gets
// the others, as Transmission skips names it does not know.
var torrentFields = map[string]func(v *view) any{
	"id":          func(v *view) any { return v.st.ID },
	"hashString":  func(v *view) any { return fmt.Sprintf("%x", v.st.InfoHash) },
	"name":        func(v *view) any { return v.st.Name },
	"status":      func(v *view) any { return statusOf(v.st) },
	"error":       func(v *view) any { return errorOf(v.st) },
	"errorString": func(v *view) any { return v.st.Error },
	"percentDone": func(v *view) any { return fraction(v.st.Done, v.st.Size) },
	// btclient downloads every file: the wanted part is the whole.
	"percentComplete":  func(v *view) any { return fraction(v.st.Done, v.st.Size) },
	"totalSize":        func(v *view) any { return v.st.Size },
	"sizeWhenDone":     func(v *view) any { return v.st.Size },
	"leftUntilDone":    func(v *view) any { return v.left() },
	"desiredAvailable": func(v *view) any { return int64(0) },
	"haveValid":        func(v *view) any { return v.st.Done },
	// Every piece is hashed before it is written as had.
	"haveUnchecked":  func(v *view) any { return int64(0) },
	"corruptEver":    func(v *view) any { return v.st.Wasted },
	"rateDownload":   func(v *view) any { return int64(v.st.DownRate) },
	"rateUpload":     func(v *view) any { return int64(v.st.UpRate) },
	"downloadedEver": func(v *view) any { return v.st.DownloadedEver },
	"uploadedEver":   func(v *view) any { return v.st.UploadedEver },
	"uploadRatio":    func(v *view) any { return ratio(v.st) },
	"eta":            func(v *view) any { return eta(v.st) },
	"etaIdle":        func(v *view) any { return etaNotAvailable },
	"peersConnected": func(v *view) any { return v.st.Peers },
	"peersSendingToUs": func(v *view) any {
		return v.st.PeersSending
	},
	"peersGettingFromUs": func(v *view) any { return v.st.PeersGetting },
	"webseedsSendingToUs": func(v *view) any {
		return 0 // btclient does not download from web seeds
	},
	"downloadDir":             func(v *view) any { return v.st.DownloadDir },
	"addedDate":               func(v *view) any { return unix(v.st.AddedAt) },
	"doneDate":                func(v *view) any { return unix(v.st.DoneAt) },
	"startDate":               func(v *view) any { return unix(v.st.StartedAt) },
	"activityDate":            func(v *view) any { return activity(v) },
	"isFinished":              func(v *view) any { return false }, // no seed ratio or idle limits: never "finished"
	"isStalled":               func(v *view) any { return false },
	"isPrivate":               func(v *view) any { return v.st.Private },
	"magnetLink":              func(v *view) any { return v.st.Magnet },
	"metadataPercentComplete": func(v *view) any { return metadataDone(v) },
	"queuePosition":           func(v *view) any { return v.queue },
	"recheckProgress":         func(v *view) any { return recheck(v.st) },
	"pieceCount":              func(v *view) any { return v.st.Pieces },
	"pieceSize": func(v *view) any {
		if m := v.metaInfo(); m != nil {
			return m.PieceLength
		}
		return int64(0)
	},
	"pieces": func(v *view) any { return base64.StdEncoding.EncodeToString(v.t.Have()) },
	"comment": func(v *view) any {
		if m := v.metaInfo(); m != nil {
			return m.Comment
		}
		return ""
	},
	"creator": func(v *view) any {
		if m := v.metaInfo(); m != nil {
			return m.CreatedBy
		}
		return ""
	},
	"dateCreated": func(v *view) any {
		if m := v.metaInfo(); m != nil {
			return m.CreationDate
		}
		return int64(0)
	},
	"webseeds": func(v *view) any {
		if m := v.metaInfo(); m != nil && m.URLList != nil {
			return m.URLList
		}
		return []string{}
	},
	"fileCount":           func(v *view) any { return len(v.fileList()) },
	"files":               files,
	"fileStats":           fileStats,
	"priorities":          func(v *view) any { return repeat(len(v.fileList()), 0) },
	"wanted":              func(v *view) any { return repeat(len(v.fileList()), 1) },
	"trackers":            trackers,
	"trackerStats":        trackers,
	"labels":              func(v *view) any { return []string{} },
	"bandwidthPriority":   func(v *view) any { return 0 },
	"honorsSessionLimits": func(v *view) any { return true },
	"uploadLimit":         func(v *view) any { return v.s.limitsOf(v.st).upKB },
	"uploadLimited":       func(v *view) any { return v.st.UploadLimit > 0 },
	"downloadLimit":       func(v *view) any { return v.s.limitsOf(v.st).downKB },
	"downloadLimited":     func(v *view) any { return v.st.DownloadLimit > 0 },
	// No seeding limits: Transmission's "unlimited" modes.
	"seedRatioMode":  func(v *view) any { return 2 },
	"seedRatioLimit": func(v *view) any { return 0 },
	"seedIdleMode":   func(v *view) any { return 2 },
	"seedIdleLimit":  func(v *view) any { return 0 },
}

func statusOf(st session.Status) int {
	switch st.State {
	case session.StateChecking:
		return statusCheck
	case session.StateMetadata, session.StateDownloading:
		return statusDownload
	case session.StateSeeding:
		return statusSeed
	}
	return statusStopped // stopped, or stopped by an error
}

func errorOf(st session.Status) int {
	if st.Error != "" {
		return errorLocal
	}
	return errorNone
}

func fraction(a, b int64) float64 {
	if b <= 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// ratio is Transmission's: uploaded over downloaded, or over what is had
// when nothing was downloaded (a seeder from the start).
func ratio(st session.Status) float64 {
	base := st.DownloadedEver
	if base == 0 {
		base = st.Done
	}
	if base == 0 {
		return ratioNA
	}
	return float64(st.UploadedEver) / float64(base)
}

func eta(st session.Status) int64 {
	if st.State != session.StateDownloading {
		return etaNotAvailable
	}
	if st.DownRate < 1 {
		return etaUnknown
	}
	return int64(float64(st.Size-st.Done) / st.DownRate)
}

func unix(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

// activity is now while data moves, otherwise the latest date btclient knows.
func activity(v *view) int64 {
	if v.st.DownRate > 0 || v.st.UpRate > 0 {
		return v.now.Unix()
	}
	return max(unix(v.st.StartedAt), unix(v.st.DoneAt), unix(v.st.AddedAt))
}

func metadataDone(v *view) float64 {
	if v.st.Size > 0 || v.metaInfo() != nil {
		return 1
	}
	if v.st.MetadataPieces > 0 {
		return float64(v.st.MetadataHave) / float64(v.st.MetadataPieces)
	}
	return 0
}

func recheck(st session.Status) float64 {
	if st.State != session.StateChecking || st.Pieces == 0 {
		return 0
	}
	return float64(st.Hashed) / float64(st.Pieces)
}

func repeat(n, x int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = x
	}
	return out
}

func files(v *view) any {
	out := make([]map[string]any, 0, len(v.fileList()))
	for _, f := range v.fileList() {
		out = append(out, map[string]any{"name": f.Path, "length": f.Length, "bytesCompleted": f.Done})
	}
	return out
}

func fileStats(v *view) any {
	out := make([]map[string]any, 0, len(v.fileList()))
	for _, f := range v.fileList() {
		out = append(out, map[string]any{"bytesCompleted": f.Done, "wanted": true, "priority": 0})
	}
	return out
}

// trackers lists the torrent's trackers by tier. btclient keeps no
// per-tracker counters, so trackerStats carries these same fields.
func trackers(v *view) any {
	out := []map[string]any{}
	add := func(tier int, announce string) {
		host := announce
		if u, err := url.Parse(announce); err == nil && u.Host != "" {
			host = u.Host
		}
		out = append(out, map[string]any{
			"id": len(out), "tier": tier, "announce": announce, "scrape": scrapeURL(announce),
			"host": host, "sitename": siteName(host),
		})
	}
	if m := v.metaInfo(); m != nil {
		for tier, urls := range m.Trackers() {
			for _, u := range urls {
				add(tier, u)
			}
		}
		return out
	}
	for i, u := range v.st.Trackers {
		add(i, u)
	}
	return out
}

// scrapeURL is the BEP 48 convention: "announce" in the last path segment
// becomes "scrape"; "" when the URL does not follow it.
func scrapeURL(announce string) string {
	i := strings.LastIndex(announce, "/")
	if i < 0 || !strings.HasPrefix(announce[i+1:], "announce") {
		return ""
	}
	return announce[:i+1] + "scrape" + announce[i+1+len("announce"):]
}

func siteName(host string) string {
	if h, _, ok := strings.Cut(host, ":"); ok {
		host = h
	}
	parts := strings.Split(host, ".")
	if len(parts) >= 2 {
		return parts[len(parts)-2]
	}
	return host
}

// torrentGet answers torrent-get: the fields asked of the torrents asked,
// as objects or (format "table") as rows under a row of keys.
func (s *Server) torrentGet(a args) (any, error) {
	fields, ok, err := a.strings("fields")
	if err != nil {
		return nil, err
	}
	if !ok || len(fields) == 0 {
		return nil, errors.New("no fields specified")
	}
	format, _, err := a.str("format")
	if err != nil {
		return nil, err
	}
	if format != "" && format != "objects" && format != "table" {
		return nil, fmt.Errorf("format %q is neither objects nor table", truncate(format, 40))
	}
	sel, err := a.ids()
	if err != nil {
		return nil, err
	}
	known := make([]string, 0, len(fields))
	seen := map[string]bool{}
	for _, f := range fields {
		if torrentFields[f] != nil && !seen[f] {
			known = append(known, f)
			seen[f] = true
		}
	}
	all := s.sess.List()
	queue := make(map[int]int, len(all))
	for i, t := range all {
		queue[t.ID()] = i
	}
	now := time.Now()
	var rows []any
	if format == "table" {
		rows = append(rows, known)
	}
	for _, t := range s.selectTorrents(sel) {
		v := &view{s: s, t: t, st: t.Status(), now: now, queue: queue[t.ID()]}
		if format == "table" {
			row := make([]any, len(known))
			for i, f := range known {
				row[i] = torrentFields[f](v)
			}
			rows = append(rows, row)
			continue
		}
		obj := make(map[string]any, len(known))
		for _, f := range known {
			obj[f] = torrentFields[f](v)
		}
		rows = append(rows, obj)
	}
	if rows == nil {
		rows = []any{}
	}
	out := map[string]any{"torrents": rows}
	if sel.recentlyActive {
		out["removed"] = s.recentlyRemoved()
	}
	return out, nil
}
