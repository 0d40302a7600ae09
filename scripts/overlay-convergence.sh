#!/usr/bin/env bash
# Measures how fast the gossip overlay converges, with default timings:
#   - 50 real `btclient node` processes on loopback joined as a tree: time until
#     every node's lookup returns a newly announced provider (target < 30 s),
#     until a cleanly stopped provider is gone everywhere (< 10 s), and until a
#     kill -9'd node leaves every live view (< 20 s);
#   - an in-process simulation of 1,000 nodes on the in-memory transport: gossip
#     rounds and simulated time until 99 % and 100 % of nodes know a provider.
# Usage: scripts/overlay-convergence.sh   (from anywhere; runs from the repo root)
set -euo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp /tmp/overlay-convergence.XXXXXX.log)
trap 'rm -f "$log"' EXIT
status=0
go test -run 'TestOverlayConvergence|TestOverlaySimulation' -v -count=1 -timeout 5m ./e2e/ ./overlay/ >"$log" 2>&1 || status=$?
grep -E '^(--- |ok|FAIL|panic)' "$log" || true
echo
echo "== measured =="
grep -hoE '(convergence: .*|overlay of [0-9]+ processes formed.*|simulation: .*|rumor phase: .*|round [0-9]+: .*)' "$log" || true
if [ "$status" -ne 0 ]; then
	echo
	echo "tests failed (status $status); full log:" >&2
	cat "$log" >&2
fi
exit "$status"
