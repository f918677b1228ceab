#!/usr/bin/env bash
# A guest that dirties memory faster than the link carries it, with real
# daemons on two loopback hosts, TCG, the link capped at 8 MiB/s and QEMU's
# auto-converge off: the guest rewrites its 16 MiB working set as fast as
# it can, so 16 MiB stay dirty and need 2 s of pause at 8 MiB/s. From h1,
# whose config never escalates and gives up after 8 s, the migration does
# not converge: it fails, naming why, and the VM runs on at h1. From h2,
# whose config raises the downtime limit from 300 ms to 1000 ms, then 3000 ms, every
# 2 s (migration.downtime_steps_ms), it converges: each step is logged,
# counted in the metrics and shown in the job, and the guest's own checks
# are clean on h1 afterwards. From h3, which has no downtime steps and
# throttles the guest only as an escalation step (migration.
# auto_converge_step, QEMU's auto-converge held at 1 % until then), the
# step is taken and QEMU throttles the guest to 99 %, logged and shown;
# under TCG a throttled guest dirties memory nearly as fast as before
# (QEMU alone: bench/tcg-throttle-repro.sh), so the migration fails after
# migration.completion_timeout_s, naming the throttle, and the guest runs
# on at h3 with its checks clean. h1 sends one migration at a time
# (migration.parallel_outbound 1): while stuck streams, two more wait in its
# queue with their positions, one is cancelled while it waits, the other
# runs once stuck has failed. A migration policy by label gives a VM
# that cannot converge a progress timeout of 2 s: it fails for making no
# progress, named in the job's history, and smig policy explain-migration
# says which policy applies and why. h2 takes one migration at a time
# (migration.parallel_inbound 1): q4, sent from h3 while stuck streams to
# h2, is told h2 is full, waits at h3 and goes once h2 has room.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../harness/lib.sh"
. "$here/../harness/tap.sh"
check_guest=$here/../harness/guest-check

dir=$(mktemp -d /tmp/smig-conv.XXXXXX)
trap 'cluster_clean "$dir"' EXIT
cluster_make "$dir" 3 || { echo "Bail out! cluster_make"; exit 1; }
conf() { # conf HOST JQ
	jq "$2" "$dir/$1.json" >"$dir/$1.json.tmp" && mv "$dir/$1.json.tmp" "$dir/$1.json"
}
conf h1 '.qemu.auto_converge = false | .migration = {downtime_steps_ms: [], completion_timeout_s: 8, auto_converge_step: false,
	parallel_outbound: 1, policies: [{name: "every-vm", downtime_ms: 250},
	{name: "no-progress", vm_labels: {class: "stuck"}, max_bandwidth_mib: 8, progress_timeout_s: 2,
	 completion_timeout_per_gib_s: 30}]}'
mport=$(free_port)
conf h2 '.qemu.auto_converge = false | .migration = {escalate_after_s: 2, downtime_steps_ms: [1000, 3000], completion_timeout_s: 60,
	parallel_inbound: 1}'
conf h2 ".metrics = {listen: \"127.0.0.1:$mport\"}"
mport1=$(free_port)
conf h1 ".metrics = {listen: \"127.0.0.1:$mport1\"}"
conf h3 '.qemu.auto_converge = false | .migration = {escalate_after_s: 2, downtime_steps_ms: [], completion_timeout_s: 12, auto_converge_step: true}'
ivt_make "$dir" 3 || { echo "Bail out! ivt_make"; exit 1; }

plan 17

smigd_start "$dir" h1 && smigd_start "$dir" h2 && smigd_start "$dir" h3
ok $? "h1 (no escalation, gives up after 8 s), h2 (downtime 1000 ms, then 3000 ms, every 2 s) and h3 (throttling after 2 s) start"
start() { # start HOST NAME [GUEST-ARGS [MORE-SPEC]]
	cat >"$dir/$2.json" <<JSON
{"name": "$2", "memory_mib": 48, $(guest_boot smig-guest.elf "${3:-mem=16 dirty=max seed=3 hb=100}")${4:-}}
JSON
	hsmig "$dir" "$1" vm define "$dir/$2.json" >/dev/null && hsmig "$dir" "$1" vm start "$2" >/dev/null &&
		wait_for 30 grep -q ' HB 5 ' "$dir/state-$1/consoles/$2.log"
}
beats() { grep -c ' HB ' "$dir/state-$1/consoles/$2.log"; }

# move HOST NAME TO: smig migrate at 8 MiB/s; its output in out, exit in rc, time in ms
move() {
	local t0
	t0=$(date +%s%N)
	out=$(hsmig "$dir" "$1" migrate "$2" --to "$3" --max-bandwidth 8 2>&1)
	rc=$?
	ms=$((($(date +%s%N) - t0) / 1000000))
}

