#!/usr/bin/env bash
# Installs what the tests need: Debian packages for the real peers and tools
# they run against, and staticcheck. Safe to run again; it installs only what
# is missing.
set -euo pipefail

need=()
command -v aria2c >/dev/null || need+=(aria2)
command -v transmission-cli >/dev/null || need+=(transmission-cli)
# The daemon's tests and scripts/bench-daemon.sh compare with Transmission's daemon.
command -v transmission-daemon >/dev/null || need+=(transmission-daemon)
# The web page's test drives a headless Chromium (through chromedp).
command -v chromium >/dev/null || need+=(chromium)
command -v mktorrent >/dev/null || need+=(mktorrent)
command -v dig >/dev/null || need+=(dnsutils)
command -v opentracker >/dev/null && [ -x "$(command -v opentracker)" ] || need+=(opentracker)
[ -x /usr/bin/time ] || need+=(time)
command -v column >/dev/null || need+=(bsdextrautils)
/usr/bin/python3 -c 'import libtorrent' 2>/dev/null || need+=(python3-libtorrent)

if [ ${#need[@]} -gt 0 ]; then
	echo "installing: ${need[*]}"
	SUDO=""
	[ "$(id -u)" -eq 0 ] || SUDO="sudo"
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update -qq
	$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

bin="$(cd "$(dirname "$0")/.." && pwd)/bin"
if [ ! -x "$bin/staticcheck" ]; then
	echo "installing staticcheck into $bin"
	GOBIN="$bin" go install honnef.co/go/tools/cmd/staticcheck@v0.8.2
fi
