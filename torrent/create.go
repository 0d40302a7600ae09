package torrent

import (
	"context"
	"crypto/sha1"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"btclient/bencode"
)

// Bounds of the piece length Create chooses by itself.
const (
	minAutoPieceLength = 16 << 10
	maxAutoPieceLength = 16 << 20
	targetPieces       = 2000
)

// CreateOptions tunes Create. The zero value is valid.
type CreateOptions struct {
	// PieceLength is the piece size in bytes; 0 chooses a power of two
	// between 16 KiB and 16 MiB that gives about 1000-2000 pieces.
	PieceLength int64
	// Announce is the tracker URL; when empty, the first URL of
	// AnnounceList is used.
	Announce string
	// AnnounceList holds tracker tiers (BEP 12); nil for none.
	AnnounceList [][]string
	// Comment is a free-form comment.
	Comment string
	// CreatedBy names the creating program; "btclient" when empty.
	CreatedBy string
	// Private sets the BEP 27 private flag.
	Private bool
	// SkipHidden leaves out the files and directories inside a directory
	// whose names start with a dot.
	SkipHidden bool
}

// Create makes a torrent of the file or directory at path. A directory's
// regular files are included in lexical order, recursively; anything that is
// not a regular file (symbolic links, devices, sockets) is skipped. It
// returns the bencoded .torrent bytes and their parsed MetaInfo.
func Create(path string, opt CreateOptions) ([]byte, *MetaInfo, error) {
	return CreateContext(context.Background(), path, opt)
}

// CreateContext is Create that stops hashing, with ctx's error, once ctx is
// done: a big folder can take minutes.
func CreateContext(ctx context.Context, path string, opt CreateOptions) ([]byte, *MetaInfo, error) {
	data, m, err := create(ctx, path, opt)
	if err != nil {
		return nil, nil, fmt.Errorf("torrent: create %s: %w", path, err)
	}
	return data, m, nil
}

// encodedFile is one entry of "files" as written by Create.
type encodedFile struct {
	Length int64    `bencode:"length"`
	Path   []string `bencode:"path"`
}

// encodedInfo is the info dictionary as written by Create.
type encodedInfo struct {
	Files       []encodedFile `bencode:"files,omitempty"`
	Length      int64         `bencode:"length,omitempty"`
	Name        string        `bencode:"name"`
	PieceLength int64         `bencode:"piece length"`
	Pieces      string        `bencode:"pieces"`
	Private     int64         `bencode:"private,omitempty"`
}

// encodedTorrent is the top-level dictionary as written by Create.
type encodedTorrent struct {
	Announce     string      `bencode:"announce,omitempty"`
	AnnounceList [][]string  `bencode:"announce-list,omitempty"`
	Comment      string      `bencode:"comment,omitempty"`
	CreatedBy    string      `bencode:"created by,omitempty"`
	CreationDate int64       `bencode:"creation date,omitempty"`
	Info         encodedInfo `bencode:"info"`
}