start h1 stuck && start h1 q2 "mem=8 hb=100" && start h1 q3 "mem=8 hb=100" && start h3 q4 "mem=8 hb=100"
ok $? "vm stuck runs on h1, rewriting 16 MiB as fast as it can; q2 and q3, idle, beside it; q4 on h3"
mark=$(wc -l <"$dir/h1.log")
t0=$(date +%s%N)
hsmig "$dir" h1 migrate stuck --to h2 --max-bandwidth 8 >"$dir/stuck.out" 2>&1 &
sp=$!
wait_for 15 grep -q 'event=migration_streaming vm=stuck' "$dir/h1.log"
hsmig "$dir" h1 --json migrate q2 --to h2 >"$dir/q2.out" 2>&1 &
q2=$!
wait_for 10 grep -q 'event=migration_queued vm=q2 to=h2 position=1 ' "$dir/h1.log"
hsmig "$dir" h1 --json migrate q3 --to h2 >"$dir/q3.out" 2>&1 &
q3=$!
wait_for 10 grep -q 'event=migration_queued vm=q3 to=h2 position=2 ' "$dir/h1.log" &&
	jq -se '.[0].progress.phase == "queued" and .[0].progress.position == 1 and .[0].progress.policy == "every-vm"' "$dir/q2.out" >/dev/null &&
	[ "$(hsmig "$dir" h1 --json vm show q3 | jq -r .migration.state)" = queued ] &&
	hsmig "$dir" h1 vm list | grep -q '^q3  *migrating>h2 ' &&
	m=$(curl -sf --max-time 5 "http://127.0.0.1:$mport1/metrics") && grep -q '^smig_migrations_queued 2$' <<<"$m" &&
	grep -q '^smig_migrations_active{direction="out"} 1$' <<<"$m"
ok $? "with migration.parallel_outbound 1, two more migrations wait, each told its position (q2 first, q3 second; vm show: queued; metrics: 1 active, 2 queued)"
hsmig "$dir" h3 --json migrate q4 --to h2 >"$dir/q4.out" 2>&1 &
q4=$!
hsmig "$dir" h1 migrate cancel q3 >/dev/null
wait "$q3"
rc=$?
[ $rc -eq 5 ] && grep -q 'cancelled by the operator' "$dir/q3.out" && [ "$(hsmig "$dir" h1 --json vm show q3 | jq -r '.state + " " + (.migration // "none" | tostring)')" = "running none" ]
ok $? "q3 cancelled while it waits: exit $rc, it runs on at h1"
wait "$sp"
rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
out=$(cat "$dir/stuck.out")
n=$(beats h1 stuck)
[ $rc -ne 0 ] && grep -q "did not converge in 8 s (migration.completion_timeout_s); downtime limit 250 ms after 0 steps" <<<"$out" &&
	[ "$(hsmig "$dir" h1 --json vm show stuck | jq -r .state)" = running ] &&
	wait_for 10 bash -c "[ \$(grep -c ' HB ' '$dir/state-h1/consoles/stuck.log') -gt $((n + 3)) ]"
ok $? "without escalation it does not converge: it fails after $ms ms (exit $rc) and stuck beats on at h1: $(grep -v "^migration " <<<"$out")"
wait "$q2"
rc=$?
jq -se '.[-1].status == "completed"' "$dir/q2.out" >/dev/null && [ $rc -eq 0 ] &&
	id=$(jq -sr '.[-1].id' "$dir/q2.out") && h=$(hsmig "$dir" h1 --json migrate show "$id") &&
	jq -e '.queued_ms > 1000 and .policy == "every-vm" and .outcome == "completed"' <<<"$h" >/dev/null &&
	tail -n +"$mark" "$dir/h1.log" | grep -q 'event=migration_dequeued vm=q2 to=h2'
ok $? "q2 begins once stuck has failed, and completes: $(jq -c '{queued_ms, policy, total_ms}' <<<"${h:-{\}}")"
wait "$q4"
rc=$?
id=$(jq -sr '.[-1].id' "$dir/q4.out")
h=$(hsmig "$dir" h3 --json migrate show "$id")
[ $rc -eq 0 ] && grep -q 'event=migration_inbound_full vm=q4 from=h3 parallel_inbound=1' "$dir/h2.log" &&
	grep -q 'event=migration_destination_full vm=q4 to=h2' "$dir/h3.log" &&
	jq -se '[.[] | select(.progress.phase == "queued" and .progress.waiting_for == "h2")] | length >= 1' "$dir/q4.out" >/dev/null &&
	jq -e '.outcome == "completed" and .queued_ms > 0' <<<"$h" >/dev/null && [ "$(vm_where "$dir" q4)" = h2 ]
