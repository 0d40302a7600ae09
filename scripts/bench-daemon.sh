#!/usr/bin/env bash
# Scale of one daemon: N small torrents (default 1,000) added and seeding in
# btclient daemon and in transmission-daemon, on the same data, side by side:
#   add     time from the first torrent-add until every torrent is seeding
#   restart time from start-up until the RPC answers with every torrent
#           seeding again, from resume data (nothing re-hashed)
#   RSS     the daemon's peak resident memory (VmHWM) over both phases
#   get     latency of one torrent-get of every torrent (the fields
#           transmission-remote -l asks for), median of 9
# Targets for btclient: RSS < 100 MiB and below transmission-daemon's,
# restart < 5 s, get < 100 ms. Everything stays on loopback: no tracker in
# the torrents, DHT, LPD and port mapping off.
#
# usage: scripts/bench-daemon.sh [N]       (run it under flock: it is heavy)
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-1000}"
command -v transmission-daemon >/dev/null || { echo "transmission-daemon is not installed (scripts/install-test-deps.sh)"; exit 1; }
command -v transmission-remote >/dev/null || { echo "transmission-remote is not installed"; exit 1; }
make -s build
BIN="$PWD/bin/btclient"
W=$(mktemp -d /tmp/bench-daemon.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$W"
}
trap cleanup EXIT

