package session

import (
	"btclient/internal/atomicfile"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"btclient/torrent"
)

// The state directory:
//
//	session.json             the session's settings and the next torrent id
//	torrents/<hash>.json     one torrent: id, where its data is, counters, resume data
//	torrents/<hash>.torrent  its metainfo, once known (a magnet's is fetched)
//
// Every file is written whole to a temporary file, synced and renamed over
// the old one, so a crash leaves the old version or the new, never half.

// record is what the state directory keeps of one torrent.
type record struct {
	ID          int    `json:"id"`
	InfoHash    string `json:"info_hash"`
	Magnet      string `json:"magnet,omitempty"` // what started it, while no metainfo is saved
	DownloadDir string `json:"download_dir"`
	Paused      bool   `json:"paused"`
	AddedAt     int64  `json:"added_at"`
	DoneAt      int64  `json:"done_at,omitempty"`
	// UploadedEver and DownloadedEver count payload over every run.
	UploadedEver   int64   `json:"uploaded_ever"`
	DownloadedEver int64   `json:"downloaded_ever"`
	UploadLimit    int64   `json:"upload_limit,omitempty"`
	DownloadLimit  int64   `json:"download_limit,omitempty"`
	Resume         *resume `json:"resume,omitempty"`
}

// settings are the session-wide values kept across runs.
type settings struct {
	NextID       int   `json:"next_id"`
	UploadRate   int64 `json:"upload_rate,omitempty"`
	DownloadRate int64 `json:"download_rate,omitempty"`
}

// stateDir reads and writes the state directory; a zero stateDir keeps nothing.
type stateDir struct{ dir string }

func (d stateDir) enabled() bool { return d.dir != "" }

func (d stateDir) torrentPath(ih [20]byte, ext string) string {
	return filepath.Join(d.dir, "torrents", hex.EncodeToString(ih[:])+ext)
}

func (d stateDir) init() error {
	if !d.enabled() {
		return nil
	}
	if err := os.MkdirAll(filepath.Join(d.dir, "torrents"), 0o700); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	return nil
}

func (d stateDir) loadSettings() (settings, error) {
	var s settings
	if !d.enabled() {
		return s, nil
	}
	data, err := os.ReadFile(filepath.Join(d.dir, "session.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err == nil {
		err = json.Unmarshal(data, &s)
	}
	if err != nil {
		return s, fmt.Errorf("state: session.json: %w", err)
	}
	return s, nil
}

func (d stateDir) saveSettings(s settings) error {
	if !d.enabled() {
		return nil
	}
	data, _ := json.MarshalIndent(s, "", "  ")
	return writeAtomic(filepath.Join(d.dir, "session.json"), data)
}

func (d stateDir) saveRecord(ih [20]byte, r record) error {
	if !d.enabled() {
		return nil
	}
	data, _ := json.MarshalIndent(r, "", "  ")
	return writeAtomic(d.torrentPath(ih, ".json"), data)
}

func (d stateDir) saveMeta(m *torrent.MetaInfo) error {
	if !d.enabled() {
		return nil
	}
	data, err := m.Encode()
	if err != nil {
		return err
	}
	return writeAtomic(d.torrentPath(m.InfoHash, ".torrent"), data)
}

// loadMeta returns the saved metainfo of ih, nil if there is none.
func (d stateDir) loadMeta(ih [20]byte) (*torrent.MetaInfo, error) {
	if !d.enabled() {
		return nil, nil
	}
	m, err := torrent.Load(d.torrentPath(ih, ".torrent"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if m.InfoHash != ih {
		return nil, fmt.Errorf("state: %s holds another torrent", d.torrentPath(ih, ".torrent"))
	}
	return m, nil
}

// loadRecord returns the saved record of ih, ok false if there is none
// (or it cannot be read: the torrent then starts afresh).
func (d stateDir) loadRecord(ih [20]byte) (record, bool) {
	var r record
	if !d.enabled() {
		return r, false
	}
	data, err := os.ReadFile(d.torrentPath(ih, ".json"))
	if err != nil || json.Unmarshal(data, &r) != nil || r.InfoHash != hex.EncodeToString(ih[:]) {
		return record{}, false
	}
	return r, true
}

// loadRecords returns every saved torrent record, skipping (and reporting)
// those that cannot be read.
func (d stateDir) loadRecords() ([]record, []error) {
	entries, err := os.ReadDir(filepath.Join(d.dir, "torrents"))
	if err != nil {
		return nil, []error{fmt.Errorf("state: %w", err)}
	}
	var out []record
	var errs []error
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".json") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(d.dir, "torrents", name))
		var r record
		if err == nil {
			err = json.Unmarshal(data, &r)
		}
		if err == nil && r.InfoHash+".json" != name {
			err = errors.New("info hash does not match the file name")
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("state: %s: %w", name, err))
			continue
		}
		out = append(out, r)
	}
	return out, errs
}

func (d stateDir) remove(ih [20]byte) error {
	if !d.enabled() {
		return nil
	}
	var errs []error
	for _, ext := range []string{".json", ".torrent"} {
		if err := os.Remove(d.torrentPath(ih, ext)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// writeAtomic replaces a state file (private to its user).
func writeAtomic(path string, data []byte) error {
	if err := atomicfile.Write(path, data, 0o600); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	return nil
}
