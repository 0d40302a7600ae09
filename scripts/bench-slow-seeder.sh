#!/usr/bin/env bash
# One seeder capped at RATE (default 2MiB) and 5 leechers share SIZE_MIB
# (default 40) MiB through the overlay. The seeder's upload is the bottleneck,
# so the floor is SIZE/RATE seconds: leechers finish near it only if they take
# different pieces from the seeder and trade them among themselves, rather than
# all asking it for the same ones. Prints when each leecher finished and how
# many times the seeder sent the file.
#
#   scripts/bench-slow-seeder.sh      SIZE_MIB=20 scripts/bench-slow-seeder.sh
#
# Runs inside a fresh network namespace with only lo (unshare --net).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
if [ -z "${BENCH_IN_NETNS:-}" ]; then
	make -s build
	exec unshare --net env BENCH_IN_NETNS=1 "$0" "$@"
fi
ip link set lo up

SIZE_MIB=${SIZE_MIB:-40}
RATE=${RATE:-2MiB}
LEECHERS=5
BT="$ROOT/bin/btclient"
WORK=$(mktemp -d /tmp/btclient-bench-slow.XXXXXX)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$WORK"
}
trap cleanup EXIT

mkdir -p "$WORK/seed"
head -c "$((SIZE_MIB << 20))" /dev/urandom >"$WORK/seed/data.bin"
WANT=$(sha256sum "$WORK/seed/data.bin" | cut -d' ' -f1)
"$BT" create -o "$WORK/data.torrent" "$WORK/seed/data.bin" >/dev/null

# node I DIR [FLAGS...]: a btclient on 127.0.0.1 ports 7000+I (peer wire),
# 7500+I (overlay) and 7900+I (status).
node() {
	local i=$1 dir=$2
	shift 2
	mkdir -p "$dir"
	"$BT" --quiet -o "$dir" -p $((7000 + i)) --overlay-port $((7500 + i)) --advertise 127.0.0.1 \
		--discovery-mode overlay --status 127.0.0.1:$((7900 + i)) "$@" "$WORK/data.torrent" >"$dir.log" 2>&1 &
	PIDS+=($!)
}
status() { "$BT" probe --quiet --timeout 2s --print "http://127.0.0.1:$((7900 + $1))/status" 2>/dev/null || true; }

node 0 "$WORK/seed" --max-upload-rate "$RATE"
until status 0 | grep -q '"seeding"'; do sleep 0.1; done
t0=$(date +%s.%N)
for i in $(seq 1 $LEECHERS); do node "$i" "$WORK/leech$i" --bootstrap 127.0.0.1:7500; done

deadline=$((SECONDS + 600))
for i in $(seq 1 $LEECHERS); do
	until status "$i" | grep -q '"seeding"'; do
		[ $SECONDS -lt $deadline ] || { echo "leecher $i not done after 600 s" >&2; exit 1; }
		sleep 0.2
	done
	got=$(sha256sum "$WORK/leech$i/data.bin" | cut -d' ' -f1)
	[ "$got" = "$WANT" ] || { echo "leecher $i: sha256 differs" >&2; exit 1; }
	printf 'leecher %d complete and verified after %.1f s\n' "$i" "$(echo "$(date +%s.%N) - $t0" | bc -l)"
done
t1=$(date +%s.%N)
up=$(status 0 | grep -o '"uploaded":[0-9]*' | cut -d: -f2)
echo
echo "1 seeder capped at $RATE/s + $LEECHERS leechers, $SIZE_MIB MiB, overlay, $(date -u +%Y-%m-%d), $(nproc) cores"
printf 'all complete after %.1f s (floor %.1f s); the seeder sent the file %.2f times\n' \
	"$(echo "$t1 - $t0" | bc -l)" "$(echo "$SIZE_MIB / $(echo "$RATE" | sed 's/MiB//')" | bc -l)" \
	"$(echo "${up:-0} / ($SIZE_MIB * 1048576)" | bc -l)"