echo "making $N torrents of 16 KiB files in $W ..."
mkdir -p "$W/data" "$W/torrents"
head -c $((N * 16384)) /dev/urandom | split -b 16384 -a 5 -d - "$W/data/f"
for f in "$W"/data/f*; do mv "$f" "$f.bin"; done
for f in "$W"/data/*.bin; do
	"$BIN" create --piece-length 16KiB -o "$W/torrents/$(basename "$f" .bin).torrent" "$f" >/dev/null
done
torrents=("$W"/torrents/*.torrent)

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
now() { date +%s.%N; }
elapsed() { python3 -c "print(f'{$2 - $1:.2f}')"; }

# rpc URL BODY: one RPC call with the session-id handshake; prints the body.
rpc() {
	local url=$1 body=$2 sid
	sid=$(curl -s -o /dev/null -D - "$url" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-transmission-session-id"{print $2}')
	curl -s -H "X-Transmission-Session-Id: $sid" -d "$body" "$url"
}

# seeding URL: how many torrents report status 6 (seeding).
seeding() {
	rpc "$1" '{"method":"torrent-get","arguments":{"fields":["status"]}}' |
		python3 -c 'import json,sys
try: print(sum(1 for t in json.load(sys.stdin)["arguments"]["torrents"] if t["status"] == 6))
except Exception: print(0)'
}

# wait_seeding URL: until all N seed (10 minutes at most).
wait_seeding() {
	for _ in $(seq 6000); do
		[ "$(seeding "$1")" -ge "$N" ] && return 0
		sleep 0.1
	done
	echo "timed out: $(seeding "$1") of $N seeding" >&2
	return 1
}

# wait_rpc URL: until the RPC answers.
wait_rpc() {
	for _ in $(seq 3000); do
		curl -s -o /dev/null "$1" && return 0
		sleep 0.01
	done
	return 1
}

# get_latency URL: median of 9 torrent-get calls of every torrent, in ms.
get_latency() {
	local url=$1 sid
	sid=$(curl -s -o /dev/null -D - "$url" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-transmission-session-id"{print $2}')
	local body='{"method":"torrent-get","arguments":{"fields":["error","errorString","eta","id","isFinished","leftUntilDone","name","peersGettingFromUs","peersSendingToUs","rateDownload","rateUpload","sizeWhenDone","status","uploadRatio"]}}'
	for _ in $(seq 9); do
		curl -s -o /dev/null -w '%{time_total}\n' -H "X-Transmission-Session-Id: $sid" -d "$body" "$url"
	done | sort -n | sed -n 5p | python3 -c 'import sys; print(f"{float(sys.stdin.read())*1000:.1f}")'
}

peak_rss() { awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }

# idle_cpu PID: the share of one core the daemon uses over 10 s of seeding
# with no peer (its timers and bookkeeping), in percent.
idle_cpu() {
	local hz a b
	hz=$(getconf CLK_TCK)
	a=$(awk '{print $14 + $15}' "/proc/$1/stat")
	sleep 10
	b=$(awk '{print $14 + $15}' "/proc/$1/stat")
	python3 -c "print(f'{($b - $a) / $hz / 10 * 100:.1f}')"
}

# add_all HOSTPORT: transmission-remote adds every torrent, in batches.
add_all() {
	local i
	for ((i = 0; i < N; i += 100)); do
		local args=()
		for t in "${torrents[@]:i:100}"; do args+=(-a "$t"); done
		transmission-remote "$1" "${args[@]}" >/dev/null
	done
}

declare -A R

# btclient
bport=$(port)
burl="http://127.0.0.1:$bport/transmission/rpc"
bargs=(daemon --rpc-listen "127.0.0.1:$bport" -p 0 --download-dir "$W/data" --state-dir "$W/bstate"
	--discovery-mode tracker --overlay-port 0 --bind 127.0.0.1 --dht=false)
"$BIN" "${bargs[@]}" >"$W/btclient.log" 2>&1 &
bpid=$!
pids+=("$bpid")
wait_rpc "$burl"
t0=$(now)
add_all "127.0.0.1:$bport"
wait_seeding "$burl"
R[b_add]=$(elapsed "$t0" "$(now)")
R[b_get]=$(get_latency "$burl")
R[b_rss_add]=$(peak_rss "$bpid")
kill -TERM "$bpid"
wait "$bpid" || true
t0=$(now)
"$BIN" "${bargs[@]}" >"$W/btclient2.log" 2>&1 &
bpid=$!
pids+=("$bpid")
wait_rpc "$burl"
wait_seeding "$burl"
R[b_restart]=$(elapsed "$t0" "$(now)")
R[b_get2]=$(get_latency "$burl")
R[b_cpu]=$(idle_cpu "$bpid")
R[b_rss]=$(peak_rss "$bpid")
R[b_hashed]=$(grep -o 'hashed=[0-9]*' "$W/btclient2.log" | awk -F= '{s += $2} END {print s + 0}')
kill -TERM "$bpid"
wait "$bpid" || true

# transmission-daemon
tport=$(port)
turl="http://127.0.0.1:$tport/transmission/rpc"
targs=(-f -g "$W/tconfig" -w "$W/data" -p "$tport" -P "$(port)" -r 127.0.0.1 -T --no-dht --no-lpd -M
	-i 127.0.0.1 -e "$W/transmission.log")
mkdir -p "$W/tconfig"
# No queue: every torrent seeds at once, as in btclient.
cat >"$W/tconfig/settings.json" <<EOF
{"download-queue-enabled": false, "seed-queue-enabled": false, "queue-stalled-enabled": false,
 "utp-enabled": false, "pex-enabled": false, "rpc-host-whitelist-enabled": false}
EOF
transmission-daemon "${targs[@]}" >/dev/null 2>&1 &
tpid=$!
pids+=("$tpid")
wait_rpc "$turl"
t0=$(now)
add_all "127.0.0.1:$tport"
wait_seeding "$turl"
R[t_add]=$(elapsed "$t0" "$(now)")
R[t_get]=$(get_latency "$turl")
R[t_rss_add]=$(peak_rss "$tpid")
kill -TERM "$tpid"
wait "$tpid" || true
t0=$(now)
transmission-daemon "${targs[@]}" >/dev/null 2>&1 &
tpid=$!
pids+=("$tpid")
wait_rpc "$turl"
wait_seeding "$turl"
R[t_restart]=$(elapsed "$t0" "$(now)")
R[t_get2]=$(get_latency "$turl")
R[t_cpu]=$(idle_cpu "$tpid")
R[t_rss]=$(peak_rss "$tpid")
kill -TERM "$tpid"
wait "$tpid" || true

echo
echo "$N torrents of 16 KiB, one daemon each, $(nproc) cores"
printf '%-44s %12s %20s\n' "" "btclient" "transmission-daemon"
printf '%-44s %12s %20s\n' "add all and see them seeding (s)" "${R[b_add]}" "${R[t_add]}"
printf '%-44s %12s %20s\n' "restart until all seed, resume data (s)" "${R[b_restart]}" "${R[t_restart]}"
printf '%-44s %12s %20s\n' "pieces hashed at that restart" "${R[b_hashed]}" "-"
printf '%-44s %12s %20s\n' "peak RSS while adding (MiB)" "${R[b_rss_add]}" "${R[t_rss_add]}"
printf '%-44s %12s %20s\n' "peak RSS after the restart (MiB)" "${R[b_rss]}" "${R[t_rss]}"
printf '%-44s %12s %20s\n' "CPU while seeding with no peer (% of a core)" "${R[b_cpu]}" "${R[t_cpu]}"
printf '%-44s %12s %20s\n' "torrent-get of all, after adding (ms)" "${R[b_get]}" "${R[t_get]}"
printf '%-44s %12s %20s\n' "torrent-get of all, after restart (ms)" "${R[b_get2]}" "${R[t_get2]}"
echo "targets for btclient: RSS < 100 MiB and below transmission-daemon's, restart < 5 s, torrent-get < 100 ms"
