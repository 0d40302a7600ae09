package torrent

import (
	"path/filepath"
	"strings"
)

// checkComponent rejects a name or path component that could make a torrent
// write outside its download directory or that no file system can hold.
func checkComponent(c string) error {
	switch {
	case c == "":
		return errorf(ErrUnsafePath, "empty path component")
	case c == "." || c == "..":
		return errorf(ErrUnsafePath, "path component %q", c)
	case strings.ContainsAny(c, `/\`):
		return errorf(ErrUnsafePath, "path component %q contains a path separator", c)
	case strings.ContainsRune(c, 0):
		return errorf(ErrUnsafePath, "path component %q contains a NUL byte", c)
	}
	return nil
}

// checkPath checks every component of a file's path and then the joined
// path as a whole, so that nothing this OS treats as absolute or reserved
// slips through.
func checkPath(components []string) error {
	if len(components) == 0 {
		return errorf(ErrUnsafePath, "empty path")
	}
	for _, c := range components {
		if err := checkComponent(c); err != nil {
			return err
		}
	}
	if p := filepath.Join(components...); !filepath.IsLocal(p) {
		return errorf(ErrUnsafePath, "path %q is not local to the download directory", p)
	}
	return nil
}

// checkLayout rejects two files with the same path, and a path used both as
// a file and as a directory: either would clobber data. It walks a trie of
// components so that its cost stays linear in the size of the paths.
func checkLayout(files []File) error {
	type edge struct {
		parent int
		name   string
	}
	child := make(map[edge]int)
	isFile := []bool{false} // node 0 is the root directory
	for _, f := range files {
		parent := 0
		for i, c := range f.Path {
			last := i == len(f.Path)-1
			id, seen := child[edge{parent, c}]
			switch {
			case !seen:
				id = len(isFile)
				isFile = append(isFile, last)
				child[edge{parent, c}] = id
			case last && isFile[id]:
				return errorf(ErrInvalid, "file %q listed twice", strings.Join(f.Path, "/"))
			case last || isFile[id]:
				return errorf(ErrInvalid, "%q is both a file and a directory", strings.Join(f.Path[:i+1], "/"))
			}
			parent = id
		}
	}
	return nil
}
