#!/usr/bin/env bash
# A local swarm on loopback, found through the overlay alone:
#   - makes a random sample file (DEMO_SIZE_MIB, default 48) and its torrent,
#     which names no tracker;
#   - starts one seeder and DEMO_LEECHERS (default 3) leechers, each with its own
#     explicit peer-wire, overlay and status ports and --advertise 127.0.0.1;
#     every leecher bootstraps through the seeder's overlay port and nothing else
#     (--discovery-mode overlay: no tracker, no --peer);
#   - caps the seeder's upload at DEMO_SEED_RATE (default 8MiB/s; 0 = none) so
#     the progress is visible for a few seconds and the leechers visibly trade
#     pieces among themselves;
#   - prints one progress line per node every second from each node's /status;
#   - when every leecher is seeding, prints where the files landed and checks
#     that each one's sha256 matches the original;
#   - stops every process with SIGTERM (by PID) and removes the temp dir.
# Exits non-zero if anything fails or takes longer than DEMO_TIMEOUT seconds
# (default 45). Nothing is left running: an EXIT trap cleans up.
#
# Usage: scripts/demo.sh        (or `make demo`, which builds bin/btclient first)
# Env:   DEMO_BIN (default bin/btclient, built if missing), DEMO_SIZE_MIB,
#        DEMO_LEECHERS, DEMO_SEED_RATE, DEMO_TIMEOUT, DEMO_KEEP=1 keeps the temp dir.
set -euo pipefail
cd "$(dirname "$0")/.."

size_mib=${DEMO_SIZE_MIB:-48}
leechers=${DEMO_LEECHERS:-3}
timeout_s=${DEMO_TIMEOUT:-45}
seed_rate=${DEMO_SEED_RATE:-8MiB}
bin=${DEMO_BIN:-bin/btclient}

say() { printf '%s\n' "$*"; }
die() { printf 'demo: FAIL: %s\n' "$*" >&2; exit 1; }

if [ ! -x "$bin" ]; then
	say "== building $bin"
	mkdir -p "$(dirname "$bin")"
	CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$bin" ./cmd/btclient
fi
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")

sha256() {
	if command -v sha256sum >/dev/null; then sha256sum "$1" | cut -d' ' -f1
	else shasum -a 256 "$1" | cut -d' ' -f1; fi
}

