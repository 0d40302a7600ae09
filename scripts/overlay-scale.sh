#!/usr/bin/env bash
# Measures the overlay at scale with real processes: 50 `btclient node`
# processes, each on its own 127.0.0.x, announcing 1,000 torrents each (50,000
# providers), in a private network namespace so that the bytes on its lo are
# the overlay's alone. Prints: the share of 200 random lookups from random
# nodes that return exactly the right provider, lookup latency p50/p99,
# steady-state traffic per node (bytes on lo over a minute after a 40 s
# warm-up), peak RSS per node, the time until a newly announced provider is
# found from every node and until a killed node's providers are gone from
# every lookup; then a seeder and a leecher that each know one bootstrap node
# find each other among the 50,000 entries and the leecher downloads.
# Needs root for `ip netns` (without it, runs on the host's lo and says so).
# Usage: scripts/overlay-scale.sh [NODES [TORRENTS]]   (defaults 50 1000)
set -euo pipefail
cd "$(dirname "$0")/.."
export OVERLAY_SCALE_NODES=${1:-50} OVERLAY_SCALE_TORRENTS=${2:-1000}
log=$(mktemp /tmp/overlay-scale.XXXXXX.log)
ns=btclient-ovscale-$$
cleanup() {
	ip netns del "$ns" 2>/dev/null || true
	rm -f "$log"
}
trap cleanup EXIT
run=()
if ip netns add "$ns" 2>/dev/null; then
	ip netns exec "$ns" ip link set lo up
	run=(ip netns exec "$ns")
else
	echo "(no private network namespace: traffic is measured on the host's lo)"
fi
go test -c -o /tmp/overlay-scale-e2e.$$ ./e2e/
status=0
(cd e2e && "${run[@]}" /tmp/overlay-scale-e2e.$$ -test.run 'TestOverlayScale$|TestOverlayLeecherFindsTheOneSeederAmongManyProviders' \
	-test.v -test.count=1 -test.timeout 15m) >"$log" 2>&1 || status=$?
rm -f /tmp/overlay-scale-e2e.$$
grep -E '^(--- |ok|FAIL|PASS|panic)' "$log" || true
echo
echo "== measured =="
grep -hoE '(scale: .*|measured: .*)' "$log" || true
if [ "$status" -ne 0 ]; then
	echo
	echo "tests failed (status $status); last lines:" >&2
	tail -100 "$log" >&2
fi
exit "$status"
