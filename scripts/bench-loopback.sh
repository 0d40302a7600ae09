#!/usr/bin/env bash
# Times a 1 GiB download on loopback for each seeder → leecher pair and prints
# a table of medians over REPS runs: wall seconds, MiB/s, leecher CPU seconds,
# leecher peak RSS (from /usr/bin/time -v), and whether the sha256 matched.
#
#   scripts/bench-loopback.sh            # SIZE_MIB=1024 REPS=5, warm and cold
#   SIZE_MIB=256 REPS=1 STATES=warm scripts/bench-loopback.sh
#   PIECE=16MiB ONLY="btclient:btclient" scripts/bench-loopback.sh   # a subset of pairs
#   BT_LEECH_FLAGS="--cpuprofile /tmp/leech.prof"   # extra flags for btclient's leecher
#
# libtorrent runs at its best: its seeder starts from libtorrent's own
# high_performance_seed() settings, and so does its leecher (LT_TUNED=0 gives
# both libtorrent's defaults). Every seeder is started anew before every run.
#
# STATES (default "warm cold") says in which page-cache states every pair
# runs, one table each: warm has the seeder's file in the page cache (read
# once before the run, as a file being served is), cold drops the page cache
# before every run, so seeders read from disk as after a reboot. SETTLE=5
# then waits 5 s: this VM hands freed memory back to its host about 2 s after
# it is freed, and a page the host took back costs a fault on first touch.
#
# libtorrent's seeder reads through mmap and keeps its copy mapped, and the
# kernel does not drop mapped pages: restarting it before every run is what
# makes its cold runs cold.
#
# Each pair first makes WARMUP (default 1) downloads that are printed but not
# counted: in this VM the first download after memory was freed was the
# slowest of its pair for every pair (memory the kernel has handed back to
# the host costs a host fault on first touch), so counting it made a median
# depend on which pair drew two slow runs.
#
# It re-runs itself inside a fresh network namespace (unshare --net) whose
# only interface is lo, so no traffic can leave the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

if [ -z "${BENCH_IN_NETNS:-}" ]; then
	./scripts/install-test-deps.sh >/dev/null
	make -s build
	exec unshare --net env BENCH_IN_NETNS=1 "$0" "$@"
fi
ip link set lo up

SIZE_MIB=${SIZE_MIB:-1024}
REPS=${REPS:-5}
STATES=${STATES:-warm cold}
LT_TUNED=${LT_TUNED:-1}
LTFLAGS=()
[ "$LT_TUNED" = 1 ] && LTFLAGS=(--high-performance)
PIECE=${PIECE:-256KiB}
BT="$ROOT/bin/btclient"
LT="$ROOT/e2e/testdata/lt.py"
PY=/usr/bin/python3
WORK=$(mktemp -d /tmp/btclient-bench.XXXXXX)
PIDS=()
SEED_PID=
cleanup() {
	for p in "${PIDS[@]}" $SEED_PID; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT

echo "preparing ${SIZE_MIB} MiB of random data in $WORK" >&2
mkdir -p "$WORK/src"
head -c "$((SIZE_MIB << 20))" /dev/urandom >"$WORK/src/data.bin"
WANT=$(sha256sum "$WORK/src/data.bin" | cut -d' ' -f1)
"$BT" tracker --listen 127.0.0.1:6969 --quiet >"$WORK/tracker.log" 2>&1 &
PIDS+=($!)
"$BT" create -o "$WORK/data.torrent" --piece-length "$PIECE" --announce http://127.0.0.1:6969/announce "$WORK/src/data.bin" >/dev/null
sleep 0.5

# start_seeder KIND: starts a seeder of the source data on 127.0.0.2:7000.
start_seeder() {
	case "$1" in
	libtorrent)
		"$PY" "$LT" seed "$WORK/data.torrent" "$WORK/src" --listen 127.0.0.2:7000 "${LTFLAGS[@]}" >"$WORK/seed.log" 2>&1 &
		SEED_PID=$!
		until grep -q seeding "$WORK/seed.log"; do sleep 0.1; done
		;;
	btclient)
		"$BT" -o "$WORK/src" -p 7000 --discovery-mode tracker --status 127.0.0.2:7001 --quiet "$WORK/data.torrent" >"$WORK/seed.log" 2>&1 &
		SEED_PID=$!
		until curl -fs 127.0.0.2:7001/status 2>/dev/null | grep -q '"seeding"'; do sleep 0.1; done
		;;
	esac
}

stop_seeder() {
	kill "$SEED_PID" 2>/dev/null || true
	wait "$SEED_PID" 2>/dev/null || true
	SEED_PID=
}

# run_leecher KIND DIR: downloads into DIR under /usr/bin/time -v.
run_leecher() {
	local kind=$1 dir=$2
	case "$kind" in
	btclient) /usr/bin/time -v -o "$WORK/time.txt" "$BT" -o "$dir" -p 7100 --seed=false --quiet --discovery-mode tracker --peer 127.0.0.2:7000 ${BT_LEECH_FLAGS:-} "$WORK/data.torrent" >"$WORK/leech.log" 2>&1 ;;
	libtorrent) /usr/bin/time -v -o "$WORK/time.txt" "$PY" "$LT" leech "$WORK/data.torrent" "$dir" --listen 127.0.0.3:7100 --peer 127.0.0.2:7000 --timeout 600 "${LTFLAGS[@]}" >"$WORK/leech.log" 2>&1 ;;
	aria2c) /usr/bin/time -v -o "$WORK/time.txt" aria2c --dir="$dir" --seed-time=0 --enable-dht=false --enable-dht6=false --bt-enable-lpd=false --enable-peer-exchange=false --file-allocation=none --summary-interval=0 --console-log-level=warn --check-integrity=false --listen-port=7100 "$WORK/data.torrent" >"$WORK/leech.log" 2>&1 ;;
	esac
}

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