work=$(mktemp -d "${TMPDIR:-/tmp}/btclient-demo.XXXXXX")
pids=()
names=()
cleanup() {
	local rc=$?
	if [ "${#pids[@]}" -gt 0 ]; then
		for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
		# Give each a bounded time to announce `stopped` and exit, then SIGKILL.
		for _ in $(seq 1 50); do
			local alive=0
			for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
			[ "$alive" -eq 0 ] && break
			sleep 0.2
		done
		for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
	fi
	if [ "$rc" -ne 0 ]; then
		for i in "${!names[@]}"; do
			printf '\n--- last log lines of %s ---\n' "${names[$i]}" >&2
			tail -n 15 "$work/${names[$i]}.log" >&2 2>/dev/null || true
		done
	fi
	if [ "${DEMO_KEEP:-}" = 1 ]; then say "kept $work"; else rm -rf "$work"; fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# port_free PORT: true when nothing on loopback accepts connections on PORT.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# Three explicit ports per node from a random base in 20000-31999, each checked
# free: below Linux's ephemeral range (32768+), so outgoing connections made
# meanwhile cannot take one of them.
next_port=$((20000 + RANDOM % 12000))
take_port() {
	while ! port_free "$next_port"; do next_port=$((next_port + 1)); done
	port=$next_port
	next_port=$((next_port + 1))
}

say "== making a ${size_mib} MiB sample file and its torrent in $work"
mkdir -p "$work/seeder"
head -c "$((size_mib * 1024 * 1024))" /dev/urandom >"$work/seeder/sample.bin"
"$bin" create -o "$work/sample.torrent" "$work/seeder/sample.bin" >/dev/null
want=$(sha256 "$work/seeder/sample.bin")
"$bin" info "$work/sample.torrent" | sed -n '1,5p' | sed 's/^/   /'

# start NAME OUTDIR BOOTSTRAP [FLAG...]: start one node in the background.
declare -A status_of
start() {
	local name=$1 out=$2 boot=$3 wire overlay status
	shift 3
	take_port; wire=$port
	take_port; overlay=$port
	take_port; status=$port
	local args=(--quiet --out "$out" --port "$wire" --overlay-port "$overlay"
		--advertise 127.0.0.1 --discovery-mode overlay --status "127.0.0.1:$status")
	[ -n "$boot" ] && args+=(--bootstrap "$boot")
	args+=("$@")
	mkdir -p "$out"
	"$bin" "${args[@]}" "$work/sample.torrent" >"$work/$name.log" 2>&1 &
	pids+=("$!")
	names+=("$name")
	status_of[$name]=$status
	printf '   %-9s pid %-7s peer-wire :%s  overlay :%s  status :%s%s\n' "$name" "$!" "$wire" "$overlay" "$status" \
		"${boot:+  bootstrap $boot}"
	last_overlay=$overlay
}

# field JSON NAME: the value of a top-level scalar field of a flat JSON object.
field() { sed -n "s/.*\"$2\":\"\{0,1\}\([^\",}]*\).*/\1/p" <<<"$1"; }
status() { "$bin" probe --quiet --timeout 2s --print "http://127.0.0.1:${status_of[$1]}/status" 2>/dev/null || true; }
human() { awk -v b="$1" 'BEGIN { split("B KiB MiB GiB", u); i = 1; while (b >= 1024 && i < 4) { b /= 1024; i++ } printf (i == 1 ? "%d %s" : "%.1f %s"), b, u[i] }'; }

say "== starting a seeder and $leechers leechers (peers found through the overlay only)"
start seeder "$work/seeder" "" --max-upload-rate "$seed_rate"
seed_overlay=$last_overlay
for i in $(seq 1 "$leechers"); do
	start "leecher$i" "$work/leecher$i" "127.0.0.1:$seed_overlay"
done

say "== progress (one line per node each second, from its /status)"
t0=$(date +%s)
while :; do
	sleep 1
	all_done=1
	elapsed=$(($(date +%s) - t0))
	for i in "${!names[@]}"; do
		name=${names[$i]}
		kill -0 "${pids[$i]}" 2>/dev/null || die "$name exited early (see its log below)"
		js=$(status "$name")
		st=$(field "$js" state); done_b=$(field "$js" done); size_b=$(field "$js" size)
		peers=$(field "$js" peers); down=$(field "$js" down_rate); up=$(field "$js" up_rate)
		pct="?"
		[ -n "$size_b" ] && [ "$size_b" -gt 0 ] && pct=$((done_b * 100 / size_b))
		printf '%4ss  %-9s %3s%%  %-11s %2s peers  down %10s/s  up %10s/s\n' "$elapsed" "$name" "$pct" "${st:-no answer}" \
			"${peers:-?}" "$(human "${down%.*}")" "$(human "${up%.*}")"
		[ "$st" = seeding ] || all_done=0
	done
	[ "$all_done" -eq 1 ] && break
	[ "$elapsed" -ge "$timeout_s" ] && die "not every node finished within ${timeout_s}s"
done
say "== every node is seeding after ${elapsed}s; payload moved this run:"
for name in "${names[@]}"; do
	js=$(status "$name")
	printf '   %-9s downloaded %10s   uploaded %10s\n' "$name" "$(human "$(field "$js" downloaded)")" "$(human "$(field "$js" uploaded)")"
done

say "== where the files landed (removed at exit; DEMO_KEEP=1 keeps them), sha256 of the original: $want"
fail=0
for i in $(seq 1 "$leechers"); do
	f="$work/leecher$i/sample.bin"
	got=$(sha256 "$f" 2>/dev/null || echo missing)
	if [ "$got" = "$want" ]; then verdict=OK; else verdict="MISMATCH ($got)"; fail=1; fi
	printf '   %s  %s  sha256 %s\n' "$f" "$(human "$(wc -c <"$f")")" "$verdict"
done
[ "$fail" -eq 0 ] || die "a downloaded file differs from the original"

say "== stopping every node (SIGTERM) and cleaning up"
for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
for i in "${!pids[@]}"; do
	for _ in $(seq 1 75); do kill -0 "${pids[$i]}" 2>/dev/null || break; sleep 0.2; done
	kill -0 "${pids[$i]}" 2>/dev/null && die "${names[$i]} still running 15s after SIGTERM"
	rc=0
	wait "${pids[$i]}" || rc=$?
	[ "$rc" -eq 0 ] || die "${names[$i]} exited with status $rc after SIGTERM"
done
pids=()
say "demo: PASS: $leechers leechers downloaded ${size_mib} MiB through the overlay and verified it in ${elapsed}s"
