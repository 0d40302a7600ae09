// Package torrent parses and creates .torrent metainfo files (BEP 3): what a
// torrent contains, how its data splits into pieces, and its info hash.
package torrent

import (
	"bytes"
	"crypto/sha1"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"

	"btclient/bencode"
)

// Size limits that keep hostile torrents from exhausting memory.
const (
	// MaxTorrentSize is the largest .torrent file Parse and Load accept.
	MaxTorrentSize = 16 << 20
	// MaxPieceLength is the largest piece length Parse accepts: a client
	// holds whole pieces in memory to hash them.
	MaxPieceLength = 256 << 20
)

// File is one file of a torrent.
type File struct {
	// Path holds the path components below the torrent's directory; for a
	// single-file torrent it is []string{Name}.
	Path []string
	// Length is the file's size in bytes.
	Length int64
	// Offset is the offset of the file's first byte in the torrent's
	// concatenated data.
	Offset int64
}

// MetaInfo is a parsed .torrent file.
type MetaInfo struct {
	Announce     string     // tracker URL ("announce")
	AnnounceList [][]string // tracker tiers (BEP 12 "announce-list"), empty tiers dropped
	Name         string     // file name, or directory name for a multi-file torrent
	PieceLength  int64      // bytes per piece; the last piece may be shorter
	Pieces       [][20]byte // SHA-1 of every piece
	Files        []File     // always at least one
	MultiFile    bool       // the info dict had "files": content lives under directory Name
	Private      bool       // BEP 27: peers come from trackers only
	URLList      []string   // BEP 19 web seeds ("url-list")
	Comment      string
	CreatedBy    string
	CreationDate int64    // Unix seconds, 0 when absent
	InfoHash     [20]byte // SHA-1 of the raw info dictionary
	TotalLength  int64    // sum of the file lengths
	// InfoBytes is the info dictionary exactly as it was encoded: what
	// BEP 9 serves to peers that start from a magnet link.
	InfoBytes []byte
}

// Parse decodes and validates a .torrent file. The info hash is the SHA-1
// of the info dictionary's bytes exactly as they stand in data.
func Parse(data []byte) (*MetaInfo, error) {
	m, err := parse(data)
	if err != nil {
		return nil, fmt.Errorf("torrent: %w", err)
	}
	return m, nil
}

