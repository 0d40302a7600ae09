package storage

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
)

// Remove deletes the files of a layout below dir and then the directories
// they leave empty, deepest first. Nothing outside dir is touched: a path
// that would leave it is refused, and a directory that still holds anything
// stays.
func Remove(dir string, layout []FileSpec) error {
	var errs []error
	dirs := map[string]bool{}
	for _, fs := range layout {
		full, err := inside(dir, fs.Path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := os.Remove(full); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
		for d := filepath.Dir(filepath.Clean(fs.Path)); d != "." && d != string(filepath.Separator); d = filepath.Dir(d) {
			dirs[d] = true
		}
	}
	sorted := make([]string, 0, len(dirs))
	for d := range dirs {
		sorted = append(sorted, d)
	}
	slices.SortFunc(sorted, func(a, b string) int { return len(b) - len(a) })
	for _, d := range sorted {
		if full, err := inside(dir, d); err == nil {
			os.Remove(full) // fails, as it should, while the directory holds anything
		}
	}
	return errors.Join(errs...)
}