ok $? "with migration.parallel_inbound 1 on h2, q4 from h3 is told h2 is full, waits, and goes once there is room: $(jq -c '{queued_ms, total_ms}' <<<"${h:-{\}}")"
hsmig "$dir" h1 vm stop stuck --force >/dev/null 2>&1
hsmig "$dir" h2 vm stop q2 --force >/dev/null 2>&1
hsmig "$dir" h2 vm stop q4 --force >/dev/null 2>&1
hsmig "$dir" h1 vm stop q3 --force >/dev/null 2>&1

start h1 lag "mem=16 dirty=max seed=4 hb=100" ', "labels": {"class": "stuck", "tier": "web"}'
out=$(hsmig "$dir" h1 policy explain-migration lag --to h2)
grep -q '^lag to h2: migration policy no-progress' <<<"$out" && grep -q 'matches: every-vm (0 labels)' <<<"$out" &&
	grep -q 'matches: no-progress (1 labels)' <<<"$out" && grep -q 'progress timeout 2 s' <<<"$out"
ok $? "policy explain-migration: the most specific policy that matches, and why: $(head -3 <<<"$out" | tr '\n' ';')"
t0=$(date +%s%N)
out=$(hsmig "$dir" h1 migrate lag --to h2 2>&1)
rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
id=$(hsmig "$dir" h1 --json migrate list --vm lag --last 1 | jq -r '.migrations[-1].id')
h=$(hsmig "$dir" h1 --json migrate show "$id")
[ $rc -eq 5 ] && grep -q 'made no progress for 2 s (policy no-progress, progress_timeout_s)' <<<"$out" &&
	jq -e '.outcome == "failed" and .policy == "no-progress" and (.reason | test("made no progress"))' <<<"$h" >/dev/null &&
	[ "$(vm_where "$dir" lag)" = h1 ] && [ "$ms" -lt 20000 ]
ok $? "a VM that cannot converge, under a 2 s progress timeout: fails in $ms ms (exit $rc), the reason in migrate show, the VM on h1: $(jq -r .reason <<<"${h:-{\}}" | cut -c1-120)"
hsmig "$dir" h1 vm stop lag --force >/dev/null 2>&1

start h2 busy
ok $? "vm busy runs on h2, rewriting 16 MiB as fast as it can"
t0=$(date +%s%N)
res=$(hsmig "$dir" h2 --json migrate busy --to h1 --max-bandwidth 8 | tail -1)
rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
jqe '.status == "completed" and .escalation_steps >= 1 and .qemu_downtime_limit_ms >= 1000' <<<"$res" >/dev/null
ok $? "with escalation it converges (exit $rc) in $ms ms: $(jq -c '{total_ms, downtime_ms, qemu_downtime_limit_ms, escalation_steps, passes}' <<<"$res")"
diag "escalating migration: total $(jq -r .total_ms <<<"$res") ms, guest-visible pause $(jq -r .downtime_ms <<<"$res") ms, downtime limit $(jq -r .qemu_downtime_limit_ms <<<"$res") ms after $(jq -r .escalation_steps <<<"$res") steps (8 MiB/s, TCG)"
grep -q 'event=migration_escalated vm=busy to=h1 step=1 downtime_limit_ms=1000' "$dir/h2.log"
ok $? "each step is logged: $(grep -o 'event=migration_escalated.*' "$dir/h2.log" | tr '\n' ';')"
curl -sf --max-time 5 "http://127.0.0.1:$mport/metrics" | grep -qE '^smig_migration_escalations_total [1-9]'
ok $? "and counted: $(curl -sf --max-time 5 "http://127.0.0.1:$mport/metrics" | grep '^smig_migration_escalations_total')"
out=$("$check_guest" busy "$dir/state-h1" "$dir/state-h2")
rc=$?
[ $rc -eq 0 ] && [ "$(vm_where "$dir" busy)" = h1 ]
ok $? "busy runs only on h1, its checks clean: $out"

start h3 slow
ok $? "vm slow runs on h3, rewriting 16 MiB as fast as it can"
move h3 slow h1
grep -q 'event=migration_escalated vm=slow to=h1 step=1 action=auto_converge' "$dir/h3.log" &&
	[ $rc -ne 0 ] && grep -q 'did not converge in 12 s .*after 1 steps.*its vCPUs throttled 99 %' <<<"$out"
ok $? "throttling is the escalation step, QEMU takes the guest to 99 %; under TCG the guest dirties on (bench/tcg-throttle-repro.sh), and after $ms ms it fails, saying so: $(grep -v "^migration " <<<"$out")"
n=$(beats h3 slow)
[ "$(vm_where "$dir" slow)" = h3 ] &&
	wait_for 10 bash -c "[ \$(grep -c ' HB ' '$dir/state-h3/consoles/slow.log') -gt $((n + 3)) ]" &&
	"$check_guest" slow "$dir/state-h3" >/dev/null
ok $? "slow beats on at h3 alone, its checks clean, unthrottled: $(beats h3 slow) heartbeats"

done_testing
