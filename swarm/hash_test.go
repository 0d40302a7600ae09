package swarm

import (
	"bytes"
	"context"
	"crypto/sha1"
	"testing"
)

func TestHashWorkerWritesOnlyVerifiedPieces(t *testing.T) {
	piece := bytes.Repeat([]byte("piece"), 100)
	tests := []struct {
		name      string
		want      [20]byte
		wantWrite bool
	}{
		{"a good piece is verified and written", sha1.Sum(piece), true},
		{"a bad piece is neither", [20]byte{1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			store := newMemStorage(len(piece), nil)
			jobs, results := make(chan hashJob), make(chan hashResult)
			done := make(chan struct{})
			go func() { defer close(done); hashWorker(ctx, store, jobs, results) }()
			defer func() { cancel(); <-done }()
			jobs <- hashJob{blocks: [][]byte{piece[:200], piece[200:]}, want: tt.want}
			r := <-results
			if r.ok != tt.wantWrite || r.err != nil {
				t.Fatalf("ok %v, err %v; want ok %v", r.ok, r.err, tt.wantWrite)
			}
			if written := bytes.Equal(store.data, piece); written != tt.wantWrite {
				t.Fatalf("piece written: %v; want %v", written, tt.wantWrite)
			}
		})
	}
}
