#!/usr/bin/env bash
# In-process simulation of the overlay on the in-memory transport: 10,000
# nodes × 100 torrents by default. Prints lookup success, put lines and bytes
# per announce, query lines per lookup and the steady-state bytes per node,
# before and after 30 % of the nodes fail at once (target ≥ 99 % after).
# The suite runs the same test at 1,000 × 20.
# Usage: scripts/overlay-sim.sh [NODES [TORRENTS]]
set -euo pipefail
cd "$(dirname "$0")/.."
export OVERLAY_SIM_NODES=${1:-10000} OVERLAY_SIM_TORRENTS=${2:-100}
# 10,000 nodes hold 5 million records between them in this one process.
export GOMEMLIMIT=${GOMEMLIMIT:-11GiB}
log=$(mktemp /tmp/overlay-sim.XXXXXX.log)
trap 'rm -f "$log"' EXIT
status=0
go test -run 'TestOverlaySimulation$' -v -count=1 -timeout 60m ./overlay/ >"$log" 2>&1 || status=$?
grep -E '^(--- |ok|FAIL|panic)' "$log" || true
echo
echo "== measured =="
grep -hoE 'simulation: .*' "$log" || true
if [ "$status" -ne 0 ]; then
	echo
	echo "tests failed (status $status); last lines:" >&2
	tail -50 "$log" >&2
fi
exit "$status"
