#!/usr/bin/env bash
# Exactly once under faults at the switch-over. Two hosts in their own
# network namespaces; the test guest (it verifies every page of its working
# set and counts heartbeats) migrates h1 -> h2 while a fault strikes at a
# named step: smigd stops itself at that event (SMIG_STOP_AT), the fault is
# injected, and the process is killed or continued. After each case the VM
# runs in exactly one place, its own checks are clean, and it migrates
# again; where no copy can run (its only QEMU killed mid-stream), smig says
# so and the VM starts again.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../harness/lib.sh"
. "$here/../harness/tap.sh"
netns_test faults
export SMIG_STALL_MS=3000

plan 36

# a lock the harness holds must not be held by the daemons it starts
exec 9>"$dir.lock" && flock 9
"$cluster" up --hosts 2 >/dev/null
ok $? "two hosts up, each in its own network namespace"
. "$here/../harness/faults.sh"

# ---- 1. source smigd killed at migration_commit_request ------------------
# (the destination holds the whole state, COMMIT was not sent: the source's
# paused QEMU is the VM, and the restarted source must run it again)
strike h1 migration_commit_request f1 --mem 32 --dirty 2000 --vtpm
! ls -l "/proc/$(cat "$dir/h1.pid")/fd" "/proc/$(worker h1)/fd" \
	"/proc/$(cat "$dir/state-h1/vms/f1/qemu.pid")/fd" \
	"/proc/$(cat "$dir/state-h1/vms/f1/swtpm.pid")/fd" | grep -qF "$dir.lock"
ok $? "smigd (warden and worker), QEMU and swtpm do not hold the harness's lock (fd 9)"
crash h1
wait $mig
wait_for 10 grep -q 'event=migration_aborted vm=f1' "$dir/h2.log"
ok $? "smigd on h1 killed at commit_request: h2 discards its copy"
restart h1
once f1 h1
ok $? "the restarted h1 adopts the paused QEMU and runs the VM again ($(listed f1))"
on h1 migrate f1 --to h2 >/dev/null && once f1 h2
ok $? "and it migrates again: QEMU is not left in postmigrate ($(listed f1))"
out=$(guest_verdict f1 --vtpm)
ok $? "guest check: $out"
on h2 vm stop f1 >/dev/null

# ---- 2. source smigd killed right after COMMIT went out ------------------
strike h1 migration_commit_sent f2 --mem 32 --dirty 2000 --vtpm
crash h1
wait $mig
restart h1
once f2 h2
ok $? "smigd on h1 killed after COMMIT: h2 runs the VM, h1's paused copy asked h2 and retired ($(listed f2))"
grep -q 'event=migration_resolved vm=f2 to=h2 .*outcome=committed' "$dir/h1.log" && [ ! -d "$dir/state-h1/vms/f2" ]
ok $? "h1 learnt the outcome from h2 (MIG_QUERY) and removed its copy and vTPM state"
out=$(guest_verdict f2 --vtpm)
ok $? "guest check: $out"
on h2 vm stop f2 >/dev/null

# ---- 2b. ... and its QEMU too: the restarted h1 still asks, then forgets --
strike h1 migration_commit_sent f10 --mem 32 --dirty 2000
crash h1
kill_qemu h1 f10
wait $mig
restart h1
once f10 h2
ok $? "h1 restarted with its copy's QEMU dead: it still asks h2, learns the VM runs there and forgets it ($(listed f10))"
on h2 vm stop f10 >/dev/null

# ---- 3. destination smigd killed after COMMIT arrived, before resume -----
strike h2 migration_commit_recorded f3 --mem 32 --dirty 2000
crash h2
sleep 1
on h1 --json vm show f3 >"$dir/f3.show"
jqe '.state == "paused" and (.resolve | test("smigd asks h2"))' <"$dir/f3.show" >/dev/null
ok $? "h1 keeps its copy paused and says why: $(jq -r .resolve <"$dir/f3.show" | head -c 150)"
out=$(on h1 vm resume f3 2>&1)
[ $? -ne 0 ] && grep -q -- '--force' <<<"$out"
ok $? "smig vm resume refuses while h2 may run it: $(head -c 120 <<<"$out")"
restart h2
wait $mig
rc=$?
once f3 h2
ok $? "the restarted h2 resumes its committed copy; h1 retires its own ($(listed f3))"
[ $rc -eq 0 ] && grep -q 'confirmed it resumed' "$dir/f3.out"
ok $? "the migrate command learns the outcome (exit $rc): $(tail -1 "$dir/f3.out" | head -c 160)"
grep -q ' h1 resumed$' "$dir/state-h2/worker/vms/f3/incoming.id"
ok $? "h2 recorded that the guest has run there since (incoming.id: $(cat "$dir/state-h2/worker/vms/f3/incoming.id"))"
out=$(guest_verdict f3)
ok $? "guest check: $out"
on h2 vm stop f3 >/dev/null

