#!/usr/bin/env bash
# make bench-fleet: the fleet store at scale. Two real hosts (h1, h2) with
# store.backend etcd beside a real three-member etcd in the test
# namespaces; etcd is filled with --hosts simulated host records (each
# with its capacity, under a lease of their own) and --vms owner records
# naming them. Measured, each --runs times (medians reported):
#   sync     a restarted smigd's view holds every member (start to watching
#            with all records), and its worker's resident memory then,
#            against the same smigd with only the two real hosts;
#   watch    a simulated record changed in etcd until both smigds' views
#            have it (their status counts the change);
#   list     smig vm list --all over every owner record;
#   place    smig migrate --to auto of a real VM from h1: the placement's
#            own figure (event=placement ms=, the candidates over the
#            table and the fleet's view, and the destination's RESERVE);
#            the host table holds the two real hosts only (see the report).
# Writes DIR/fleet.json and DIR/fleet.md.
#
# usage: bench/fleet.sh [--hosts N] [--vms N] [--runs N] [--out DIR]
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export SMIG_BUILD=${SMIG_BUILD:-$root/build}
. "$root/tests/harness/lib.sh"

nhosts=1000
nvms=20000
runs=5
out=$root/build/bench-results
while [ $# -gt 0 ]; do
	case $1 in
	--hosts) nhosts=$2 ;;
	--vms) nvms=$2 ;;
	--runs) runs=$2 ;;
	--out) out=$2 ;;
	*) echo "usage: fleet.sh [--hosts N] [--vms N] [--runs N] [--out DIR]" >&2; exit 2 ;;
	esac
	shift 2
