#!/usr/bin/env bash
# tcg-throttle-repro.sh: QEMU alone, no smig process. Does QEMU's CPU
# throttle (auto-converge) slow down a guest that dirties memory under TCG?
# The test guest rewrites a 16 MiB working set as fast as it can; it is
# migrated between two QEMUs on this host at 8 MiB/s with a 300 ms
# downtime limit, once without auto-converge and once with it, the throttle
# going straight to 99 % (cpu-throttle-initial 99). Every second it prints
# QEMU's pass count, dirty-pages-rate, remaining bytes and throttle. With
# KVM a throttled guest dirties proportionally less; measured here under
# QEMU 7.2 TCG (single-threaded) the rate goes from about 2000 to about
# 1500 pages/s at 99 % and the migration does not converge either way
# (docs/benchmarks.md, "Auto-converge under TCG").
#
#   bench/tcg-throttle-repro.sh [--seconds N]
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export SMIG_BUILD=${SMIG_BUILD:-$root/build}
. "$root/tests/harness/lib.sh"
. "$root/tests/harness/qemu.sh"
secs=20
[ "${1:-}" = --seconds ] && secs=$2
work=$(mktemp -d /tmp/smig-throttle.XXXXXX)
trap 'qemu_stop "$work/src"; qemu_stop "$work/dst"; rm -rf "$work"' EXIT

run() { # run THROTTLE (0: no auto-converge)
	local t=$1 port caps i
	qemu_stop "$work/src"
	qemu_stop "$work/dst"
	rm -rf "$work/src" "$work/dst"
	qemu_start "$work/src" 48 "mem=16 dirty=max seed=3 hb=100" || return 1
	qemu_start "$work/dst" 48 "mem=16 dirty=max seed=3 hb=100" --incoming || return 1
	wait_for 30 grep -aq '^HB 2 ' "$work/src/serial.log" || return 1
	port=$(free_port)
	caps='{"execute":"migrate-set-capabilities","arguments":{"capabilities":[{"capability":"auto-converge","state":'$([ "$t" -gt 0 ] && echo true || echo false)'}]}}'
	qmp "$work/dst" "{\"execute\":\"migrate-incoming\",\"arguments\":{\"uri\":\"tcp:127.0.0.1:$port\"}}" >/dev/null
	qmp "$work/src" "$caps" \
		'{"execute":"migrate-set-parameters","arguments":{"max-bandwidth":8388608,"downtime-limit":300,"cpu-throttle-initial":'$((t > 0 ? t : 20))',"cpu-throttle-increment":10,"max-cpu-throttle":99}}' \
		"{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"tcp:127.0.0.1:$port\"}}" >/dev/null
	echo "auto-converge $([ "$t" -gt 0 ] && echo "on, throttle $t %" || echo off):"
	for ((i = 1; i <= secs; i++)); do
		sleep 1
		qmp "$work/src" '{"execute":"query-migrate"}' | jq -r --argjson i "$i" \
			'.return | "  \($i) s: \(.status) pass \(.ram["dirty-sync-count"] // 0) dirty \(.ram["dirty-pages-rate"] // 0) pages/s remaining \(.ram.remaining // 0) throttle \(.["cpu-throttle-percentage"] // 0) %"'
	done
}
run 0
run 99
