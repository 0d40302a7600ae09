#!/usr/bin/env bash
# Chaos run: proves the seed's reliability promises (seed 002, section 7.5) on
# real processes on loopback, and prints them as a table.
#
#   - a 12-node swarm (2 seeders, 10 leechers) sharing a file through an overlay
#     of 5 bootstrap nodes, while a bounded loop kills (SIGKILL and SIGTERM) and
#     restarts random leechers and one seeder dies for good; then 70 % of the
#     leechers die and the rest must finish byte-identical; then 3 of the 5
#     bootstrap nodes die and fresh nodes must still discover the seeder;
#   - a leecher whose seeders are killed (SIGKILL) and hung (SIGSTOP) one after
#     the other, to time the reassignment of their blocks.
#
# Usage: scripts/chaos.sh [--short]
#   The full run shares 128 MiB with 20 churn rounds (about 3–4 minutes); --short
#   (or CHAOS_SHORT=1) runs the variant `make test` runs (32 MiB, 6 rounds).
#   Any CHAOS_* variable set in the environment wins (see e2e/chaos_test.go):
#   CHAOS_SIZE_MIB, CHAOS_ROUNDS, CHAOS_DURATION, CHAOS_LOOKUPS, CHAOS_SEED.
set -euo pipefail
cd "$(dirname "$0")/.."

short=${CHAOS_SHORT:-}
for a in "$@"; do
	case "$a" in
	--short) short=1 ;;
	-h | --help)
		sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "chaos.sh: unknown argument $a (see --help)" >&2
		exit 2
		;;
	esac
done
if [ -z "$short" ]; then
	export CHAOS_SIZE_MIB=${CHAOS_SIZE_MIB:-128}
	export CHAOS_ROUNDS=${CHAOS_ROUNDS:-20}
	# 20 churn rounds take about a minute: cap the leechers' rate so that
	# their download would take 150 s on its own and the kills land mid-way.
	export CHAOS_DURATION=${CHAOS_DURATION:-150}
	export CHAOS_LOOKUPS=${CHAOS_LOOKUPS:-50}
fi

log=$(mktemp /tmp/btclient-chaos.XXXXXX.log)
status=0
echo "chaos: size ${CHAOS_SIZE_MIB:-32} MiB, ${CHAOS_ROUNDS:-6} churn rounds; log in $log"
go test -run 'TestChaos' -v -count=1 -timeout 30m ./e2e/ >"$log" 2>&1 || status=$?
grep -E '^(=== RUN|--- |ok|FAIL|panic)|measured:|churn|survivor|discovery:|killed 7' "$log" | grep -v 'measured: promise' || true

echo
echo "== seed 002 promises (section 7.5) =="
{
	echo "promise|what|measured|target|verdict"
	grep -hoE 'measured: promise .*' "$log" | sed -E 's/^measured: promise //; s/ \| /|/g'
} | column -t -s '|'

if [ "$status" -ne 0 ]; then
	echo
	echo "chaos: tests failed (status $status); failures:" >&2
	grep -E '^\s+(chaos|harness)_test.go:[0-9]+: .*(not met|want|timed out|exit|differs|dropped)' "$log" >&2 || true
	echo "full log: $log" >&2
fi
exit "$status"
