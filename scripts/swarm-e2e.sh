#!/usr/bin/env bash
# End-to-end run of the Docker image and docker-stack.yml on a single-node swarm.
#
#   1. builds the static binary and the FROM scratch image (checks < 20 MB and a
#      non-root USER);
#   2. initialises a single-node swarm if this engine is in none (and leaves it
#      again at the end; an existing swarm is left alone);
#   3. run 1: makes a random file (SWARM_E2E_MIB, default 40 MiB) and its
#      torrent, deploys the stack (1 seeder, 5 leechers that find each other
#      only through the overlay, bootstrapping via tasks.seeder/tasks.leecher),
#      waits until every leecher's /status says seeding with done == size, and
#      checks each replica's file by sha256 (each task downloads into its own
#      bind-mounted directory, named after the task);
#   4. run 2: deploys again with the seeder capped at 2 MiB/s, `docker kill`s
#      two leechers midway, and checks that the three others finish (as the
#      same containers) and that the replacement tasks Swarm starts finish too,
#      with the right bytes;
#   5. tears everything down (stack, network, config, files).
# Every wait is bounded; the last line is a PASS/FAIL summary; the exit status
# is non-zero on failure. Without a Docker engine it prints that it skips and
# exits 0. If `docker swarm init` fails, it prints the error and runs the same
# stack file with docker-compose instead (an override swaps what Compose lacks:
# the overlay network, tasks.* names and per-task templates), and says so.
#
# Usage: scripts/swarm-e2e.sh          the whole run (make docker-e2e)
#        scripts/swarm-e2e.sh image    only build bin/btclient and the image
# Env:   SWARM_E2E_IMAGE (default btclient:latest), SWARM_E2E_MIB,
#        SWARM_E2E_MODE=compose forces the docker-compose path,
#        SWARM_E2E_KEEP=1 keeps the work dir.
set -euo pipefail
cd "$(dirname "$0")/.."

image=${SWARM_E2E_IMAGE:-btclient:latest}
mib=${SWARM_E2E_MIB:-40}
leechers=5
stack=btce2e
max_image_bytes=$((20 * 1000 * 1000))
t_start=$(date +%s)

say() { printf '[%3ss] %s\n' "$(($(date +%s) - t_start))" "$*"; }
# The PASS/FAIL line is printed last, by the EXIT trap, after the teardown.
summary=""
summary_fail() {
	summary="swarm-e2e: FAIL: $*"
	exit 1
}

# ---------------------------------------------------------------- the image
build_image() {
	say "building bin/btclient (static) and image $image"
	CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o bin/btclient ./cmd/btclient
	# A scratch image has no shell to create users or directories, so the
	# files it needs are staged here (bin/ is git-ignored; .dockerignore lets
	# only bin/btclient and bin/docker/ into the build context).
	rm -rf bin/docker
	mkdir -p bin/docker/etc bin/docker/data
	printf 'btclient:x:10001:10001:btclient:/data:/btclient\n' >bin/docker/etc/passwd
	printf 'btclient:x:10001:\n' >bin/docker/etc/group
	local out
	if ! out=$(docker build -t "$image" . 2>&1); then
		printf '%s\n' "$out" >&2
		return 1
	fi
	image_bytes=$(docker image inspect -f '{{.Size}}' "$image")
	image_user=$(docker image inspect -f '{{.Config.User}}' "$image")
	say "image $image: $image_bytes bytes ($(awk -v b="$image_bytes" 'BEGIN{printf "%.1f MB", b/1e6}')), USER $image_user"
	[ "$image_bytes" -lt "$max_image_bytes" ] || { echo "image is $image_bytes bytes, over 20 MB" >&2; return 1; }
	case "${image_user%%:*}" in
	"" | 0 | root) echo "image runs as root (USER '$image_user')" >&2; return 1 ;;
	esac
}

if ! docker info >/dev/null 2>&1; then
	echo "docker engine not available: skipping swarm e2e"
	exit 0
fi

if [ "${1:-}" = image ]; then
	build_image || summary_fail "image build"
	exit 0
fi

# ------------------------------------------------------------- state, cleanup
mode=swarm
created_swarm=0
had_gwbridge=1
deployed=0
work=$(mktemp -d "${TMPDIR:-/tmp}/btclient-swarm-e2e.XXXXXX")
compose_override=$work/compose-override.yml

compose() { docker-compose -p "$stack" -f docker-stack.yml -f "$compose_override" "$@"; }

