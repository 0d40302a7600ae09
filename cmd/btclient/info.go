package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"

	"btclient/torrent"
)

// runInfo implements `btclient info TORRENT`: it prints what a .torrent
// describes.
func runInfo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("info", "btclient info TORRENT|MAGNET", stderr)
	if done, code := parseFlags(fs, args, stderr); done {
		return code
	}
	if fs.NArg() != 1 {
		return usageError(stderr, "info: want exactly one TORRENT, got %d arguments (see --help)", fs.NArg())
	}
	if torrent.IsMagnet(fs.Arg(0)) {
		mg, err := torrent.ParseMagnet(fs.Arg(0))
		if err != nil {
			return usageError(stderr, "info: %v", err)
		}
		printMagnet(stdout, mg)
		return exitOK
	}
	m, err := torrent.Load(fs.Arg(0))
	if err != nil {
		return usageError(stderr, "info: %v", err)
	}
	printInfo(stdout, m)
	return exitOK
}

// printMagnet writes what a magnet link tells before any metadata is fetched.
func printMagnet(w io.Writer, m *torrent.Magnet) {
	if m.Name != "" {
		fmt.Fprintf(w, "Name:          %s\n", printable(m.Name))
	}
	fmt.Fprintf(w, "Info hash:     %x\n", m.InfoHash)
	fmt.Fprintf(w, "Magnet:        %s\n", m)
	for _, tr := range m.Trackers {
		fmt.Fprintf(w, "Tracker:       %s\n", printable(tr))
	}
	for _, p := range m.Peers {
		fmt.Fprintf(w, "Peer:          %s\n", printable(p))
	}
	fmt.Fprintf(w, "Metadata:      not in the link; fetched from peers when downloading\n")
}

// printInfo writes a human-readable description of m. Strings from the
// torrent are quoted when they hold anything unprintable, so a hostile
// torrent cannot send control sequences to the terminal.
func printInfo(w io.Writer, m *torrent.MetaInfo) {
	fmt.Fprintf(w, "Name:          %s\n", printable(m.Name))
	fmt.Fprintf(w, "Info hash:     %x\n", m.InfoHash)
	fmt.Fprintf(w, "Magnet:        %s\n", m.Magnet())
	fmt.Fprintf(w, "Total size:    %d bytes (%s)\n", m.TotalLength, humanSize(m.TotalLength))
	fmt.Fprintf(w, "Piece length:  %d bytes (%s)\n", m.PieceLength, humanSize(m.PieceLength))
	fmt.Fprintf(w, "Pieces:        %d\n", m.NumPieces())
	fmt.Fprintf(w, "Private:       %s\n", yesNo(m.Private))
	if m.Comment != "" {
		fmt.Fprintf(w, "Comment:       %s\n", printable(m.Comment))
	}
	if m.CreatedBy != "" {
		fmt.Fprintf(w, "Created by:    %s\n", printable(m.CreatedBy))
	}
	if m.CreationDate != 0 {
		fmt.Fprintf(w, "Creation date: %s\n", creationTime(m.CreationDate).UTC().Format(time.RFC3339))
	}
	tiers := m.Trackers()
	if len(tiers) == 0 {
		fmt.Fprintf(w, "Trackers:      none\n")
	} else {
		fmt.Fprintf(w, "Trackers:\n")
		for i, tier := range tiers {
			urls := make([]string, len(tier))
			for j, u := range tier {
				urls[j] = printable(u)
			}
			fmt.Fprintf(w, "  tier %d: %s\n", i+1, strings.Join(urls, ", "))
		}
	}
	for _, u := range m.URLList {
		fmt.Fprintf(w, "Web seed:      %s\n", printable(u))
	}
	fmt.Fprintf(w, "Files (%d):\n", len(m.Files))
	width := len(strconv.FormatInt(m.TotalLength, 10))
	for _, f := range m.Files {
		fmt.Fprintf(w, "  %*d  %s\n", width, f.Length, printable(m.FilePath(f)))
	}
}

// printable returns s, or s quoted when it holds an unprintable rune.
func printable(s string) string {
	for _, r := range s {
		if !unicode.IsPrint(r) || r == unicode.ReplacementChar {
			return strconv.Quote(s)
		}
	}
	return s
}

// humanSize formats n bytes with binary units: 1.5 MiB.
func humanSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n)/unit, 0
	for v >= unit && i < 5 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB", v, "KMGTPE"[i])
}

// creationTime interprets a creation date; some tools write milliseconds
// instead of seconds, which would put the date tens of thousands of years
// ahead.
func creationTime(d int64) time.Time {
	if d > 1e11 || d < -1e11 {
		return time.UnixMilli(d)
	}
	return time.Unix(d, 0)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
