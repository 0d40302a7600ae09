// Package storage keeps a torrent's bytes on disk: it maps offsets in the
// torrent's concatenated data onto one or many files and reads and writes
// them positionally, so no lock is held across I/O and nothing is buffered.
package storage

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// PieceStore hides where a torrent's bytes live. Offsets are in the torrent's
// concatenated data. Implementations are safe for concurrent use.
type PieceStore interface {
	io.ReaderAt
	io.WriterAt
	Sync() error
	Close() error
}

// FileSpec is one file of the layout: where it goes and which bytes of the
// torrent it holds.
type FileSpec struct {
	Path   string // relative to the download directory
	Offset int64
	Length int64
}

// Disk is a PieceStore over regular files under a directory.
type Disk struct {
	files    []diskFile
	total    int64
	readOnly bool
}

type diskFile struct {
	FileSpec
	f *os.File // nil for zero-length files
}

// ErrReadOnly reports a write to a store whose files could only be opened for reading.
var ErrReadOnly = errors.New("storage: files are read-only")

// OpenDisk opens (creating where missing) every file of the layout under dir.
// Paths must be relative and stay inside dir; files that cannot be opened for
// writing are opened read-only, which is enough to seed them.
func OpenDisk(dir string, layout []FileSpec) (*Disk, error) {
	d := &Disk{}
	var off int64
	for _, fs := range layout {
		if fs.Offset != off || fs.Length < 0 {
			d.Close()
			return nil, fmt.Errorf("storage: file %s is not contiguous in the layout", fs.Path)
		}
		off += fs.Length
		full, err := inside(dir, fs.Path)
		if err != nil {
			d.Close()
			return nil, err
		}
		f, ro, err := openFile(full)
		if err != nil {
			d.Close()
			return nil, err
		}
		d.readOnly = d.readOnly || ro
		if fs.Length == 0 {
			f.Close()
			f = nil
		}
		d.files = append(d.files, diskFile{FileSpec: fs, f: f})
	}
	d.total = off
	return d, nil
}

// inside joins dir and rel and refuses any result outside dir.
func inside(dir, rel string) (string, error) {
	if rel == "" || filepath.IsAbs(rel) {
		return "", fmt.Errorf("storage: path %q is not relative", rel)
	}
	clean := filepath.Clean(rel)
	if clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("storage: path %q leaves the download directory", rel)
	}
	return filepath.Join(dir, clean), nil
}

func openFile(path string) (*os.File, bool, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		if _, statErr := os.Stat(path); statErr != nil {
			return nil, false, fmt.Errorf("storage: %w", err)
		}
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err == nil {
		return f, false, nil
	}
	if !errors.Is(err, os.ErrPermission) && !isReadOnlyFS(err) {
		return nil, false, fmt.Errorf("storage: %w", err)
	}
	ro, rerr := os.Open(path)
	if rerr != nil {
		return nil, false, fmt.Errorf("storage: %w", err)
	}
	return ro, true, nil
}

// ReadOnly reports whether some file could only be opened for reading.
func (d *Disk) ReadOnly() bool { return d.readOnly }

// Size is the torrent's total length.
func (d *Disk) Size() int64 { return d.total }

// span calls fn for each file section that [off, off+n) covers.
func (d *Disk) span(off int64, n int, fn func(f *diskFile, fileOff int64, lo, hi int) error) error {
	if off < 0 || off+int64(n) > d.total {
		return fmt.Errorf("storage: range [%d,%d) outside the torrent (%d bytes)", off, off+int64(n), d.total)
	}
	i := sort.Search(len(d.files), func(i int) bool { return d.files[i].Offset+d.files[i].Length > off })
	done := 0
	for ; done < n && i < len(d.files); i++ {
		f := &d.files[i]
		if f.Length == 0 {
			continue
		}
		fileOff := off + int64(done) - f.Offset
		k := int(min(int64(n-done), f.Length-fileOff))
		if err := fn(f, fileOff, done, done+k); err != nil {
			return err
		}
		done += k
	}
	return nil
}

// ReadAt reads len(p) bytes at off. Bytes past the end of a short file
// (never written) are an io.ErrUnexpectedEOF.
func (d *Disk) ReadAt(p []byte, off int64) (int, error) {
	n := 0
	err := d.span(off, len(p), func(f *diskFile, fileOff int64, lo, hi int) error {
		k, err := f.f.ReadAt(p[lo:hi], fileOff)
		n += k
		if err == io.EOF {
			return io.ErrUnexpectedEOF
		}
		if err != nil {
			return fmt.Errorf("storage: read %s: %w", f.Path, err)
		}
		return nil
	})
	return n, err
}

// WriteAt writes p at off, across file boundaries as needed.
func (d *Disk) WriteAt(p []byte, off int64) (int, error) {
	n := 0
	err := d.span(off, len(p), func(f *diskFile, fileOff int64, lo, hi int) error {
		k, err := f.f.WriteAt(p[lo:hi], fileOff)
		n += k
		if err != nil {
			if errors.Is(err, os.ErrPermission) || errors.Is(err, os.ErrInvalid) || isBadFD(err) {
				return fmt.Errorf("storage: write %s: %w", f.Path, ErrReadOnly)
			}
			return fmt.Errorf("storage: write %s: %w", f.Path, err)
		}
		return nil
	})
	return n, err
}

// Sync flushes every file to stable storage.
func (d *Disk) Sync() error {
	var errs []error
	for _, f := range d.files {
		if f.f != nil {
			if err := f.f.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
				errs = append(errs, fmt.Errorf("storage: sync %s: %w", f.Path, err))
			}
		}
	}
	return errors.Join(errs...)
}

// Close closes every file.
func (d *Disk) Close() error {
	var errs []error
	for i := range d.files {
		if f := d.files[i].f; f != nil {
			if err := f.Close(); err != nil {
				errs = append(errs, err)
			}
			d.files[i].f = nil
		}
	}
	return errors.Join(errs...)
}
