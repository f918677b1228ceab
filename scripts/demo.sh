#!/usr/bin/env bash
# make demo: two smig hosts and a client machine (network namespaces on one
# bridge), a Debian 12 VM (UEFI, vTPM, virtio-net, its disk in a shared
# pool) booted on h1 and migrated live to h2 through smig's encrypted,
# mutually authenticated channel while the client streams through a TCP
# connection to it; then the proof that nothing was lost.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export SMIG_BUILD=$root/build
export SMIG_CLUSTER_DIR=${SMIG_DEMO_DIR:-/tmp/smig-demo}
. "$root/tests/harness/lib.sh"
cluster=$root/tests/harness/cluster
dir=$SMIG_CLUSTER_DIR
t_start=$(date +%s)

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
fail() {
	echo "demo: $*" >&2
	exit 1
}
[ "$(id -u)" -eq 0 ] && ip netns add smig-probe 2>/dev/null && ip netns del smig-probe ||
	fail "the demo's hosts are network namespaces joined by bridges: run make demo as root"
on() { local h=$1; shift; "$cluster" exec "$h" "$SMIG" "$@"; }
run_on() { printf '%s$ smig %s\n' "$1" "${*:2}"; on "$@"; }
con() { tr -d '\r' <"$dir/state-$1/consoles/demo.log" 2>/dev/null; }
beats() { con "$1" | sed -n 's/.*smig-debian: hb \([0-9]*\) .*/\1/p'; }
trap '"$cluster" down >/dev/null 2>&1' EXIT

say "1. two hosts and a client, each in its own network namespace, with a fresh cluster PKI"
"$cluster" up --hosts 2 || exit 1
cat "$dir/hosts.json"

say "2. the hosts authenticate each other: TLS 1.3, client certificates, pinned fingerprints"
run_on h1 ping h2
run_on h2 ping h1

say "3. the Debian 12 guest image, made from Debian's packages (once per machine)"
t0=$(date +%s)
img=$("$root/guest/debian/build.sh") || fail "the image build failed (guest/debian/build.sh)"
echo "$img ($(du -m "$img" | cut -f1) MiB), ready in $(($(date +%s) - t0)) s"

say "4. the VM boots on h1: UEFI (OVMF), a vTPM, virtio-net on the bridge, its disk in the shared pool"
t0=$(date +%s)
"$cluster" debian h1 demo || exit 1
echo "booted in $(($(date +%s) - t0)) s"
jq -c '{machine, cpu, firmware, disks, nics, vtpm}' "$dir/state-h1/vms/demo/spec.json"
run_on h1 vm list

say "5. a client on a third machine streams through a TCP connection to the VM's echo service"
"$cluster" client "$SMIG_BUILD/tests/harness/smig-echoclient" 10.77.0.240:7 --rate 64 \
	--until "$dir/stop" >"$dir/echo.out" 2>&1 &
client=$!
wait_for 30 grep -q 'echoed=[1-9]' "$dir/echo.out" || fail "the client cannot reach the guest: $(cat "$dir/echo.out")"
sleep 3
tail -1 "$dir/echo.out"

say "6. live migration h1 -> h2"
printf 'h1$ smig migrate demo --to h2\n'
on h1 --json migrate demo --to h2 >"$dir/result.jsonl" &
mpid=$!
# a progress bar on a terminal, from the progress events
while kill -0 "$mpid" 2>/dev/null; do
	p=$(grep progress "$dir/result.jsonl" 2>/dev/null | tail -1)
	[ -n "$p" ] && printf '\r\033[K  %-12s %5.1f%%  %8.1f Mbit/s  pass %s   ' \
		"$(jq -r .progress.phase <<<"$p")" "$(jq -r '.progress.percent // 0' <<<"$p")" \
		"$(jq -r '.progress.mbps // 0' <<<"$p")" "$(jq -r '.progress.pass // "-"' <<<"$p")"
	sleep 0.1
done
wait "$mpid"
rc=$?
echo
result=$(tail -1 "$dir/result.jsonl")
[ $rc -eq 0 ] || fail "migration failed (exit $rc): $result"

say "7. the proof"
sleep 8 # the stream and the heartbeats go on, now from h2
touch "$dir/stop"
wait "$client"
crc=$?
stream=$(tail -1 "$dir/echo.out")
run_on h1 vm list
run_on h2 vm list
printf 'h2$ nft list tables bridge\n'
"$cluster" exec h2 nft list tables bridge
last1=$(beats h1 | tail -1)
first2=$(beats h2 | head -1)
last2=$(beats h2 | tail -1)
beat_ok=false
[ -n "$last1" ] && [ -n "$first2" ] && [ "$first2" -eq $((last1 + 1)) ] && beat_ok=true
bugs=$( (con h1; con h2) | grep -cE 'BUG:|Oops|Call Trace|Kernel panic|watchdog: .* stuck' || true)
echo "guest console on h2:"
con h2 | grep 'smig-debian' | tail -3
run_on h1 audit show --last 3

say "summary"
jq -r '"VM \(.vm): \(.from) -> \(.to), \(.status)",
	"  total \(.total_ms | floor) ms, set-up \(.setup_ms | floor) ms, downtime \(.downtime_ms | floor) ms (QEMU alone: \(.qemu_downtime_ms) ms)",
	"  \(.bytes / 1048576 | floor) MiB in \(.passes) passes at \(.mbps | floor) Mbit/s over \(.cipher)",
	"  target attested in the migration session as: \(.peer_trust)",
	"  the VM ran under \(.accel)",
	"  after the switch-over the guest was \(.guest): \(.guest_detail)"' <<<"$result"
echo "  client stream: $stream"
echo "  guest heartbeats: last on h1 #${last1:-none}, first on h2 #${first2:-none}, now #${last2:-none}$($beat_ok && echo ' (none lost, none twice)')"
echo "  guest kernel: $bugs BUG/Oops/panic lines on either console"
echo "  demo took $(($(date +%s) - t_start)) s"
[ $crc -eq 0 ] && $beat_ok && [ "$bugs" -eq 0 ] || fail "the guest did not come through intact (see above)"
echo "OK: the VM moved with its connection alive and nothing lost"