done
mkdir -p "$out"
netns_test bench-fleet
on() { hsmig "$dir" "$@"; }
say() { printf '%s\n' "$*" >&2; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
median() { sort -n | awk '{ a[NR] = $1 } END { if (NR == 0) print "null"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

say "== two hosts and a three-member etcd"
"$cluster" up --hosts 2 --store etcd >/dev/null || { say "cluster up failed"; exit 1; }
. "$root/tests/harness/etcd.sh"
ns1=$(sed 's/-h1$//' "$dir/etcd-e1.ns")-h1
ep=$(etcd_endpoints "$dir" | cut -d, -f1)
# gw PATH JSON: one call to etcd's gateway from h1's namespace with h1's certificate
gw() {
	ip netns exec "$ns1" curl -sS --fail --cacert "$dir/pki/ca.crt" --cert "$dir/pki/h1.crt" \
		--key "$dir/pki/h1.key" -X POST "$ep$1" --data-binary @-
}
members_of() { on "$1" --json status | jq -r '.store.members // 0'; }
watching_all() { on "$1" --json status | jq -e --argjson n "$2" '.store.watching and .store.members == $n' >/dev/null; }
worker_rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$(pgrep -P "$(cat "$dir/$1.pid")" -x smigd-worker)/status"; }
wait_for 20 watching_all h1 2 && wait_for 20 watching_all h2 2 || { say "no watch with 2 members"; exit 1; }

# a smigd restarted until its view is whole again: ms, then the worker's RSS in KiB
sync_once() {
	local n=$1 t0
	smigd_stop "$dir" h1
	t0=$(now_ms)
	smigd_start "$dir" h1 >/dev/null || return 1
	wait_for 60 watching_all h1 "$n" || return 1
	echo "$(($(now_ms) - t0)) $(worker_rss_kib h1)"
}

say "== the view with the two real hosts only"
base=$(for _ in $(seq 1 "$runs"); do sync_once 2; done)
base_ms=$(awk '{ print $1 }' <<<"$base" | median)
base_rss=$(awk '{ print $2 }' <<<"$base" | median)

say "== filling etcd: $nhosts simulated hosts, $nvms owner records"
b64() { printf '%s' "$1" | base64 -w0; }
lease=$(printf '{"TTL": 3600}' | gw /v3/lease/grant | jq -r .ID)
t0=$(now_ms)
python3 - "$nhosts" "$nvms" "$lease" >"$dir/fill.jsonl" <<'PY'
import base64, json, sys
nh, nv, lease = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
b = lambda s: base64.b64encode(s.encode()).decode()
ops = []
for i in range(nh):
    name = "s%04d" % i
    rec = {"name": name, "address": "10.99.%d.%d" % (i // 250, i % 250 + 1), "port": 7450,
           "fingerprint": "sha256:" + "%064x" % i, "version": "sim", "started": 0,
           "capacity": {"memory_mib": 262144, "memory_free_mib": 262144 - (i * 97) % 200000,
                        "vcpus": 64, "vcpus_free": 64 - i % 60, "vms": i % 40}}
    ops.append({"requestPut": {"key": b("/smig/hosts/" + name), "value": b(json.dumps(rec)), "lease": lease}})
for i in range(nv):
    owner = {"host": "s%04d" % (i % nh), "vm": "v%05d" % i, "since": 1700000000 + i}
    ops.append({"requestPut": {"key": b("/smig/vms/v%05d/owner" % i), "value": b(json.dumps(owner)), "lease": lease}})
for k in range(0, len(ops), 128):  # etcd's --max-txn-ops
    print(json.dumps({"success": ops[k:k + 128]}))
PY
while IFS= read -r txn; do
	printf '%s' "$txn" | gw /v3/kv/txn >/dev/null || { say "a fill transaction failed"; exit 1; }
done <"$dir/fill.jsonl"
fill_ms=$(($(now_ms) - t0))
say "   filled in ${fill_ms} ms"
total=$((nhosts + 2))
wait_for 60 watching_all h2 "$total" || say "h2's view does not hold $total members"

say "== sync: a restarted smigd's view of $total members"
full=$(for _ in $(seq 1 "$runs"); do sync_once "$total"; done)
sync_ms=$(awk '{ print $1 }' <<<"$full" | median)
sync_rss=$(awk '{ print $2 }' <<<"$full" | median)

say "== watch: a changed record until both views have it"
events() { on "$1" --json status | jq -r '.store.watch_events'; }
watch_samples=$(for i in $(seq 1 "$((runs * 2))"); do
	e1=$(events h1) e2=$(events h2)
	rec=$(jq -nc --argjson v "$i" '{name: "s0000", address: "10.99.0.1", port: 7450, fingerprint: ("sha256:" + ("0" * 64)), version: "sim", started: 0, capacity: {memory_mib: 262144, memory_free_mib: (1000 + $v), vcpus: 64, vcpus_free: 1, vms: $v}}')
	t0=$(now_ms)
	printf '{"key":"%s","value":"%s","lease":"%s"}' "$(b64 /smig/hosts/s0000)" "$(b64 "$rec")" "$lease" | gw /v3/kv/put >/dev/null
	for _ in $(seq 1 500); do
		[ "$(events h1)" -gt "$e1" ] && [ "$(events h2)" -gt "$e2" ] && break
		sleep 0.005
	done
	echo $(($(now_ms) - t0))
done)
watch_ms=$(median <<<"$watch_samples")

say "== list: smig vm list --all"
list_samples=$(for _ in $(seq 1 "$runs"); do
	t0=$(now_ms)
	n=$(on h1 --json vm list --all | jq '.vms | length')
	echo "$(($(now_ms) - t0)) $n"
done)
list_ms=$(awk '{ print $1 }' <<<"$list_samples" | median)
list_n=$(awk '{ print $2 }' <<<"$list_samples" | tail -1)

say "== place: smig migrate --to auto, there and back"
knows() { on "$1" --json hosts | jq -e --arg h "$2" '.hosts[] | select(.name == $h) | .attestation.attested_at > 0' >/dev/null; }
wait_for 60 knows h1 h2 && wait_for 60 knows h2 h1 || say "   the hosts have no verdict of each other"
"$cluster" guest h1 pb --mem 16 >/dev/null || { say "no guest"; exit 1; }
place_samples=$(for i in $(seq 1 "$runs"); do
	from=$([ $((i % 2)) = 1 ] && echo h1 || echo h2)
	o=$(on "$from" migrate pb --to auto 2>&1) || { say "   --to auto from $from failed: $(tail -1 <<<"$o")"; continue; }
	grep -o 'event=placement vm=pb to=[a-z0-9]* ms=[0-9.]*' "$dir/$from.log" | tail -1 | sed 's/.*ms=//'
done)
place_ms=$(median <<<"$place_samples")

jq -n --argjson hosts "$nhosts" --argjson vms "$nvms" --argjson runs "$runs" \
	--argjson fill "$fill_ms" --argjson base_ms "$base_ms" --argjson base_rss "$base_rss" \
	--argjson sync_ms "$sync_ms" --argjson sync_rss "$sync_rss" --argjson watch_ms "$watch_ms" \
	--argjson list_ms "$list_ms" --argjson list_n "${list_n:-0}" --argjson place_ms "${place_ms:-null}" \
	--arg cpus "$(nproc)" --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" \
	'{hosts: $hosts, vms: $vms, runs: $runs, fill_ms: $fill, sync_ms: {two_members: $base_ms, fleet: $sync_ms},
	  worker_rss_kib: {two_members: $base_rss, fleet: $sync_rss}, watch_ms: $watch_ms,
	  list: {ms: $list_ms, vms: $list_n}, placement_ms: $place_ms, cpus: $cpus, loadavg: $load}' >"$out/fleet.json"
cat >"$out/fleet.md" <<MD
# Fleet store at scale ($(date -u +%Y-%m-%d), bench/fleet.sh, medians of $runs runs)

$nhosts simulated hosts and $nvms owner records in a three-member etcd, two
real smigds ($(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg) at the end).

| what | figure | target |
|---|---|---|
| start-up sync of a smigd's view ($total members) | $sync_ms ms (2 members: $base_ms ms) | ≤ 2,000 ms |
| a changed record reaches both smigds (watch) | $watch_ms ms | ≤ 1,000 ms |
| smigd worker's resident memory with that view | $((sync_rss / 1024)) MiB (2 members: $((base_rss / 1024)) MiB) | reported |
| smig vm list --all ($list_n VMs) | $list_ms ms | - |
| placement (--to auto), the table's 2 hosts, the fleet's view | ${place_ms:-none} ms | ≤ 50 ms |

The sync figure runs from smigd's start (its own start-up included) to its
status showing the watch set up over every member. The watch figure
includes the CLI's polling of both smigds' status (every few ms). The
placement figure is smigd's own (event=placement ms=): the candidates
looked at over the host table and the fleet's view, and the chosen
host's answer to RESERVE over the network; the host table holds only the
two real hosts, since the simulated ones cannot be attested.
MD
cat "$out/fleet.md"
