#!/usr/bin/env bash
# Three smig hosts in their own network namespaces: a vTPM guest travels
# along a chain of hosts, a 1 GiB guest migrates whole, and a link cut in
# the middle of a migration leaves the VM running on its source.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../harness/lib.sh"
. "$here/../harness/tap.sh"
netns_test cl
export SMIG_STALL_MS=3000

plan 10

"$cluster" up --hosts 3 >/dev/null
ok $? "three hosts up, each in its own network namespace"
on() { local h=$1; shift; "$cluster" exec "$h" "$SMIG" "$@"; }
on h1 ping h3 >/dev/null && on h3 ping h2 >/dev/null
ok $? "hosts authenticate each other across the namespaces"

"$cluster" guest h1 chain --mem 32 --dirty 1000 --vtpm >/dev/null &&
	on h1 migrate chain --to h2 >/dev/null && on h2 migrate chain --to h3 >/dev/null &&
	on h3 migrate chain --to h1 >/dev/null
ok $? "a vTPM guest goes h1 -> h2 -> h3 -> h1"
sleep 1.5
out=$("$cluster" check chain --vtpm)
ok $? "the guest's own verdict after three moves: $out"
on h1 vm stop chain >/dev/null # finished guests do not compete for the CPUs

"$cluster" guest h2 big --mem 1024 --seed 7 >/dev/null
ok $? "a guest with a 1 GiB working set runs on h2"
res=$(on h2 --json migrate big --to h3 | tail -1)
[ "$(jq -r .status <<<"$res")" = completed ] && [ "$(jq -r .bytes <<<"$res")" -gt $((1024 * 1048576)) ]
ok $? "it migrates whole: $(jq -r '"\(.bytes / 1048576 | floor) MiB in \(.total_ms | floor) ms"' <<<"$res")"
sleep 1.5
out=$("$cluster" check big)
ok $? "every page of the 1 GiB arrived: $out"
on h3 vm stop big >/dev/null

"$cluster" guest h3 cut --mem 64 --dirty 2000 >/dev/null
on h3 migrate cut --to h1 --max-bandwidth 8 >"$SMIG_CLUSTER_DIR/cut.out" 2>&1 &
mpid=$!
wait_for 10 grep -q 'migration_streaming vm=cut' "$SMIG_CLUSTER_DIR/h3.log"
sleep 0.5
"$cluster" link h1 down
wait "$mpid"
rc=$?
ok $([ $rc -eq 5 ] && echo 0 || echo 1) "cutting h1's link mid-stream fails the migration: $(head -c 200 "$SMIG_CLUSTER_DIR/cut.out")"
"$cluster" link h1 up
sleep 4
on h3 --json vm show cut | jqe '.state == "running"' >/dev/null &&
	! on h1 --json vm list | jqe '.vms[] | select(.name == "cut")' >/dev/null
ok $? "the VM runs on h3 only; h1 dropped its half copy when the stream stalled"
out=$("$cluster" check cut)
ok $? "the guest's own verdict: $out"

done_testing