// Load reads and parses the .torrent file at path, refusing files larger
// than MaxTorrentSize. Errors name the path.
func Load(path string) (*MetaInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("torrent: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxTorrentSize+1))
	if err != nil {
		return nil, fmt.Errorf("torrent: %w", err) // os errors name the path
	}
	m, err := parse(data)
	if err != nil {
		return nil, fmt.Errorf("torrent: %s: %w", path, err)
	}
	return m, nil
}

// NumPieces returns the number of pieces.
func (m *MetaInfo) NumPieces() int { return len(m.Pieces) }

// PieceSize returns the length of piece i: PieceLength for all but the
// last piece, which holds what remains. It returns 0 for an i out of range.
func (m *MetaInfo) PieceSize(i int) int64 {
	if i < 0 || i >= len(m.Pieces) {
		return 0
	}
	if i == len(m.Pieces)-1 {
		return m.TotalLength - int64(i)*m.PieceLength
	}
	return m.PieceLength
}

// FilePath returns f's path relative to the download directory, in OS
// form: Name for a single-file torrent, Name/a/b for a multi-file one.
func (m *MetaInfo) FilePath(f File) string {
	if !m.MultiFile {
		return filepath.Join(f.Path...)
	}
	return filepath.Join(append([]string{m.Name}, f.Path...)...)
}

// Trackers returns the tracker tiers to try in order: the announce-list
// tiers when there are any, else [[Announce]], else nothing. The result is
// a copy the caller may change.
func (m *MetaInfo) Trackers() [][]string {
	if len(m.AnnounceList) > 0 {
		tiers := make([][]string, len(m.AnnounceList))
		for i, t := range m.AnnounceList {
			tiers[i] = append([]string(nil), t...)
		}
		return tiers
	}
	if m.Announce != "" {
		return [][]string{{m.Announce}}
	}
	return nil
}

// parse does the work of Parse, returning errors without the package prefix.
func parse(data []byte) (*MetaInfo, error) {
	if len(data) > MaxTorrentSize {
		return nil, errorf(ErrTooLarge, "more than %d bytes", MaxTorrentSize)
	}
	rawInfo, ok, err := bencode.Field(data, "info")
	if err != nil {
		return nil, errorf(ErrSyntax, "%v", err)
	}
	if !ok {
		return nil, errorf(ErrInvalid, "missing info dictionary")
	}
	v, err := bencode.Decode(data)
	if err != nil {
		return nil, errorf(ErrSyntax, "%v", err)
	}
	top := v.(map[string]any) // Field checked that data is a dictionary
	info, ok := top["info"].(map[string]any)
	if !ok {
		return nil, errorf(ErrInvalid, "info is not a dictionary")
	}
	m := &MetaInfo{InfoHash: sha1.Sum(rawInfo), InfoBytes: bytes.Clone(rawInfo)}
	if err := m.parseInfo(info); err != nil {
		return nil, fmt.Errorf("info: %w", err)
	}
	m.parseOuter(top)
	return m, nil
}

// parseOuter reads the optional fields outside the info dictionary. They do
// not change what is downloaded, so ill-typed values are ignored, as other
// clients do.
func (m *MetaInfo) parseOuter(top map[string]any) {
	m.Announce, _ = top["announce"].(string)
	m.Comment, _ = top["comment"].(string)
	if s, ok := top["comment.utf-8"].(string); ok {
		m.Comment = s
	}
	m.CreatedBy, _ = top["created by"].(string)
	m.CreationDate, _ = top["creation date"].(int64)
	if tiers, ok := top["announce-list"].([]any); ok {
		for _, t := range tiers {
			if tier := stringList(t); len(tier) > 0 {
				m.AnnounceList = append(m.AnnounceList, tier)
			}
		}
	}
	switch u := top["url-list"].(type) {
	case string:
		if u != "" {
			m.URLList = []string{u}
		}
	case []any:
		m.URLList = stringList(u)
	}
}

// stringList returns the non-empty strings of a bencoded list.
func stringList(v any) []string {
	list, _ := v.([]any)
	var out []string
	for _, e := range list {
		if s, ok := e.(string); ok && s != "" {
			out = append(out, s)
		}
	}
	return out
}

// parseInfo reads and validates the info dictionary.
func (m *MetaInfo) parseInfo(info map[string]any) error {
	name, err := utf8String(info, "name")
	if err != nil {
		return err
	}
	if err := checkPath([]string{name}); err != nil {
		return fmt.Errorf("name: %w", err)
	}
	m.Name = name

	m.PieceLength, err = requiredInt(info, "piece length")
	if err != nil {
		return err
	}
	if m.PieceLength <= 0 || m.PieceLength > MaxPieceLength {
		return errorf(ErrInvalid, "piece length %d outside 1…%d", m.PieceLength, MaxPieceLength)
	}

	pieces, ok := info["pieces"]
	if !ok {
		return errorf(ErrInvalid, "missing pieces")
	}
	hashes, ok := pieces.(string)
	if !ok {
		return errorf(ErrInvalid, "pieces is not a string")
	}
	if len(hashes)%20 != 0 {
		return errorf(ErrInvalid, "pieces is %d bytes, not a multiple of 20", len(hashes))
	}
	m.Pieces = make([][20]byte, len(hashes)/20)
	for i := range m.Pieces {
		copy(m.Pieces[i][:], hashes[i*20:])
	}

	if p, ok := info["private"].(int64); ok && p == 1 {
		m.Private = true
	}

	if err := m.parseFiles(info); err != nil {
		return err
	}
	if m.TotalLength == 0 {
		return errorf(ErrInvalid, "total length is 0: nothing to download")
	}
	want := m.TotalLength / m.PieceLength
	if m.TotalLength%m.PieceLength != 0 {
		want++
	}
	if int64(len(m.Pieces)) != want {
		return errorf(ErrInvalid, "%d piece hashes for %d bytes in pieces of %d (want %d)",
			len(m.Pieces), m.TotalLength, m.PieceLength, want)
	}
	return nil
}

// parseFiles reads either "length" (one file) or "files" (many) and sets
// Files, MultiFile and TotalLength.
func (m *MetaInfo) parseFiles(info map[string]any) error {
	length, hasLength := info["length"]
	files, hasFiles := info["files"]
	switch {
	case hasLength && hasFiles:
		return errorf(ErrInvalid, "both length and files")
	case !hasLength && !hasFiles:
		return errorf(ErrInvalid, "missing length or files")
	case hasLength:
		n, ok := length.(int64)
		if !ok {
			return errorf(ErrInvalid, "length is not an integer")
		}
		if n < 0 {
			return errorf(ErrInvalid, "negative length %d", n)
		}
		m.Files = []File{{Path: []string{m.Name}, Length: n}}
		m.TotalLength = n
		return nil
	}
	list, ok := files.([]any)
	if !ok {
		return errorf(ErrInvalid, "files is not a list")
	}
	if len(list) == 0 {
		return errorf(ErrInvalid, "files is empty")
	}
	m.MultiFile = true
	m.Files = make([]File, 0, len(list))
	var offset int64
	for i, e := range list {
		f, err := parseFile(e)
		if err != nil {
			return fmt.Errorf("files[%d]: %w", i, err)
		}
		if f.Length > math.MaxInt64-offset {
			return errorf(ErrInvalid, "files[%d]: total length overflows", i)
		}
		f.Offset = offset
		offset += f.Length
		m.Files = append(m.Files, f)
	}
	m.TotalLength = offset
	return checkLayout(m.Files)
}

// parseFile reads one entry of "files".
func parseFile(v any) (File, error) {
	d, ok := v.(map[string]any)
	if !ok {
		return File{}, errorf(ErrInvalid, "not a dictionary")
	}
	n, err := requiredInt(d, "length")
	if err != nil {
		return File{}, err
	}
	if n < 0 {
		return File{}, errorf(ErrInvalid, "negative length %d", n)
	}
	path, err := pathList(d, "path.utf-8")
	if err != nil || path == nil {
		if path, err = pathList(d, "path"); err != nil {
			return File{}, err
		}
		if path == nil {
			return File{}, errorf(ErrInvalid, "missing path")
		}
	}
	if err := checkPath(path); err != nil {
		return File{}, fmt.Errorf("path: %w", err)
	}
	return File{Path: path, Length: n}, nil
}

// pathList returns d[key] as a list of strings, or nil when key is absent.
func pathList(d map[string]any, key string) ([]string, error) {
	v, ok := d[key]
	if !ok {
		return nil, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, errorf(ErrInvalid, "%s is not a list", key)
	}
	path := make([]string, len(list))
	for i, e := range list {
		if path[i], ok = e.(string); !ok {
			return nil, errorf(ErrInvalid, "%s[%d] is not a string", key, i)
		}
	}
	if len(path) == 0 {
		return nil, errorf(ErrUnsafePath, "%s is empty", key)
	}
	return path, nil
}

// utf8String returns d[key+".utf-8"] when it is a string, else d[key],
// which must be a string.
func utf8String(d map[string]any, key string) (string, error) {
	if s, ok := d[key+".utf-8"].(string); ok {
		return s, nil
	}
	v, ok := d[key]
	if !ok {
		return "", errorf(ErrInvalid, "missing %s", key)
	}
	s, ok := v.(string)
	if !ok {
		return "", errorf(ErrInvalid, "%s is not a string", key)
	}
	return s, nil
}

// requiredInt returns d[key], which must be an integer.
func requiredInt(d map[string]any, key string) (int64, error) {
	v, ok := d[key]
	if !ok {
		return 0, errorf(ErrInvalid, "missing %s", key)
	}
	n, ok := v.(int64)
	if !ok {
		return 0, errorf(ErrInvalid, "%s is not an integer", key)
	}
	return n, nil
}