declare -A WALL RATE CPU RSS OK
PAIRS=("libtorrent btclient" "libtorrent libtorrent" "libtorrent aria2c" "btclient btclient" "btclient libtorrent")
if [ -n "${ONLY:-}" ]; then
	PAIRS=()
	for p in ${ONLY//,/ }; do PAIRS+=("${p/:/ }"); done
fi
# run_state STATE: every pair in STATE (warm or cold).
run_state() {
	local state=$1
	for pair in "${PAIRS[@]}"; do
		read -r seed leech <<<"$pair"
		walls=() cpus=() rsss=() ok=yes
		for rep in $(seq $((1 - ${WARMUP:-1})) "$REPS"); do
			dir="$WORK/dst-$rep"
			rm -rf "$dir" && mkdir -p "$dir"
			if [ "$state" = warm ]; then cat "$WORK/src/data.bin" >/dev/null; fi
			start_seeder "$seed"
			if [ "$state" = cold ]; then sync; echo 1 >/proc/sys/vm/drop_caches 2>/dev/null || true; sleep "${SETTLE:-0}"; fi
			t0=$(date +%s.%N)
			if ! run_leecher "$leech" "$dir"; then ok=no; echo "$seed → $leech run $rep failed:" >&2; tail -5 "$WORK/leech.log" >&2; fi
			t1=$(date +%s.%N)
			got=$(sha256sum "$dir/data.bin" 2>/dev/null | cut -d' ' -f1 || true)
			[ "$got" = "$WANT" ] || ok=no
			wall=$(echo "$t1 - $t0" | bc -l)
			u=$(awk -F': ' '/User time/ {print $2}' "$WORK/time.txt")
			s=$(awk -F': ' '/System time/ {print $2}' "$WORK/time.txt")
			cpu=$(echo "$u + $s" | bc -l)
			rss=$(awk -F': ' '/Maximum resident/ {print $2}' "$WORK/time.txt")
			rm -rf "$dir"
			stop_seeder
			if [ "$rep" -lt 1 ]; then
				echo "  $state $seed → $leech warm-up (not counted): $wall s, cpu $cpu s, rss $rss KiB" >&2
				continue
			fi
			walls+=("$wall") cpus+=("$cpu") rsss+=("$rss")
			echo "  $state $seed → $leech run $rep: $wall s, cpu $cpu s, rss $rss KiB" >&2
		done
		key="$state $seed→$leech"
		WALL[$key]=$(printf '%s\n' "${walls[@]}" | median)
		CPU[$key]=$(printf '%s\n' "${cpus[@]}" | median)
		RSS[$key]=$(printf '%s\n' "${rsss[@]}" | median)
		RATE[$key]=$(echo "$SIZE_MIB / ${WALL[$key]}" | bc -l)
		OK[$key]=$ok
	done
}
for state in $STATES; do run_state "$state"; done

# ratio STATE A B: how many times faster pair A is than pair B (wall B / wall A).
ratio() {
	local a="$1 $2" b="$1 $3"
	[ -n "${WALL[$a]:-}" ] && [ -n "${WALL[$b]:-}" ] || { echo n/a; return; }
	printf '%.2fx' "$(echo "${WALL[$b]} / ${WALL[$a]}" | bc -l)"
}
for state in $STATES; do
	echo
	echo "loopback, $state, ${SIZE_MIB} MiB, piece ${PIECE}, libtorrent $([ "$LT_TUNED" = 1 ] && echo "high_performance_seed()" || echo defaults), median of ${REPS} after ${WARMUP:-1} warm-up${SETTLE:+, ${SETTLE} s settle}, seeders restarted per run, $(date -u +%Y-%m-%d), $(nproc) cores"
	printf '%-26s %8s %9s %9s %10s %7s\n' "seeder → leecher" "wall s" "MiB/s" "CPU s" "RSS MiB" sha256
	for pair in "${PAIRS[@]}"; do
		read -r seed leech <<<"$pair"
		key="$state $seed→$leech"
		printf '%-26s %8.2f %9.0f %9.2f %10.1f %7s\n' "$seed → $leech" "${WALL[$key]}" "${RATE[$key]}" "${CPU[$key]}" "$(echo "${RSS[$key]} / 1024" | bc -l)" "${OK[$key]}"
	done
	echo "btclient pair / libtorrent pair (throughput):                 $(ratio "$state" "btclient→btclient" "libtorrent→libtorrent")"
	echo "libtorrent→btclient / libtorrent→libtorrent (throughput):     $(ratio "$state" "libtorrent→btclient" "libtorrent→libtorrent")"
	for k in "btclient→btclient" "libtorrent→btclient"; do
		[ -n "${CPU["$state $k"]:-}" ] || continue
		printf 'btclient leecher of %-22s %.2f CPU s per GiB, %.1f MiB RSS\n' "${k%→*}:" "$(echo "${CPU["$state $k"]} * 1024 / $SIZE_MIB" | bc -l)" "$(echo "${RSS["$state $k"]} / 1024" | bc -l)"
	done
done
