#!/usr/bin/env bash
# One seeder capped at RATE (default 2MiB) and LEECHERS (default 5) leechers
# share SIZE_MIB (default 40) MiB. The seeder's upload is the bottleneck, so
# the floor is SIZE/RATE seconds: leechers finish near it only if they take
# different pieces from the seeder and trade them among themselves, rather
# than all asking it for the same ones. For each client of CLIENTS it runs
# the swarm RUNS times (default 5) and prints the worst run: when the last
# leecher finished against the floor, and how many times the seeder sent the
# file.
#
# CLIENTS (default all four):
#   btclient            btclient seeder and leechers (overlay), --super-seed auto
#   btclient-off        the same with --super-seed off
#   libtorrent          libtorrent seeder (capped with its torrent upload limit)
#                       and leechers, every one told the others' addresses
#   libtorrent-super    the same, the seeder with its super_seeding flag
#
#   scripts/bench-slow-seeder.sh
#   LEECHERS=20 RATE=4MiB RUNS=5 scripts/bench-slow-seeder.sh
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
LEECHERS=${LEECHERS:-5}
RUNS=${RUNS:-5}
CLIENTS=${CLIENTS:-btclient btclient-off libtorrent libtorrent-super}
BT="$ROOT/bin/btclient"
LT="$ROOT/e2e/testdata/lt.py"
PY=/usr/bin/python3
case "$RATE" in
*MiB) RATE_B=$((${RATE%MiB} * 1048576)) ;;
*KiB) RATE_B=$((${RATE%KiB} * 1024)) ;;
*) echo "RATE must be in KiB or MiB" >&2; exit 2 ;;
esac
FLOOR=$(echo "$SIZE_MIB * 1048576 / $RATE_B" | bc -l)
WORK=$(mktemp -d /tmp/btclient-bench-slow.XXXXXX)
PIDS=()
stop_all() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	PIDS=()
}
cleanup() {
	stop_all
	rm -rf "$WORK"
}
trap cleanup EXIT

mkdir -p "$WORK/src"
head -c "$((SIZE_MIB << 20))" /dev/urandom >"$WORK/src/data.bin"
WANT=$(sha256sum "$WORK/src/data.bin" | cut -d' ' -f1)
"$BT" create -o "$WORK/data.torrent" "$WORK/src/data.bin" >/dev/null

# btnode I DIR [FLAGS...]: a btclient on 127.0.0.1 ports 7000+I (peer wire),
# 7500+I (overlay) and 7900+I (status).
btnode() {
	local i=$1 dir=$2
	shift 2
	mkdir -p "$dir"
	"$BT" --quiet -o "$dir" -p $((7000 + i)) --overlay-port $((7500 + i)) --advertise 127.0.0.1 \
		--discovery-mode overlay --status 127.0.0.1:$((7900 + i)) "$@" "$WORK/data.torrent" >"$dir.log" 2>&1 &
	PIDS+=($!)
}
btstatus() { "$BT" probe --quiet --timeout 2s --print "http://127.0.0.1:$((7900 + $1))/status" 2>/dev/null || true; }

# ltnode I DIR MODE [FLAGS...]: a libtorrent peer on 127.0.0.1 port 7000+I.
ltnode() {
	local i=$1 dir=$2 mode=$3
	shift 3
	mkdir -p "$dir"
	"$PY" "$LT" "$mode" "$WORK/data.torrent" "$dir" --listen 127.0.0.1:$((7000 + i)) "$@" >"$dir.log" 2>&1 &
	PIDS+=($!)
}

# run CLIENT: one swarm; sets RESULT to "SECONDS TIMES" (last completion,
# times the seeder sent the file).
run() {
	local client=$1 i t0 t1 up
	rm -rf "$WORK/seed" "$WORK"/leech* "$WORK"/*.log "$WORK/up"
	mkdir -p "$WORK/seed"
	cp "$WORK/src/data.bin" "$WORK/seed/"
	case $client in
	btclient | btclient-off)
		local mode=auto
		[ "$client" = btclient ] || mode=off
		btnode 0 "$WORK/seed" --max-upload-rate "$RATE" --super-seed "$mode"
		until btstatus 0 | grep -q '"seeding"'; do sleep 0.1; done
		t0=$(date +%s.%N)
		for i in $(seq 1 "$LEECHERS"); do btnode "$i" "$WORK/leech$i" --bootstrap 127.0.0.1:7500; done
		;;
	libtorrent | libtorrent-super)
		local super=()
		[ "$client" = libtorrent ] || super=(--super-seed)
		ltnode 0 "$WORK/seed" seed --upload-rate "$RATE_B" --report "$WORK/up" "${super[@]}"
		until grep -q seeding "$WORK/seed.log" 2>/dev/null; do sleep 0.1; done
		local peers=(--peer 127.0.0.1:7000)
		for i in $(seq 1 "$LEECHERS"); do peers+=(--peer 127.0.0.1:$((7000 + i))); done
		t0=$(date +%s.%N)
		for i in $(seq 1 "$LEECHERS"); do ltnode "$i" "$WORK/leech$i" leech --stay --timeout 600 "${peers[@]}"; done
		;;
	esac
	local deadline=$((SECONDS + 600)) left=$LEECHERS
	local done_=()
	while [ "$left" -gt 0 ]; do
		[ $SECONDS -lt $deadline ] || { echo "$client: $left leechers not done after 600 s" >&2; exit 1; }
		for i in $(seq 1 "$LEECHERS"); do
			[ -z "${done_[$i]:-}" ] || continue
			case $client in
			btclient*) btstatus "$i" | grep -q '"seeding"' || continue ;;
			*) grep -q '^complete' "$WORK/leech$i.log" 2>/dev/null || continue ;;
			esac
			done_[i]=1
			left=$((left - 1))
		done
		sleep 0.1
	done
	t1=$(date +%s.%N)
	case $client in
	btclient*) up=$(btstatus 0 | grep -o '"uploaded":[0-9]*' | cut -d: -f2) ;;
	*)
		sleep 0.7 # a fresh report
		up=$(cat "$WORK/up")
		;;
	esac
	stop_all
	for i in $(seq 1 "$LEECHERS"); do
		got=$(sha256sum "$WORK/leech$i/data.bin" | cut -d' ' -f1)
		[ "$got" = "$WANT" ] || { echo "$client leecher $i: sha256 differs" >&2; exit 1; }
	done
	RESULT=$(printf '%.1f %.2f' "$(echo "$t1 - $t0" | bc -l)" "$(echo "${up:-0} / ($SIZE_MIB * 1048576)" | bc -l)")
}

echo "1 seeder capped at $RATE/s + $LEECHERS leechers, $SIZE_MIB MiB (floor $(printf %.1f "$FLOOR") s), $RUNS runs, $(date -u +%Y-%m-%d), $(nproc) cores"
for client in $CLIENTS; do
	worst_t=0 worst_x=0 all=""
	for r in $(seq 1 "$RUNS"); do
		run "$client"
		read -r secs times <<<"$RESULT"
		all="$all ${secs}s/${times}x"
		worst_t=$(echo "if ($secs > $worst_t) $secs else $worst_t" | bc -l)
		worst_x=$(echo "if ($times > $worst_x) $times else $worst_x" | bc -l)
	done
	printf '%-17s worst: all complete after %5.1f s = %.2fx floor; seeder sent the file %.2fx  (runs:%s)\n' \
		"$client" "$worst_t" "$(echo "$worst_t / $FLOOR" | bc -l)" "$worst_x" "$all"
done
