#!/usr/bin/env bash
# make demo: two hosts (network namespaces, else loopback), a test guest with a vTPM booted
# on h1 and migrated live to h2 through smig's encrypted, mutually
# authenticated channel; then the proof that nothing was lost.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export SMIG_BUILD=$root/build
export SMIG_CLUSTER_DIR=${SMIG_DEMO_DIR:-/tmp/smig-demo}
. "$root/tests/harness/lib.sh"
cluster=$root/tests/harness/cluster

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
# Hosts live in network namespaces; where those cannot be made (no
# CAP_NET_ADMIN), both hosts run on loopback ports instead.
if ip netns add smig-probe 2>/dev/null; then
	ip netns del smig-probe
	mode=namespaces
	on() { local h=$1; shift; "$cluster" exec "$h" "$SMIG" "$@"; }
	cl_up() { "$cluster" up --hosts 2; }
	cl_guest() { "$cluster" guest "$@"; }
	cl_check() { "$cluster" check "$@"; }
	cl_down() { "$cluster" down >/dev/null 2>&1; }
else
	mode=loopback
	dir=$SMIG_CLUSTER_DIR
	on() { local h=$1; shift; hsmig "$dir" "$h" "$@"; }
	cl_up() {
		cl_down
		cluster_make "$dir" 2 && smigd_start "$dir" h1 && smigd_start "$dir" h2
	}
	cl_guest() {
		local h=$1 name=$2
		cat >"$dir/$name.spec.json" <<JSON
{"name": "$name", "memory_mib": 96,
 $(guest_boot smig-guest.elf "mem=64 dirty=2000 seed=42 hb=100"), "vtpm": true}
JSON
		on "$h" vm define "$dir/$name.spec.json" >/dev/null && on "$h" vm start "$name" >/dev/null &&
			wait_for 60 grep -q ' HB 3 ' "$dir/state-$h/consoles/$name.log"
	}
	cl_check() { "$root/tests/harness/guest-check" "$@" "$dir"/state-h*; }
	cl_down() { cluster_clean "$dir" 2>/dev/null; }
fi
run_on() { printf '%s$ smig %s\n' "$1" "${*:2}"; on "$@"; }

trap cl_down EXIT

say "1. two hosts ($mode) with a fresh cluster PKI"
cl_up || exit 1
cat "$SMIG_CLUSTER_DIR/hosts.json"

say "2. they authenticate each other: TLS 1.3, client certificates, pinned fingerprints"
run_on h1 ping h2
run_on h2 ping h1

say "3. the test guest boots on h1 with a vTPM; it verifies its own memory and PCR chain"
cl_guest h1 demo --mem 64 --dirty 2000 --vtpm --seed 42 || exit 1
sleep 1
run_on h1 vm list
on h1 vm console demo | tail -4

say "4. live migration h1 -> h2"
printf 'h1$ smig migrate demo --to h2 --downtime-ms 50\n'
on h1 --json migrate demo --to h2 --downtime-ms 50 >"$SMIG_CLUSTER_DIR/result.jsonl" &
mpid=$!
# a progress bar on a terminal, from the progress events
while kill -0 "$mpid" 2>/dev/null; do
	p=$(grep progress "$SMIG_CLUSTER_DIR/result.jsonl" 2>/dev/null | tail -1)
	[ -n "$p" ] && printf '\r\033[K  %-12s %5.1f%%  %8.1f Mbit/s  pass %s   ' \
		"$(jq -r .progress.phase <<<"$p")" "$(jq -r '.progress.percent // 0' <<<"$p")" \
		"$(jq -r '.progress.mbps // 0' <<<"$p")" "$(jq -r '.progress.pass // "-"' <<<"$p")"
	sleep 0.1
done
wait "$mpid"
rc=$?
echo
result=$(tail -1 "$SMIG_CLUSTER_DIR/result.jsonl")
if [ $rc -ne 0 ]; then
	echo "migration failed (exit $rc): $result"
	exit 1
fi

say "5. the proof"
sleep 1.5
run_on h1 vm list
run_on h2 vm list
on h2 vm console demo | tail -4
verdict=$(cl_check demo --vtpm)
echo "$verdict"
run_on h1 audit show --last 3

say "summary"
jq -r '"VM \(.vm): \(.from) -> \(.to), \(.status)",
	"  total \(.total_ms | floor) ms, set-up \(.setup_ms | floor) ms, downtime \(.downtime_ms | floor) ms (QEMU alone: \(.qemu_downtime_ms) ms)",
	"  \(.bytes / 1048576 | floor) MiB in \(.passes) passes at \(.mbps | floor) Mbit/s over \(.cipher)",
	"  target attested in the migration session as: \(.peer_trust)",
	"  the VM ran under \(.accel)\(if .accel == "tcg" then " (QEMU'"'"'s TCG can miss a busy guest'"'"'s writes while migrating; see docs/threat-model.md)" else "" end)"' <<<"$result"
echo "  guest: $verdict"
case $verdict in OK*) exit 0 ;; *) exit 1 ;; esac
