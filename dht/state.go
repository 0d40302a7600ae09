package dht

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"btclient/bencode"
)

// The saved table is one bencoded dictionary: "id" (our 20-byte node id)
// and "nodes" (the table's nodes, compact: 26 bytes each).
type savedState struct {
	ID    string `bencode:"id"`
	Nodes string `bencode:"nodes"`
}

// maxStateSize bounds the file read: 160 buckets of 8 nodes take 33 KiB.
const maxStateSize = 1 << 20

var errNoState = errors.New("dht: no saved table")

func loadState(path string) (ID, []nodeInfo, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return ID{}, nil, errNoState
	}
	if err != nil {
		return ID{}, nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxStateSize+1))
	if err != nil {
		return ID{}, nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(data) > maxStateSize {
		return ID{}, nil, fmt.Errorf("%s: larger than %d bytes", path, maxStateSize)
	}
	var st savedState
	if err := bencode.Unmarshal(data, &st); err != nil {
		return ID{}, nil, fmt.Errorf("%s: %w", path, err)
	}
	id, ok := idFrom(st.ID)
	if !ok {
		return ID{}, nil, fmt.Errorf("%s: no 20-byte id", path)
	}
	nodes, err := parseCompactNodes(st.Nodes)
	if err != nil {
		return ID{}, nil, fmt.Errorf("%s: %w", path, err)
	}
	return id, nodes, nil
}

// save writes the table to Config.StateFile atomically (a temporary file
// renamed over it), readable by the owner only.
func (n *Node) save() error {
	if n.cfg.StateFile == "" {
		return nil
	}
	now := n.now()
	nodes := locked(n, func() []nodeInfo {
		n.saved = now
		return n.table.nodes(now)
	})
	b := make([]byte, 0, len(nodes)*compactNodeLen)
	for _, ni := range nodes {
		b = appendCompactNode(b, ni)
	}
	data, err := bencode.Marshal(savedState{ID: string(n.id[:]), Nodes: string(b)})
	if err != nil {
		return err
	}
	path := n.cfg.StateFile
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("dht: save table: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("dht: save table: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("dht: save table: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("dht: save table: %w", err)
	}
	return nil
}
