package storage

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestOpenDiskReservesSpaceAndKeepsSizes(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name     string
		existing []byte // what the file held before
	}{
		{"a new file stays empty", nil},
		{"a partial file keeps its bytes", []byte("already downloaded")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "f")
			if tt.existing != nil {
				if err := os.WriteFile(path, tt.existing, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			d, err := OpenDisk(dir, []FileSpec{{Path: "f", Length: 8 * mib}})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			var st unix.Stat_t
			if err := unix.Stat(path, &st); err != nil {
				t.Fatal(err)
			}
			if st.Size != int64(len(tt.existing)) {
				t.Fatalf("size %d; want %d", st.Size, len(tt.existing))
			}
			var fs unix.Statfs_t
			if err := unix.Statfs(dir, &fs); err != nil {
				t.Fatal(err)
			}
			if fs.Type == unix.EXT4_SUPER_MAGIC || fs.Type == unix.XFS_SUPER_MAGIC || fs.Type == unix.BTRFS_SUPER_MAGIC {
				if st.Blocks*512 < 8*mib {
					t.Fatalf("%d bytes allocated; want the file's 8 MiB reserved", st.Blocks*512)
				}
			}
			got, err := os.ReadFile(path)
			if err != nil || string(got) != string(tt.existing) {
				t.Fatalf("file holds %q, %v; want %q", got, err, tt.existing)
			}
		})
	}
}