# ---- 3b. ... and its QEMU with it, before the guest ran there -----------
strike h2 migration_commit_recorded f8 --mem 32 --dirty 2000
crash h2
kill_qemu h2 f8
restart h2
wait $mig
rc=$?
once f8 h1
ok $? "h2 died with its QEMU before resuming: it answers discarded, h1 resumes its copy (exit $rc, $(listed f8))"
on h1 vm stop f8 >/dev/null

# ---- 3c. the destination gone for good: the operator resumes the source --
strike h2 migration_commit_recorded f9 --mem 32 --dirty 2000
crash h2
kill_qemu h2 f9
rm -rf "$dir/state-h2/vms/f9" "$dir/state-h2/worker/vms/f9" "$dir/state-h2/worker/incoming.log"* # the host is replaced
sleep 1
out=$(on h1 vm resume f9 --force 2>&1) && once f9 h1
ok $? "h2 gone for good: smig vm resume f9 --force runs h1's copy ($(listed f9))"
wait $mig
rc=$?
[ $rc -eq 5 ] && grep -q 'resumed the VM here over the unconfirmed commit' "$dir/f9.out" &&
	grep -q 'event=vm_resume_forced vm=f9' "$dir/h1.log"
ok $? "the migration ends as failed (exit $rc) and the forced resume is on record"
restart h2
on h1 migrate f9 --to h2 >/dev/null && once f9 h2
ok $? "the replaced h2 takes the VM later"
out=$(guest_verdict f9)
ok $? "guest check: $out"
on h2 vm stop f9 >/dev/null

# ---- 4. source QEMU killed at commit_request, the destination ready ------
# (h2 holds it all and stops before it says READY; h1's QEMU is killed then)
strike h2 migration_ready f4 --mem 32 --dirty 2000 --vtpm
kill -KILL "$(cat "$dir/state-h1/vms/f4/qemu.pid")"
wait_for 10 grep -q 'event=source_qemu_died vm=f4 .*action=hand_over' "$dir/h1.log"
out=$(on h1 vm undefine f4 2>&1)
[ $? -ne 0 ] && grep -q 'part of a migration' <<<"$out"
ok $? "its definition cannot be undefined while the hand-over runs: $(head -c 100 <<<"$out")"
resume h2
wait $mig
rc=$?
once f4 h2
ok $? "h1's QEMU killed after it sent everything: h2's whole copy takes over (exit $rc, $(listed f4))"
out=$(guest_verdict f4 --vtpm)
ok $? "guest check: $out"
on h2 vm stop f4 >/dev/null

# ---- 5. link cut while the source is paused in the final pass ------------
strike h1 source_stopped f5 --mem 64 --dirty 4000
"$cluster" link h1 down
resume h1
wait $mig
rc=$?
"$cluster" link h1 up
once f5 h1
ok $? "link cut in the final pass: the migration fails (exit $rc) and the VM runs on h1 ($(listed f5))"
sleep 4 # h2 drops its half copy when its side stalls
on h1 migrate f5 --to h2 >/dev/null && once f5 h2
ok $? "smigd's view follows QEMU's: the VM migrates again"
out=$(guest_verdict f5)
ok $? "guest check: $out"
on h2 vm stop f5 >/dev/null

# ---- 6. link cut right before COMMIT goes out ----------------------------
# (COMMIT waits in h1's socket: whether h2 ever acts on it is only known
# by asking h2 afterwards)
strike h1 migration_commit_marked f6 --mem 32 --dirty 2000
"$cluster" link h1 down
resume h1
sleep 5 # both sides stall: h1 asks h2 (unreachable), h2 gives up its copy
"$cluster" link h1 up
wait $mig
rc=$?
w=
for _ in $(seq 1 100); do
	w=$(where f6)
	[ -n "$w" ] && break
	sleep 0.2
