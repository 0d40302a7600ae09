package storage

import (
	"bytes"
	"crypto/rand"
	"slices"
	"testing"
)

func TestEachChunkSplitsRangesAtChunkBoundaries(t *testing.T) {
	const c = chunkSize
	tests := []struct {
		name    string
		off, n  int64
		indexes []int64
		sizes   []int64
	}{
		{"inside one chunk", 100, 200, []int64{0}, []int64{200}},
		{"exactly one chunk", c, c, []int64{1}, []int64{c}},
		{"across a boundary", c - 10, 30, []int64{0, 1}, []int64{10, 20}},
		{"over a whole chunk", c / 2, 2 * c, []int64{0, 1, 2}, []int64{c / 2, c, c / 2}},
		{"nothing", 5, 0, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var indexes, sizes []int64
			eachChunk(tt.off, tt.n, func(index, k int64) {
				indexes = append(indexes, index)
				sizes = append(sizes, k)
			})
			if !slices.Equal(indexes, tt.indexes) || !slices.Equal(sizes, tt.sizes) {
				t.Fatalf("chunks %v sizes %v; want %v %v", indexes, sizes, tt.indexes, tt.sizes)
			}
		})
	}
}

func TestCacheWindowKeepsEveryByte(t *testing.T) {
	const mib = 1 << 20
	data := make([]byte, 12*mib)
	rand.Read(data)
	for _, window := range []int64{0, chunkSize, DefaultCacheWindow} {
		d, err := OpenDisk(t.TempDir(), []FileSpec{{Path: "a", Length: 5 * mib}, {Path: "b", Offset: 5 * mib, Length: 7 * mib}})
		if err != nil {
			t.Fatal(err)
		}
		d.setCacheWindow(window)
		// Out of order, in pieces, through both write paths.
		const piece = 256 << 10
		for i := len(data)/piece - 1; i >= 0; i-- {
			p := data[i*piece : (i+1)*piece]
			var err error
			if i%2 == 0 {
				_, err = d.WriteBlocksAt([][]byte{p[:piece/2], p[piece/2:]}, int64(i*piece))
			} else {
				_, err = d.WriteAt(p, int64(i*piece))
			}
			if err != nil {
				t.Fatalf("window %d: write piece %d: %v", window, i, err)
			}
		}
		got := make([]byte, len(data))
		for off := 0; off < len(data); off += piece {
			if _, err := d.ReadAt(got[off:off+piece], int64(off)); err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("window %d: the bytes read back differ from those written", window)
		}
		d.Close()
	}
}
