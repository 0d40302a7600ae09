#!/usr/bin/env bash
# Runs every fuzz target in the repository for the given time each (default 10s).
set -euo pipefail
cd "$(dirname "$0")/.."
t="${1:-10s}"
for pkg in $(go list ./... | grep -v /e2e); do
	dir=$(go list -f '{{.Dir}}' "$pkg")
	for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
		echo "fuzz $pkg $target for $t"
		go test -run '^$' -fuzz "^${target}\$" -fuzztime "$t" -fuzzminimizetime 5s -parallel 2 "$pkg" 2>&1 | tail -3
	done
done
