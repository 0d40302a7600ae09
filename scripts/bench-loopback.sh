#!/usr/bin/env bash
# Times a 1 GiB download on loopback for each seeder → leecher pair and prints
# a table of medians over REPS runs: wall seconds, MiB/s, leecher CPU seconds,
# leecher peak RSS (from /usr/bin/time -v), and whether the sha256 matched.
#
#   scripts/bench-loopback.sh            # SIZE_MIB=1024 REPS=3
#   SIZE_MIB=256 REPS=1 scripts/bench-loopback.sh
#   ONLY="btclient:btclient" scripts/bench-loopback.sh   # a subset of pairs
#
# Before every run the page cache is dropped, so seeders read from disk as
# they would after a reboot; COLD=0 keeps it warm. SETTLE=5 then waits 5 s:
# this VM hands freed memory back to its host about 2 s after it is freed,
# and a page the host took back costs a fault on first touch, so without a
# wait a run races that hand-back; with one, every run starts cold.
#
# libtorrent's seeder reads through mmap and keeps its copy mapped, and the
# kernel does not drop mapped pages: after its first upload it serves from
# memory however often the cache is dropped, where btclient's seeder reads
# from disk every run. RESTART=1 starts the seeder anew before every run, so
# that every seeder reads from disk.
#
# Each pair first makes WARMUP (default 1) downloads that are printed but not
# counted: in this VM the first download after a seeder starts was the
# slowest of its pair for every pair (memory the kernel has handed back to
# the host costs a host fault on first touch), so counting it made a median
# depend on which pair drew two slow runs. For a libtorrent seeder it is also
# the only download served from disk (see above).
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
REPS=${REPS:-3}
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
		"$PY" "$LT" seed "$WORK/data.torrent" "$WORK/src" --listen 127.0.0.2:7000 >"$WORK/seed.log" 2>&1 &
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
	btclient) /usr/bin/time -v -o "$WORK/time.txt" "$BT" -o "$dir" -p 7100 --seed=false --quiet --discovery-mode tracker --peer 127.0.0.2:7000 "$WORK/data.torrent" >"$WORK/leech.log" 2>&1 ;;
	libtorrent) /usr/bin/time -v -o "$WORK/time.txt" "$PY" "$LT" leech "$WORK/data.torrent" "$dir" --listen 127.0.0.3:7100 --peer 127.0.0.2:7000 --timeout 600 >"$WORK/leech.log" 2>&1 ;;
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
for pair in "${PAIRS[@]}"; do
	read -r seed leech <<<"$pair"
	if [ "${RESTART:-0}" != 1 ]; then start_seeder "$seed"; fi
	walls=() cpus=() rsss=() ok=yes
	for rep in $(seq $((1 - ${WARMUP:-1})) "$REPS"); do
		dir="$WORK/dst-$rep"
		rm -rf "$dir" && mkdir -p "$dir"
		if [ "${RESTART:-0}" = 1 ]; then start_seeder "$seed"; fi
		if [ "${COLD:-1}" = 1 ]; then sync; echo 1 >/proc/sys/vm/drop_caches 2>/dev/null || true; sleep "${SETTLE:-0}"; fi
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
		if [ "${RESTART:-0}" = 1 ]; then stop_seeder; fi
		if [ "$rep" -lt 1 ]; then
			echo "  $seed → $leech warm-up (not counted): $wall s, cpu $cpu s, rss $rss KiB" >&2
			continue
		fi
		walls+=("$wall") cpus+=("$cpu") rsss+=("$rss")
		echo "  $seed → $leech run $rep: $wall s, cpu $cpu s, rss $rss KiB" >&2
	done
	stop_seeder
	key="$seed→$leech"
	WALL[$key]=$(printf '%s\n' "${walls[@]}" | median)
	CPU[$key]=$(printf '%s\n' "${cpus[@]}" | median)
	RSS[$key]=$(printf '%s\n' "${rsss[@]}" | median)
	RATE[$key]=$(echo "$SIZE_MIB / ${WALL[$key]}" | bc -l)
	OK[$key]=$ok
done

echo
echo "loopback, ${SIZE_MIB} MiB, piece ${PIECE}, median of ${REPS} after ${WARMUP:-1} warm-up${SETTLE:+, ${SETTLE} s settle}$([ "${RESTART:-0}" = 1 ] && echo ", seeder restarted per run"), $(date -u +%Y-%m-%d), $(nproc) cores"
printf '%-26s %8s %9s %9s %10s %7s\n' "seeder → leecher" "wall s" "MiB/s" "CPU s" "RSS MiB" sha256
for pair in "${PAIRS[@]}"; do
	read -r seed leech <<<"$pair"
	key="$seed→$leech"
	printf '%-26s %8.2f %9.0f %9.2f %10.1f %7s\n' "$seed → $leech" "${WALL[$key]}" "${RATE[$key]}" "${CPU[$key]}" "$(echo "${RSS[$key]} / 1024" | bc -l)" "${OK[$key]}"
done
echo
if [ -n "${ONLY:-}" ]; then exit 0; fi # the ratios need every pair
lt_lt=${WALL["libtorrent→libtorrent"]}
printf 'libtorrent→btclient throughput / libtorrent→libtorrent: %.2fx\n' "$(echo "$lt_lt / ${WALL["libtorrent→btclient"]}" | bc -l)"
printf 'btclient→btclient throughput / libtorrent→libtorrent:   %.2fx\n' "$(echo "$lt_lt / ${WALL["btclient→btclient"]}" | bc -l)"
printf 'btclient CPU s per GiB (from libtorrent): %.2f; aria2c: %.2f\n' \
	"$(echo "${CPU["libtorrent→btclient"]} * 1024 / $SIZE_MIB" | bc -l)" "$(echo "${CPU["libtorrent→aria2c"]} * 1024 / $SIZE_MIB" | bc -l)"
