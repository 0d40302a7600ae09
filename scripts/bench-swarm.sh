#!/usr/bin/env bash
# 1 seeder + 7 leechers share SIZE_MIB (default 256) MiB on loopback; prints the
# time until every leecher has the whole file, for btclient (peers found through
# the overlay alone) and for libtorrent in the same shape (peers from a local
# tracker, since libtorrent does not speak the overlay). Every leecher keeps
# seeding until all are done, so leechers trade pieces among themselves.
#
#   scripts/bench-swarm.sh           SIZE_MIB=64 scripts/bench-swarm.sh
#
# Runs inside a fresh network namespace with only lo (unshare --net).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
if [ -z "${BENCH_IN_NETNS:-}" ]; then
	./scripts/install-test-deps.sh >/dev/null
	make -s build
	exec unshare --net env BENCH_IN_NETNS=1 "$0" "$@"
fi
ip link set lo up

SIZE_MIB=${SIZE_MIB:-256}
LEECHERS=7
BT="$ROOT/bin/btclient"
LT="$ROOT/e2e/testdata/lt.py"
# libtorrent's seeder starts from its high_performance_seed() settings
# (LT_TUNED=0: its defaults).
LTFLAGS=()
[ "${LT_TUNED:-1}" = 1 ] && LTFLAGS=(--high-performance)
WORK=$(mktemp -d /tmp/btclient-bench-swarm.XXXXXX)
PIDS=()
stop_all() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	PIDS=()
}
trap 'stop_all; rm -rf "$WORK"' EXIT

mkdir -p "$WORK/src"
head -c "$((SIZE_MIB << 20))" /dev/urandom >"$WORK/src/data.bin"
WANT=$(sha256sum "$WORK/src/data.bin" | cut -d' ' -f1)
"$BT" create -o "$WORK/data.torrent" --piece-length 256KiB --announce http://127.0.0.1:6969/announce "$WORK/src/data.bin" >/dev/null

check_all() { # check_all DIRPREFIX: every leecher's copy is right
	for i in $(seq 1 $LEECHERS); do
		[ "$(sha256sum "$1$i/data.bin" | cut -d' ' -f1)" = "$WANT" ] || { echo "leecher $i: wrong bytes" >&2; return 1; }
	done
}

# btclient: the seeder is the overlay's bootstrap node; each leecher knows only it.
"$BT" -o "$WORK/src" -p 7000 --overlay-port 6000 --advertise 127.0.0.1 --discovery-mode overlay \
	--status 127.0.0.1:7001 --quiet "$WORK/data.torrent" >"$WORK/bt-seed.log" 2>&1 &
PIDS+=($!)
until curl -fs 127.0.0.1:7001/status 2>/dev/null | grep -q '"seeding"'; do sleep 0.1; done
t0=$(date +%s.%N)
for i in $(seq 1 $LEECHERS); do
	mkdir -p "$WORK/bt$i"
	"$BT" -o "$WORK/bt$i" -p $((7000 + i * 10)) --overlay-port $((6000 + i)) --advertise 127.0.0.1 \
		--discovery-mode overlay --bootstrap 127.0.0.1:6000 --status 127.0.0.1:$((7001 + i * 10)) \
		--quiet "$WORK/data.torrent" >"$WORK/bt$i.log" 2>&1 &
	PIDS+=($!)
done
for i in $(seq 1 $LEECHERS); do
	until curl -fs 127.0.0.1:$((7001 + i * 10))/status 2>/dev/null | grep -q '"seeding"'; do sleep 0.05; done
done
t1=$(date +%s.%N)
stop_all
check_all "$WORK/bt"
BT_TIME=$(echo "$t1 - $t0" | bc -l)

# libtorrent: same shape, peers from btclient's tracker; one 127.0.0.x each.
"$BT" tracker --listen 127.0.0.1:6969 --interval 5s --quiet >"$WORK/tracker.log" 2>&1 &
PIDS+=($!)
/usr/bin/python3 "$LT" seed "$WORK/data.torrent" "$WORK/src" --listen 127.0.0.2:7000 "${LTFLAGS[@]}" >"$WORK/lt-seed.log" 2>&1 &
PIDS+=($!)
until grep -q seeding "$WORK/lt-seed.log"; do sleep 0.1; done
t0=$(date +%s.%N)
for i in $(seq 1 $LEECHERS); do
	mkdir -p "$WORK/lt$i"
	/usr/bin/python3 "$LT" leech "$WORK/data.torrent" "$WORK/lt$i" --listen 127.0.0.$((10 + i)):7000 --timeout 600 --stay >"$WORK/lt$i.log" 2>&1 &
	PIDS+=($!)
done
for i in $(seq 1 $LEECHERS); do
	until grep -q complete "$WORK/lt$i.log"; do sleep 0.05; done
done
t1=$(date +%s.%N)
stop_all
check_all "$WORK/lt"
LT_TIME=$(echo "$t1 - $t0" | bc -l)

echo
echo "1 seeder + $LEECHERS leechers, ${SIZE_MIB} MiB, loopback, $(date -u +%Y-%m-%d), $(nproc) cores"
printf '%-40s %8.2f s\n' "btclient (overlay discovery)" "$BT_TIME"
printf '%-40s %8.2f s\n' "libtorrent 2.0 (local tracker$([ "${LT_TUNED:-1}" = 1 ] && echo ", tuned seeder"))" "$LT_TIME"
printf 'btclient / libtorrent time: %.2f\n' "$(echo "$BT_TIME / $LT_TIME" | bc -l)"
