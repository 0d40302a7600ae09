// Package storage keeps a torrent's bytes on disk: it maps offsets in the
// torrent's concatenated data onto one or many files and reads and writes
// them positionally and buffers nothing. Reads take no lock; writes to one
// file are serialized (see diskFile.writeMu). What it brought into the page
// cache stays there up to a window; what was cached before it came, it
// leaves cached (see DefaultCacheWindow).
package storage

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// PieceStore hides where a torrent's bytes live. Offsets are in the torrent's
// concatenated data. Implementations are safe for concurrent use.
type PieceStore interface {
	io.ReaderAt
	io.WriterAt
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
	cache    cacheWindow
}

type diskFile struct {
	FileSpec
	f *os.File // nil for zero-length files
	// writeMu serializes writes to f. The kernel serializes them anyway
	// (ext4 holds the inode lock across a buffered write), but its waiters
	// spin on the other CPU; measured on 2 cores, that was 6–10 % of a
	// download's CPU. A parked goroutine costs nothing.
	writeMu *sync.Mutex
	// unstarted counts the bytes of small writes not yet handed to the
	// disk (see writebackBatch).
	unstarted *atomic.Int64
}

// ErrReadOnly reports a write to a store whose files could only be opened for reading.
var ErrReadOnly = errors.New("storage: files are read-only")

// OpenDisk opens (creating where missing) every file of the layout under dir.
// Paths must be relative and stay inside dir; files that cannot be opened for
// writing are opened read-only, which is enough to seed them. A writable
// file has its space reserved up front where the filesystem can, its size
// unchanged (see reserve).
func OpenDisk(dir string, layout []FileSpec) (*Disk, error) {
	d := &Disk{cache: cacheWindow{limit: DefaultCacheWindow}}
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
		} else if !ro {
			reserve(f, fs.Length)
		}
		if f != nil {
			setReadahead(f, false) // the window reads ahead itself
		}
		d.files = append(d.files, diskFile{FileSpec: fs, f: f, writeMu: new(sync.Mutex), unstarted: new(atomic.Int64)})
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

// setCacheWindow sets how many bytes of what d last read or wrote stay in
// the page cache (DefaultCacheWindow unless set); n <= 0 leaves it all to
// the kernel. Call it before d is used.
func (d *Disk) setCacheWindow(n int64) {
	d.cache.limit = n
	for i := range d.files {
		if f := d.files[i].f; f != nil {
			setReadahead(f, n <= 0)
		}
	}
}

// ReadOnly reports whether some file could only be opened for reading.
func (d *Disk) ReadOnly() bool { return d.readOnly }

// Size is the torrent's total length.
func (d *Disk) Size() int64 { return d.total }

// span calls fn for each file section that [off, off+n) covers.
func (d *Disk) span(off int64, n int, fn func(f *diskFile, fileOff int64, lo, hi int) error) error {
	if err := d.checkRange(off, n); err != nil {
		return err
	}
	i := d.fileAt(off)
	if i < 0 {
		return nil
	}
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

// checkRange refuses n bytes at off that do not lie inside the torrent.
func (d *Disk) checkRange(off int64, n int) error {
	if off < 0 || off+int64(n) > d.total {
		return fmt.Errorf("storage: range [%d,%d) outside the torrent (%d bytes)", off, off+int64(n), d.total)
	}
	return nil
}

// fileAt is the index of the file holding byte off, or -1 past the end.
func (d *Disk) fileAt(off int64) int {
	i := sort.Search(len(d.files), func(i int) bool { return d.files[i].Offset+d.files[i].Length > off })
	if i == len(d.files) {
		return -1
	}
	return i
}

// ReadAt reads len(p) bytes at off. Bytes past the end of a short file
// (never written) are an io.ErrUnexpectedEOF.
func (d *Disk) ReadAt(p []byte, off int64) (int, error) {
	n := 0
	err := d.span(off, len(p), func(f *diskFile, fileOff int64, lo, hi int) error {
		d.cache.touch(f, fileOff, int64(hi-lo), false)
		k, err := f.f.ReadAt(p[lo:hi], fileOff)
		n += k
		_ = d.cache.add(f, fileOff, int64(hi-lo), false)
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
		d.cache.touch(f, fileOff, int64(hi-lo), true)
		f.writeMu.Lock()
		k, err := f.f.WriteAt(p[lo:hi], fileOff)
		f.writeMu.Unlock()
		n += k
		return d.wrote(f, fileOff, hi-lo, err)
	})
	return n, err
}

// WriteBlocksAt writes blocks back to back at off: a piece assembled from
// network buffers goes to disk with one system call (pwritev) when it lies
// in one file, and block by block otherwise.
func (d *Disk) WriteBlocksAt(blocks [][]byte, off int64) (int, error) {
	size := 0
	for _, b := range blocks {
		size += len(b)
	}
	if err := d.checkRange(off, size); err != nil {
		return 0, err
	}
	if f := d.oneFile(off, size); f != nil {
		d.cache.touch(f, off-f.Offset, int64(size), true)
		f.writeMu.Lock()
		n, err := pwritev(f.f, blocks, off-f.Offset)
		f.writeMu.Unlock()
		return n, d.wrote(f, off-f.Offset, size, err)
	}
	n := 0
	for _, b := range blocks {
		k, err := d.WriteAt(b, off+int64(n))
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// oneFile is the open file holding all n bytes at off, or nil when they
// cross into another file.
func (d *Disk) oneFile(off int64, n int) *diskFile {
	if i := d.fileAt(off); i >= 0 {
		if f := &d.files[i]; f.f != nil && off+int64(n) <= f.Offset+f.Length {
			return f
		}
	}
	return nil
}

// wrote finishes a write of n bytes at off in f that returned err: the
// range joins the cache window, and a failed write gets its context.
func (d *Disk) wrote(f *diskFile, off int64, n int, err error) error {
	werr := d.cache.add(f, off, int64(n), true)
	if err != nil {
		return f.writeErr(err)
	}
	return werr
}

// writeErr gives a failed write its context; nil stays nil.
func (f *diskFile) writeErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, os.ErrPermission) || errors.Is(err, os.ErrInvalid) || isBadFD(err) {
		return fmt.Errorf("storage: write %s: %w", f.Path, ErrReadOnly)
	}
	return fmt.Errorf("storage: write %s: %w", f.Path, err)
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
