package storage

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestDiskMapsOffsetsAcrossFiles(t *testing.T) {
	dir := t.TempDir()
	layout := []FileSpec{
		{Path: "t/a", Offset: 0, Length: 5},
		{Path: "t/empty", Offset: 5, Length: 0},
		{Path: "t/sub/b", Offset: 5, Length: 3},
		{Path: "t/c", Offset: 8, Length: 10},
	}
	d, err := OpenDisk(dir, layout)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	data := []byte("0123456789abcdefgh")
	if _, err := d.WriteAt(data[3:12], 3); err != nil {
		t.Fatal(err)
	}
	if _, err := d.WriteAt(data[:3], 0); err != nil {
		t.Fatal(err)
	}
	if _, err := d.WriteAt(data[12:], 12); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(data))
	if _, err := d.ReadAt(got, 0); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("ReadAt = %q, %v; want %q", got, err, data)
	}
	for path, want := range map[string]string{"t/a": "01234", "t/sub/b": "567", "t/c": "89abcdefgh", "t/empty": ""} {
		b, err := os.ReadFile(filepath.Join(dir, path))
		if err != nil || string(b) != want {
			t.Errorf("%s = %q, %v; want %q", path, b, err, want)
		}
	}
}

func TestDiskRejects(t *testing.T) {
	tests := []struct {
		name   string
		layout []FileSpec
	}{
		{"a path that climbs out", []FileSpec{{Path: "../x", Length: 1}}},
		{"an absolute path", []FileSpec{{Path: "/etc/x", Length: 1}}},
		{"a gap in the layout", []FileSpec{{Path: "a", Length: 1}, {Path: "b", Offset: 2, Length: 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d, err := OpenDisk(t.TempDir(), tt.layout); err == nil {
				d.Close()
				t.Fatal("OpenDisk accepted it")
			}
		})
	}
}

func TestDiskReadOfUnwrittenRegionFails(t *testing.T) {
	d, err := OpenDisk(t.TempDir(), []FileSpec{{Path: "f", Length: 100}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.ReadAt(make([]byte, 10), 50); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("err = %v, want ErrUnexpectedEOF", err)
	}
	if _, err := d.WriteAt([]byte("x"), 100); err == nil {
		t.Fatal("write past the end accepted")
	}
}

func TestDiskSeedsReadOnlyFiles(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root can write read-only files")
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "f"), []byte("abc"), 0o444)
	d, err := OpenDisk(dir, []FileSpec{{Path: "f", Length: 3}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if !d.ReadOnly() {
		t.Fatal("not read-only")
	}
	if _, err := d.WriteAt([]byte("x"), 0); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("err = %v, want ErrReadOnly", err)
	}
}

func BenchmarkWriteBlock(b *testing.B) {
	d, err := OpenDisk(b.TempDir(), []FileSpec{{Path: "a", Length: 64 << 20}, {Path: "b", Offset: 64 << 20, Length: 64 << 20}})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	block := make([]byte, 16<<10)
	b.SetBytes(int64(len(block)))
	off := int64(0)
	for b.Loop() {
		if _, err := d.WriteAt(block, off); err != nil {
			b.Fatal(err)
		}
		off = (off + int64(len(block))) % (128 << 20)
	}
}

// BenchmarkWritePiece writes what the engine writes: a verified 256 KiB
// piece, its 16 blocks in one call.
func BenchmarkWritePiece(b *testing.B) {
	d, err := OpenDisk(b.TempDir(), []FileSpec{{Path: "a", Length: 128 << 20}})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	blocks := make([][]byte, 16)
	for i := range blocks {
		blocks[i] = make([]byte, 16<<10)
	}
	b.SetBytes(256 << 10)
	off := int64(0)
	for b.Loop() {
		if _, err := d.WriteBlocksAt(blocks, off); err != nil {
			b.Fatal(err)
		}
		off = (off + 256<<10) % (128 << 20)
	}
}

func TestDiskWriteBlocksAt(t *testing.T) {
	layout := []FileSpec{
		{Path: "a", Offset: 0, Length: 10},
		{Path: "empty", Offset: 10, Length: 0},
		{Path: "b", Offset: 10, Length: 8},
	}
	data := []byte("0123456789abcdefgh")
	tests := []struct {
		name    string
		off     int64
		blocks  []string
		wantErr bool
	}{
		{"inside one file", 2, []string{"234", "56", "7"}, false},
		{"across files", 7, []string{"789a", "bcd"}, false},
		{"up to the end", 15, []string{"fgh"}, false},
		{"past the end", 16, []string{"ghX"}, true},
		{"before the start", -1, []string{"x0"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			d, err := OpenDisk(dir, layout)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			var blocks [][]byte
			size := 0
			for _, b := range tt.blocks {
				blocks = append(blocks, []byte(b))
				size += len(b)
			}
			n, err := d.WriteBlocksAt(blocks, tt.off)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("WriteBlocksAt(%d) = %d, nil; want an error", tt.off, n)
				}
				return
			}
			if err != nil || n != size {
				t.Fatalf("WriteBlocksAt(%d) = %d, %v; want %d", tt.off, n, err, size)
			}
			got := make([]byte, size)
			if _, err := d.ReadAt(got, tt.off); err != nil || !bytes.Equal(got, data[tt.off:tt.off+int64(size)]) {
				t.Fatalf("read back %q, %v; want %q", got, err, data[tt.off:tt.off+int64(size)])
			}
			for i, b := range blocks {
				if string(b) != tt.blocks[i] {
					t.Fatalf("block %d changed to %q", i, b)
				}
			}
		})
	}
}
