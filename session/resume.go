package session

import (
	"os"
	"path/filepath"

	"btclient/peerwire"
	"btclient/torrent"
)

// resume is which pieces were verified, and the size and modification time
// of every file when that was so. At the next start the pieces are trusted
// only if every file still has that size and time: a file changed behind
// btclient's back, or written after the save (a crash mid-download), makes
// the whole torrent checked again.
type resume struct {
	Pieces   int         `json:"pieces"`
	Verified []byte      `json:"verified"` // a bitfield
	Files    []fileStamp `json:"files"`
}

type fileStamp struct {
	Path  string `json:"path"`
	Size  int64  `json:"size"`
	MTime int64  `json:"mtime_ns"`
}

// stampFiles records the size and modification time of m's files below dir;
// ok is false if one cannot be read.
func stampFiles(dir string, m *torrent.MetaInfo) ([]fileStamp, bool) {
	stamps := make([]fileStamp, 0, len(m.Files))
	for _, f := range m.Files {
		p := m.FilePath(f)
		fi, err := os.Stat(filepath.Join(dir, p))
		if err != nil {
			return nil, false
		}
		stamps = append(stamps, fileStamp{Path: p, Size: fi.Size(), MTime: fi.ModTime().UnixNano()})
	}
	return stamps, true
}

// makeResume returns resume data for the verified pieces have, nil when the
// files cannot all be stamped.
func makeResume(dir string, m *torrent.MetaInfo, have peerwire.Bitfield) *resume {
	stamps, ok := stampFiles(dir, m)
	if !ok || have == nil {
		return nil
	}
	return &resume{Pieces: m.NumPieces(), Verified: append([]byte(nil), have...), Files: stamps}
}

// trusted returns the verified pieces of r if the files below dir are as
// they were when r was saved, nil otherwise.
func (r *resume) trusted(dir string, m *torrent.MetaInfo) peerwire.Bitfield {
	if r == nil || r.Pieces != m.NumPieces() || len(r.Files) != len(m.Files) {
		return nil
	}
	bf, err := peerwire.ParseBitfield(r.Verified, m.NumPieces())
	if err != nil {
		return nil
	}
	now, ok := stampFiles(dir, m)
	if !ok {
		return nil
	}
	for i, s := range now {
		if s != r.Files[i] {
			return nil
		}
	}
	return bf
}
