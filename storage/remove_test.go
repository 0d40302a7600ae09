package storage

import (
	"os"
	"path/filepath"
	"testing"
)

func TestRemoveDeletesOnlyTheLayoutAndEmptyDirectories(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "downloads")
	write := func(rel string) {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("downloads/album/cd1/a.flac")
	write("downloads/album/cd2/b.flac")
	write("downloads/album/cd2/notes.txt") // not the torrent's: stays, and so does cd2
	write("outside.txt")
	layout := []FileSpec{
		{Path: "album/cd1/a.flac", Length: 1},
		{Path: "album/cd2/b.flac", Offset: 1, Length: 1},
		{Path: "../outside.txt", Offset: 2, Length: 1},
	}
	if err := Remove(dir, layout); err == nil {
		t.Fatal("a path that climbs out was not reported")
	}
	for rel, want := range map[string]bool{
		"downloads/album/cd1/a.flac":    false,
		"downloads/album/cd1":           false,
		"downloads/album/cd2/b.flac":    false,
		"downloads/album/cd2/notes.txt": true,
		"downloads/album":               true,
		"outside.txt":                   true,
	} {
		_, err := os.Stat(filepath.Join(root, rel))
		if got := err == nil; got != want {
			t.Errorf("%s exists: %v, want %v", rel, got, want)
		}
	}
}
