package swarm

import (
	"testing"

	"btclient/torrent"
)

func TestPickOrderIsRunsOfConsecutivePieces(t *testing.T) {
	const piece = 256 << 10
	tests := []struct {
		name    string
		total   int64
		wantRun int // pieces per run
	}{
		{"small torrent: 4 MiB runs", 40 << 20, 16},
		{"256 MiB: still 4 MiB", 256 << 20, 16},
		{"1 GiB: a 64th, 16 MiB", 1 << 30, 64},
		{"8 GiB: capped at 64 MiB", 8 << 30, 256},
		{"uneven tail", 1<<30 + 3*piece, 64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := pickRunBytes(tt.total) / piece; got != int64(tt.wantRun) {
				t.Fatalf("runs of %d pieces, want %d", got, tt.wantRun)
			}
			n := int((tt.total + piece - 1) / piece)
			m := &torrent.MetaInfo{Name: "x", PieceLength: piece, TotalLength: tt.total, Pieces: make([][20]byte, n)}
			tr, err := New(DefaultConfig(), Options{Meta: m, Storage: newMemStorage(0, nil)})
			if err != nil {
				t.Fatal(err)
			}
			l := &loop{t: tr}
			l.initPicker()
			if len(l.pickOrder) != n {
				t.Fatalf("%d pieces in the order, want %d", len(l.pickOrder), n)
			}
			seen := make([]bool, n)
			for i, p := range l.pickOrder {
				if seen[p] {
					t.Fatalf("piece %d twice", p)
				}
				seen[p] = true
				// A run starts at a multiple of wantRun and goes up by one.
				if int(p)%tt.wantRun == 0 {
					continue
				}
				if i == 0 || l.pickOrder[i-1] != p-1 {
					t.Fatalf("piece %d at %d does not follow piece %d: runs are not %d pieces", p, i, p-1, tt.wantRun)
				}
			}
		})
	}
}
