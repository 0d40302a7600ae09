package main

import (
	"btclient/internal/atomicfile"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"btclient/torrent"
)

// runCreate implements `btclient create [flags] PATH`: it writes a .torrent
// for a file or directory.
func runCreate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	flags := newFlagSet("create", "btclient create [flags] PATH", stderr)
	out := flags.StringP("out", "o", "", "write the torrent to `FILE` (default <name>.torrent in the current directory)")
	pieceLength := flags.String("piece-length", "", "piece `SIZE` in bytes or with a unit (256KiB, 1MiB); a power of two of at least 16KiB\n(default: chosen for about 1000-2000 pieces)")
	announce := flags.StringSlice("announce", nil, "tracker `URL`, repeatable or comma-separated: the first is the announce URL,\nand several make one announce-list tier each")
	comment := flags.String("comment", "", "free-form `TEXT` stored in the torrent")
	private := flags.Bool("private", false, "mark the torrent private (BEP 27): peers come from trackers only")
	if done, code := parseFlags(flags, args, stderr); done {
		return code
	}
	if flags.NArg() != 1 {
		return usageError(stderr, "create: want exactly one PATH, got %d arguments (see --help)", flags.NArg())
	}
	opt := torrent.CreateOptions{Comment: *comment, Private: *private}
	if *pieceLength != "" {
		n, err := parsePieceLength(*pieceLength)
		if err != nil {
			return usageError(stderr, "create: --piece-length: %v", err)
		}
		opt.PieceLength = n
	}
	var urls []string
	for _, u := range *announce {
		if u = strings.TrimSpace(u); u != "" {
			urls = append(urls, u)
		}
	}
	if len(urls) > 0 {
		opt.Announce = urls[0]
	}
	if len(urls) > 1 {
		for _, u := range urls {
			opt.AnnounceList = append(opt.AnnounceList, []string{u})
		}
	}

	// Hashing a large tree takes a while: let SIGINT interrupt it.
	type result struct {
		data []byte
		m    *torrent.MetaInfo
		err  error
	}
	done := make(chan result, 1)
	go func() {
		data, m, err := torrent.Create(flags.Arg(0), opt)
		done <- result{data, m, err}
	}()
	var r result
	select {
	case <-ctx.Done():
		fmt.Fprintln(stderr, "btclient: create: interrupted")
		return exitError
	case r = <-done:
	}
	if r.err != nil {
		if isBadInput(r.err) {
			return usageError(stderr, "%v", r.err)
		}
		fmt.Fprintf(stderr, "btclient: %v\n", r.err)
		return exitError
	}

	path := *out
	if path == "" {
		path = r.m.Name + ".torrent"
	}
	if err := atomicfile.Write(path, r.data, 0o644); err != nil {
		fmt.Fprintf(stderr, "btclient: create: %v\n", err)
		return exitError
	}
	fmt.Fprintf(stdout, "Info hash:     %x\n", r.m.InfoHash)
	fmt.Fprintf(stdout, "Torrent:       %s\n", path)
	fmt.Fprintf(stdout, "Magnet:        %s\n", r.m.Magnet())
	return exitOK
}

// isBadInput tells a problem with what the user asked for (exit 2) from a
// failure of the machine (exit 1).
func isBadInput(err error) bool {
	for _, target := range []error{fs.ErrNotExist, torrent.ErrEmpty, torrent.ErrInvalid, torrent.ErrUnsafePath} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// parsePieceLength reads a size (see parseSize) and checks that it is a
// power of two between 16 KiB and torrent.MaxPieceLength.
func parsePieceLength(s string) (int64, error) {
	n, err := parseSize(s)
	if err != nil {
		return 0, err
	}
	if n > torrent.MaxPieceLength {
		return 0, fmt.Errorf("%q is larger than %d bytes", s, torrent.MaxPieceLength)
	}
	if n < 16<<10 || n&(n-1) != 0 {
		return 0, fmt.Errorf("%q (%d bytes) is not a power of two of at least 16KiB", s, n)
	}
	return n, nil
}
