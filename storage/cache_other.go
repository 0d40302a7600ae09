//go:build !linux

package storage

import "os"

// The other systems leave the page cache to the kernel.

func startWriteback(*os.File, int64, int64)    {}
func waitWritten(*os.File, int64, int64) error { return nil }
func dropCached(*os.File, int64, int64)        {}
func prefetch(*os.File, int64, int64)          {}
func setReadahead(*os.File, bool)              {}

// residentPages reports every page resident: nothing is evicted anyway.
func residentPages(*os.File, int64, int64) pageSet { return allPages() }
