//go:build race

package index

// raceEnabled: the race detector slows the flood tenfold; the Makefile runs
// the full flood without it.
const raceEnabled = true
