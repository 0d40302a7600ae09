#!/usr/bin/env bash
# Done-means 3 of the DHT issue: an in-process simulation of N mainline DHT
# nodes (default 10,000) on the in-memory transport, with the default
# configuration. Every node joins through node 0; LOOKUPS random info hashes
# are announced by random nodes and looked up (get_peers) from other random
# nodes; then 20 % of the nodes fail at once and every hash is looked up
# again. It prints the success rate, hops and queries per lookup before and
# after (targets: >= 99 % success after the failure, median hops <=
# log2(N)/2 + 2), the join cost and the memory.
# Usage: scripts/dht-sim.sh [NODES [LOOKUPS]]   (about 3 min and 2 GB for 10,000)
set -euo pipefail
cd "$(dirname "$0")/.."
nodes="${1:-10000}"
lookups="${2:-1000}"
log=$(mktemp /tmp/dht-sim.XXXXXX.log)
trap 'rm -f "$log"' EXIT
status=0
DHT_SIM_NODES="$nodes" DHT_SIM_LOOKUPS="$lookups" \
	go test -run '^TestSimulationLarge$' -v -count=1 -timeout 30m ./dht/ >"$log" 2>&1 || status=$?
grep -E '^(--- |ok|FAIL|panic)' "$log" || true
echo
echo "== measured ($nodes nodes, $lookups lookups) =="
grep -hoE 'simulation_test.go:[0-9]+: .*' "$log" | sed 's/^simulation_test.go:[0-9]*: //' || true
if [ "$status" -ne 0 ]; then
	echo
	echo "simulation failed (status $status); full log:" >&2
	cat "$log" >&2
fi
exit "$status"
