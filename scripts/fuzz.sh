#!/usr/bin/env bash
# Runs every fuzz target in the repository for the given time each (default 10s).
set -euo pipefail
cd "$(dirname "$0")/.."
t="${1:-10s}"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for pkg in $(go list ./... | grep -v /e2e); do
	dir=$(go list -f '{{.Dir}}' "$pkg")
	for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
		echo "fuzz $pkg $target for $t"
		if ! go test -run '^$' -fuzz "^${target}\$" -fuzztime "$t" -fuzzminimizetime 5s -parallel 2 "$pkg" >"$log" 2>&1; then
			tail -60 "$log" # the failing input, or why the fuzzer stopped
			exit 1
		fi
		tail -3 "$log"
	done
done