func create(ctx context.Context, path string, opt CreateOptions) ([]byte, *MetaInfo, error) {
	if opt.PieceLength < 0 || opt.PieceLength > MaxPieceLength {
		return nil, nil, errorf(ErrInvalid, "piece length %d outside 1…%d", opt.PieceLength, MaxPieceLength)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, nil, err
	}
	name := filepath.Base(abs)
	if err := checkPath([]string{name}); err != nil {
		return nil, nil, fmt.Errorf("name: %w", err)
	}
	st, err := os.Stat(abs)
	if err != nil {
		return nil, nil, err
	}
	var (
		files []File
		root  string // directory the file paths are relative to
		multi bool
	)
	switch {
	case st.Mode().IsRegular():
		files = []File{{Path: []string{name}, Length: st.Size()}}
		root = filepath.Dir(abs)
	case st.IsDir():
		// Walk the resolved directory: a symbolic link given on the command
		// line is followed, those inside the tree are not.
		if root, err = filepath.EvalSymlinks(abs); err != nil {
			return nil, nil, err
		}
		if files, err = listFiles(root, opt.SkipHidden); err != nil {
			return nil, nil, err
		}
		multi = true
	default:
		return nil, nil, errorf(ErrEmpty, "not a regular file or directory")
	}
	var total int64
	for i := range files {
		files[i].Offset = total
		total += files[i].Length
	}
	if total == 0 {
		return nil, nil, errorf(ErrEmpty, "no content: total size is 0")
	}

	pieceLength := opt.PieceLength
	if pieceLength == 0 {
		pieceLength = choosePieceLength(total)
	}
	hashes, err := hashFiles(ctx, root, files, pieceLength)
	if err != nil {
		return nil, nil, err
	}

	t := encodedTorrent{
		Announce:     opt.Announce,
		AnnounceList: opt.AnnounceList,
		Comment:      opt.Comment,
		CreatedBy:    opt.CreatedBy,
		CreationDate: time.Now().Unix(),
		Info: encodedInfo{
			Name:        name,
			PieceLength: pieceLength,
			Pieces:      hashes,
		},
	}
	if t.Announce == "" && len(opt.AnnounceList) > 0 && len(opt.AnnounceList[0]) > 0 {
		t.Announce = opt.AnnounceList[0][0]
	}
	if t.CreatedBy == "" {
		t.CreatedBy = "btclient"
	}
	if opt.Private {
		t.Info.Private = 1
	}
	if multi {
		for _, f := range files {
			t.Info.Files = append(t.Info.Files, encodedFile{Length: f.Length, Path: f.Path})
		}
	} else {
		t.Info.Length = total
	}
	data, err := bencode.Marshal(t)
	if err != nil {
		return nil, nil, fmt.Errorf("encode: %w", err)
	}
	m, err := parse(data)
	if err != nil {
		return nil, nil, fmt.Errorf("created torrent does not parse: %w", err)
	}
	return data, m, nil
}

// listFiles returns the regular files below root in lexical order, with
// their paths relative to root; skipHidden leaves out dot-names below root.
func listFiles(root string, skipHidden bool) ([]File, error) {
	var files []File
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if skipHidden && p != root && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		path := strings.Split(rel, string(filepath.Separator))
		if err := checkPath(path); err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		files = append(files, File{Path: path, Length: info.Size()})
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, errorf(ErrEmpty, "directory holds no regular files")
	}
	return files, nil
}

// choosePieceLength returns the smallest power of two between 16 KiB and
// 16 MiB that splits total into at most targetPieces pieces.
func choosePieceLength(total int64) int64 {
	n := int64(minAutoPieceLength)
	for n < maxAutoPieceLength && (total+n-1)/n > targetPieces {
		n *= 2
	}
	return n
}

// hashFiles reads files, which live below root, as one stream and returns
// the concatenated SHA-1 of each piece. It holds one piece in memory.
func hashFiles(ctx context.Context, root string, files []File, pieceLength int64) (string, error) {
	var (
		hashes strings.Builder
		buf    = make([]byte, pieceLength)
		fill   int64
	)
	for _, f := range files {
		if err := readInto(ctx, filepath.Join(root, filepath.Join(f.Path...)), f.Length, buf, &fill, &hashes); err != nil {
			return "", err
		}
	}
	if fill > 0 {
		sum := sha1.Sum(buf[:fill])
		hashes.Write(sum[:])
	}
	return hashes.String(), nil
}

// readInto reads length bytes of the file at path into buf after *fill,
// hashing buf into hashes each time it is full.
func readInto(ctx context.Context, path string, length int64, buf []byte, fill *int64, hashes *strings.Builder) error {
	fh, err := os.Open(path)
	if err != nil {
		return err
	}
	defer fh.Close()
	for remaining := length; remaining > 0; {
		n := min(int64(len(buf))-*fill, remaining)
		if _, err := io.ReadFull(fh, buf[*fill:*fill+n]); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return fmt.Errorf("%s: file shrank while being read", path)
			}
			return err
		}
		*fill += n
		remaining -= n
		if *fill == int64(len(buf)) {
			if err := ctx.Err(); err != nil {
				return err
			}
			sum := sha1.Sum(buf)
			hashes.Write(sum[:])
			*fill = 0
		}
	}
	return nil
}