done
[ -n "$w" ] && [ "$w" != "h1 h2" ] && once f6 "$w"
ok $? "link cut at commit: the VM runs once, on $w (exit $rc: $(tail -1 "$dir/f6.out" | head -c 140))"
grep -q 'event=migration_resolved vm=f6 to=h2' "$dir/h1.log"
ok $? "h1 did not guess: it asked h2 ($(grep -o 'event=migration_resolved vm=f6 .*' "$dir/h1.log" | head -c 100))"
out=$(guest_verdict f6)
ok $? "guest check: $out"
on "${w:-h1}" vm stop f6 >/dev/null

# ---- 7. source QEMU killed mid-stream ------------------------------------
strike h1 migration_streaming f7 --mem 32 --dirty 2000
kill_qemu h1 f7
resume h1
wait $mig
rc=$?
[ $rc -eq 5 ] && grep -q 'runs nowhere' "$dir/f7.out" && ! grep -q 'running on h1' "$dir/f7.out"
ok $? "h1's QEMU killed mid-stream: smig says the VM runs nowhere (exit $rc): $(head -c 200 "$dir/f7.out")"
[ -z "$(where f7)" ] && ! on h2 --json vm list | jqe '.vms[] | select(.name == "f7")' >/dev/null
ok $? "and it is so: no copy runs, h2 kept nothing ($(listed f7))"
on h1 vm start f7 >/dev/null && once f7 h1
ok $? "smig vm start brings it back on h1"
on h1 vm stop f7 >/dev/null
restart h1

# ---- 8. a destination that cannot record the commit does not resume -----
"$cluster" guest h1 f11 --mem 32 --dirty 2000 >/dev/null
# no record can be appended there, as on a full disk
mv "$dir/state-h2/worker/incoming.log" "$dir/incoming.log.h2" && mkdir "$dir/state-h2/worker/incoming.log"
on h1 migrate f11 --to h2 >"$dir/f11.out" 2>&1
rc=$?
rmdir "$dir/state-h2/worker/incoming.log" && mv "$dir/incoming.log.h2" "$dir/state-h2/worker/incoming.log"
[ $rc -eq 5 ] && grep -q 'cannot record the commit on h2' "$dir/f11.out" && once f11 h1
ok $? "h2 refuses COMMIT it cannot record; the VM runs on h1 (exit $rc, $(listed f11))"
on h1 vm stop f11 >/dev/null

# ---- 8. the swtpm of a VM adopted after a restart dies ------------------
# (not the warden's child any more: its pidfd, not SIGCHLD, says it is gone)
"$cluster" guest h1 f12 --mem 32 --vtpm >/dev/null
crash h1
smigd_start "$dir" h1
wait_for 20 grep -q 'event=vm_adopted vm=f12' "$dir/h1.log"
kill -KILL "$(cat "$dir/state-h1/vms/f12/swtpm.pid")"
wait_for 10 grep -q 'event=vtpm_lost vm=f12' "$dir/h1.log" &&
	on h1 --json vm show f12 | jq -e '.last_error | test("vTPM")' >/dev/null
ok $? "an adopted VM's swtpm killed: smigd notices (vtpm_lost) and vm show says to cold restart it"
on h1 vm stop f12 >/dev/null

# another cluster's "down" leaves this one alone (namespaces named per cluster)
other=$(mktemp -d /tmp/smig-other.XXXXXX)
SMIG_CLUSTER_DIR=$other "$cluster" up --hosts 1 >/dev/null &&
	[ "$(SMIG_CLUSTER_DIR=$other "$cluster" ns h1)" != "$("$cluster" ns h1)" ] &&
	SMIG_CLUSTER_DIR=$other "$cluster" down && ip netns list | grep -qw "$("$cluster" ns h1)" &&
	on h1 ping h2 >/dev/null
ok $? "a second cluster comes and goes; this one's namespaces and hosts stay ($("$cluster" ns h1))"
rm -f "$dir.lock"

done_testing