undeploy() {
	[ "$deployed" -eq 1 ] || return 0
	if [ "$mode" = swarm ]; then
		docker stack rm "$stack" >/dev/null 2>&1 || true
		# Bounded wait until the containers, network and config are gone, so a
		# following deploy can reuse the names.
		for _ in $(seq 1 60); do
			if [ -z "$(docker ps -aq --filter "label=com.docker.stack.namespace=$stack")" ] &&
				[ -z "$(docker network ls -q --filter "label=com.docker.stack.namespace=$stack")" ] &&
				[ -z "$(docker config ls -q --filter "label=com.docker.stack.namespace=$stack")" ]; then
				break
			fi
			sleep 1
		done
	else
		compose down -v --remove-orphans -t 5 >/dev/null 2>&1 || true
	fi
	deployed=0
}

cleanup() {
	local rc=$?
	set +e
	if [ "$rc" -ne 0 ] && [ "$deployed" -eq 1 ]; then
		echo "--- diagnostics ---" >&2
		if [ "$mode" = swarm ]; then
			docker service ps --no-trunc "${stack}_seeder" "${stack}_leecher" 2>&1 | head -30 >&2
			for s in seeder leecher; do
				echo "--- last log lines of ${stack}_$s ---" >&2
				docker service logs --tail 8 "${stack}_$s" 2>&1 | cut -c1-300 >&2
			done
		else
			compose ps >&2
			compose logs --tail 8 2>&1 | cut -c1-300 >&2
		fi
	fi
	undeploy
	if [ "$created_swarm" -eq 1 ]; then
		docker swarm leave --force >/dev/null 2>&1 && say "left the swarm this script created"
		if [ "$had_gwbridge" -eq 0 ]; then docker network rm docker_gwbridge >/dev/null 2>&1 || true; fi
	fi
	if [ "${SWARM_E2E_KEEP:-}" = 1 ]; then say "kept $work"; else rm -rf "$work"; fi
	if [ -z "$summary" ] && [ "$rc" -ne 0 ]; then summary="swarm-e2e: FAIL: exit status $rc (see above)"; fi
	[ -z "$summary" ] || printf '%s\n' "$summary"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

build_image || summary_fail "image build"

# ------------------------------------------------------------------- swarm
if [ "${SWARM_E2E_MODE:-}" = compose ]; then
	mode=compose
	say "SWARM_E2E_MODE=compose: running the stack with docker-compose instead of swarm mode"
else
	state=$(docker info --format '{{.Swarm.LocalNodeState}}')
	if [ "$state" = active ]; then
		if [ "$(docker info --format '{{.Swarm.ControlAvailable}}')" != true ]; then
			summary_fail "this engine is a swarm worker; run on a manager"
		fi
		say "using the existing swarm"
	else
		had_gwbridge=0
		docker network inspect docker_gwbridge >/dev/null 2>&1 && had_gwbridge=1
		if err=$(docker swarm init --advertise-addr 127.0.0.1 2>&1); then
			created_swarm=1
			say "initialised a single-node swarm (it is left again at the end)"
		else
			echo "docker swarm init --advertise-addr 127.0.0.1 failed:"
			printf '%s\n' "$err" | sed 's/^/    /'
			echo "swarm mode is not available here: running the same stack with docker-compose instead"
			mode=compose
		fi
	fi
fi
if [ "$mode" = compose ] && ! command -v docker-compose >/dev/null; then
	summary_fail "no swarm mode and no docker-compose"
fi

# ----------------------------------------------------------------- content
sha256() { sha256sum | cut -d' ' -f1; }
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
status_port=$((20000 + RANDOM % 12000))
while ! port_free "$status_port"; do status_port=$((status_port + 1)); done

say "making a random $mib MiB file and its torrent in $work"
mkdir -p "$work/seed"
head -c "$((mib * 1024 * 1024))" /dev/urandom >"$work/seed/content.bin"
bin/btclient create -o "$work/content.torrent" "$work/seed/content.bin" >/dev/null
want=$(sha256 <"$work/seed/content.bin")
size=$((mib * 1024 * 1024))

export STACK_IMAGE=$image STACK_TORRENT=$work/content.torrent STACK_SEED_DIR=$work/seed
export STACK_LEECHERS=$leechers STACK_STATUS_PORT=$status_port
# The leechers write as uid 10001; a non-root caller runs them as itself
# instead (still not root) so it can delete what they wrote.
if [ "$(id -u)" -ne 0 ]; then export STACK_USER="$(id -u):$(id -g)"; fi

if [ "$mode" = compose ]; then
	# What Compose lacks: no overlay network or tasks.* names (a service name
	# resolves to all its containers instead), no {{.Task.*}} templates (each
	# leecher downloads into its own anonymous volume, read back with docker
	# cp), no configs (the torrent is bind-mounted where the config would be).
	cat >"$compose_override" <<-EOF
		version: "3.8"
		services:
		  seeder:
		    hostname: seeder
		    restart: always
		    environment:
		      BTCLIENT_BOOTSTRAP: seeder:6000,leecher:6000
		    volumes:
		      - type: bind
		        source: $work/content.torrent
		        target: /run/btclient/content.torrent
		        read_only: true
		  leecher:
		    hostname: leecher
		    restart: always
		    depends_on: [seeder]
		    environment:
		      BTCLIENT_BOOTSTRAP: seeder:6000,leecher:6000
		      BTCLIENT_OUT: /data/out
		    volumes:
		      - type: volume
		        target: /data
		      - type: bind
		        source: $work/content.torrent
		        target: /run/btclient/content.torrent
		        read_only: true
		networks:
		  btnet:
		    driver: bridge
		    attachable: false
	EOF
fi

# ------------------------------------------------------------ helpers
deploy() { # deploy LEECH_DIR SEED_RATE
	export STACK_LEECH_DIR=$1 STACK_SEED_RATE=$2
	mkdir -p "$STACK_LEECH_DIR"
	chmod 0777 "$STACK_LEECH_DIR"
	deployed=1
	local out
	if [ "$mode" = swarm ]; then
		out=$(docker stack deploy -c docker-stack.yml "$stack" 2>&1) || { printf '%s\n' "$out" >&2; return 1; }
	else
		out=$(compose up -d --scale "leecher=$leechers" 2>&1) || { printf '%s\n' "$out" >&2; return 1; }
	fi
}

# leecher_containers: IDs of the running leecher containers.
leecher_containers() {
	if [ "$mode" = swarm ]; then
		docker ps -q --filter "label=com.docker.swarm.service.name=${stack}_leecher" --filter status=running
	else
		docker ps -q --filter "label=com.docker.compose.project=$stack" --filter "label=com.docker.compose.service=leecher" --filter status=running
	fi
}

# status C: the /status JSON of container C, read with the image's own binary
# (docker exec needs no shell in the image).
status() { docker exec "$1" /btclient probe --quiet --timeout 2s --print http://127.0.0.1:9000/status 2>/dev/null || true; }
field() { sed -n "s/.*\"$2\":\"\{0,1\}\([^\",}]*\).*/\1/p" <<<"$1"; }

# poll: refresh cs (running leecher containers), n_done and a progress line.
declare -A pct_of
poll() {
	mapfile -t cs < <(leecher_containers)
	n_done=0
	local line="" c js st d sz
	for c in "${cs[@]}"; do
		js=$(status "$c")
		st=$(field "$js" state); d=$(field "$js" done); sz=$(field "$js" size)
		pct_of[$c]=-1
		if [ -n "$d" ] && [ -n "$sz" ] && [ "$sz" -gt 0 ]; then pct_of[$c]=$((d * 100 / sz)); fi
		if [ "$st" = seeding ] && [ "$d" = "$size" ]; then n_done=$((n_done + 1)); fi
		line+=" ${c:0:6}:${pct_of[$c]}%"
	done
	progress="${#cs[@]} running, $n_done seeding |$line"
}

# wait_all_done TIMEOUT: until $leechers leechers run and all report seeding
# with done == size.
wait_all_done() {
	local deadline=$(($(date +%s) + $1)) last=0
	while :; do
		poll
		if [ "$(date +%s)" -ge $((last + 3)) ]; then say "  $progress"; last=$(date +%s); fi
		[ "${#cs[@]}" -eq "$leechers" ] && [ "$n_done" -eq "$leechers" ] && return 0
		[ "$(date +%s)" -ge "$deadline" ] && { say "  $progress"; return 1; }
		sleep 1
	done
}

# task_dir C: the host directory container C downloads into.
task_name() { docker inspect -f '{{index .Config.Labels "com.docker.swarm.task.name"}}' "$1"; }

# check_bytes: every running leecher's file has the original's sha256, and its
# process runs as non-root.
check_bytes() {
	local c got uid bad=0
	for c in "${cs[@]}"; do
		if [ "$mode" = swarm ]; then
			local tn
			tn=$(task_name "$c")
			got=$(sha256 <"$STACK_LEECH_DIR/$tn/content.bin" 2>/dev/null || echo missing)
			where="$STACK_LEECH_DIR/$tn/content.bin"
		else
			got=$(docker cp "$c:/data/out/content.bin" - 2>/dev/null | tar -xO 2>/dev/null | sha256 || echo missing)
			where="$c:/data/out/content.bin"
		fi
		uid=$(docker top "$c" 2>/dev/null | awk 'NR==2{print $1}')
		if [ "$got" = "$want" ] && [ -n "$uid" ] && [ "$uid" != 0 ] && [ "$uid" != root ]; then
			say "  OK   ${c:0:12} uid $uid  $where"
		else
			say "  BAD  ${c:0:12} uid ${uid:-?}  $where  sha256 $got"
			bad=1
		fi
	done
	return "$bad"
}

seeder_status() {
	bin/btclient probe --quiet --timeout 2s --print "http://127.0.0.1:$status_port/status" 2>/dev/null || true
}

# ------------------------------------------------------------------- run 1
say "run 1: deploying 1 seeder + $leechers leechers ($mode); want sha256 $want"
r1_start=$(date +%s)
deploy "$work/leech1" 0 || summary_fail "run 1: deploy failed"
wait_all_done 150 || summary_fail "run 1: not every leecher finished within 150 s"
r1_secs=$(($(date +%s) - r1_start))
say "run 1: all $leechers leechers seeding after ${r1_secs}s; checking bytes"
check_bytes || summary_fail "run 1: a leecher's bytes are wrong"
js=$(seeder_status)
[ "$(field "$js" state)" = seeding ] || summary_fail "run 1: the seeder's /status, published on host port $status_port, does not say seeding: $js"
say "run 1: seeder /status on host port $status_port: uploaded $(field "$js" uploaded) bytes"
undeploy

# ------------------------------------------------------------------- run 2
say "run 2: deploying again with the seeder capped at 2 MiB/s; two leechers get killed midway"
r2_start=$(date +%s)
deploy "$work/leech2" 2MiB || summary_fail "run 2: deploy failed"
declare -a victims=()
deadline=$(($(date +%s) + 120))
last=0
while :; do
	poll
	if [ "$(date +%s)" -ge $((last + 3)) ]; then say "  $progress"; last=$(date +%s); fi
	if [ "${#cs[@]}" -eq "$leechers" ]; then
		victims=()
		for c in "${cs[@]}"; do
			p=${pct_of[$c]}
			if [ "$p" -ge 15 ] && [ "$p" -le 85 ]; then victims+=("$c"); fi
		done
		[ "${#victims[@]}" -ge 2 ] && break
	fi
	[ "$n_done" -gt 0 ] && summary_fail "run 2: a leecher finished before two were midway; nothing to kill (raise SWARM_E2E_MIB)"
	[ "$(date +%s)" -ge "$deadline" ] && summary_fail "run 2: two leechers never got midway within 120 s"
	sleep 1
done
victims=("${victims[@]:0:2}")
survivors=()
for c in "${cs[@]}"; do
	[ "$c" = "${victims[0]}" ] || [ "$c" = "${victims[1]}" ] || survivors+=("$c")
done
kill_secs=$(($(date +%s) - r2_start))
say "run 2: docker kill ${victims[0]:0:12} (${pct_of[${victims[0]}]}%) and ${victims[1]:0:12} (${pct_of[${victims[1]}]}%) after ${kill_secs}s"
docker kill "${victims[@]}" >/dev/null
if [ "$mode" = compose ]; then
	# Compose has no orchestrator replacing killed containers: start them again.
	sleep 2
	compose up -d --no-recreate --scale "leecher=$leechers" >/dev/null 2>&1 || true
fi
wait_all_done 150 || summary_fail "run 2: not every leecher (survivors and replacements) finished within 150 s of the kill"
r2_secs=$(($(date +%s) - r2_start))
for c in "${survivors[@]}"; do
	printf '%s\n' "${cs[@]}" | grep -qx "$c" || summary_fail "run 2: survivor ${c:0:12} did not finish as the same container"
done
replacements=0
for c in "${cs[@]}"; do
	printf '%s\n' "${survivors[@]}" | grep -qx "$c" || replacements=$((replacements + 1))
done
if [ "$mode" = swarm ] && [ "$replacements" -lt 2 ]; then
	summary_fail "run 2: expected 2 replacement tasks among the finished leechers, found $replacements"
fi
say "run 2: ${#survivors[@]} survivors and $replacements replacement(s) seeding after ${r2_secs}s; checking bytes"
check_bytes || summary_fail "run 2: a leecher's bytes are wrong"
undeploy

total=$(($(date +%s) - t_start))
repl_word="replacement tasks"
[ "$mode" = swarm ] || repl_word="restarted containers"
summary=$(printf 'swarm-e2e: PASS (%s): image %s bytes, non-root; run 1: %d/%d leechers verified in %ss; run 2: 2 killed at %ss, 3 survivors + %d %s verified in %ss; total %ss\n' \
	"$mode" "$image_bytes" "$leechers" "$leechers" "$r1_secs" "$kill_secs" "$replacements" "$repl_word" "$r2_secs" "$total")
