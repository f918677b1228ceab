#!/usr/bin/env bash
# A planned change is not a tamper, with real daemons on three loopback
# hosts; h1 runs its own copy of QEMU, which the test "upgrades". In
# maintenance h1 takes no VM (its peers see it and the policy gate names
# the rule; h1 itself refuses), and a changed QEMU does not evacuate it;
# enrolled, h1 leaves maintenance with its VM still there. An upgrade
# enrolled ahead (--with the new binary's SHA-256) is no event at all. A
# config edit counts when a reload takes it, not before. The same QEMU
# change without enrolment, outside maintenance, evacuates h1's VM.
# Maintenance survives a restart of smigd.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../harness/lib.sh"
. "$here/../harness/tap.sh"

dir=$(mktemp -d /tmp/smig-maint.XXXXXX)
trap 'cluster_clean "$dir"' EXIT
SMIG_ATTEST_S=2 cluster_make "$dir" 3 || { echo "Bail out! cluster_make"; exit 1; }
# a QEMU installed under a prefix of its own (it finds its modules and data
# relative to its binary: DIR/qemu/{lib,share} are the system's)
qemu=$dir/qemu/bin/qemu-system-x86_64
mkdir -p "$dir/qemu/bin" && chmod 0755 "$dir/qemu" "$dir/qemu/bin" &&
	ln -s /usr/lib "$dir/qemu/lib" && ln -s /usr/share "$dir/qemu/share" &&
	cp "$(command -v qemu-system-x86_64)" "$qemu"
jq --arg q "$qemu" '.qemu.binary = $q' "$dir/h1.json" >"$dir/h1.json.tmp" && mv "$dir/h1.json.tmp" "$dir/h1.json"
ivt_make "$dir" 3 || { echo "Bail out! ivt_make"; exit 1; }
# "new versions" of QEMU: the same program with bytes appended (it still runs),
# put in place as a package manager does, by rename (the old one may be running)
version() {
	cp "$(command -v qemu-system-x86_64)" "$1.new" && echo "smig-test $2" >>"$1.new" && mv "$1.new" "$1"
}

plan 21

smigd_start "$dir" h1 && smigd_start "$dir" h2 && smigd_start "$dir" h3
ok $? "h1, h2 and h3 start; h1 runs QEMU from $qemu"
for v in 1 2; do
	cat >"$dir/vm$v.json" <<JSON
{"name": "vm$v", "memory_mib": 48, $(guest_boot smig-guest.elf "mem=8 hb=100")}
JSON
	hsmig "$dir" "h$v" vm define "$dir/vm$v.json" >/dev/null && hsmig "$dir" "h$v" vm start "vm$v" >/dev/null
done
wait_for 20 grep -q ' HB 3 ' "$dir/state-h1/consoles/vm1.log" && wait_for 20 grep -q ' HB 3 ' "$dir/state-h2/consoles/vm2.log"
ok $? "vm1 runs on h1 (its copy of QEMU), vm2 on h2"

running_on() { [ "$(hsmig "$dir" "$1" --json vm show "$2" 2>/dev/null | jq -r .state)" = running ]; }
self() { hsmig "$dir" "$1" --json status | jq -r ".attestation.$2"; }
n_evac() { grep -c 'event=evacuate_start' "$dir/h1.log"; }

# --- maintenance on: nothing arrives ---------------------------------------------------
out=$(hsmig "$dir" h1 maintenance on h1 --reason "QEMU upgrade") &&
	hsmig "$dir" h1 --json status | jqe '.maintenance.on and .maintenance.reason == "QEMU upgrade" and (.maintenance.by | test("root"))' >/dev/null &&
	hsmig "$dir" h1 --json audit show --last 0 | jqe -s 'map(select(.action == "host.maintenance" and .outcome == "on")) | length == 1' >/dev/null
ok $? "smig maintenance on h1: status shows it, the audit log has it: $out"
out=$(hsmig "$dir" h1 maintenance on 2>&1)
[ $? -eq 1 ] && grep -q "already in maintenance" <<<"$out"
ok $? "a second maintenance on says so (exit 1): $out"
seen() { hsmig "$dir" h2 --json hosts | jqe '.hosts[] | select(.name == "h1") | .maintenance' >/dev/null; }
wait_for 10 seen && hsmig "$dir" h2 hosts | grep -q '^h1 .*\[maintenance\]'
ok $? "h2 sees h1 in maintenance in its signed evidence (smig hosts)"
out=$(hsmig "$dir" h2 migrate vm2 --to h1 2>&1)
rc=$?
[ $rc -eq 4 ] && grep -q "h1 is in maintenance: it takes no VMs until it is out (rule maintenance)" <<<"$out" && running_on h2 vm2
ok $? "h2 does not send vm2 to h1 (exit $rc): $out"

# --- QEMU upgraded in maintenance: no evacuation -------------------------------------
version "$qemu" 2
wait_for 5 grep -q 'event=integrity_failed host=h1 component=qemu' "$dir/h1.log" &&
	wait_for 5 grep -q 'event=evacuation_held host=h1 reason="in maintenance (QEMU upgrade)"' "$dir/h1.log"
ok $? "QEMU replaced on h1: its self-check fails, the evacuation is held"
sleep 3
running_on h1 vm1 && [ "$(n_evac)" -eq 0 ]
ok $? "3 s later vm1 still runs on h1, no evacuation started"

out=$(hsmig "$dir" h1 ivt enrol h1 --golden qemu-2) && wait_for 5 bash -c "[ \"\$($SMIG --socket $dir/h1.sock --json status | jq -r .attestation.verdict)\" != untrusted ]"
ok $? "the new QEMU enrolled as golden set qemu-2: h1 passes its own check ($(self h1 reason))"

# --- a config edit counts when reloaded ---------------------------------------------------
# the same settings written another way: other bytes, the same meaning
jq -c '.log.level = "info"' "$dir/h1.json" >"$dir/h1.json.tmp" && cat "$dir/h1.json.tmp" >"$dir/h1.json"
sleep 3
[ "$(self h1 verdict)" != untrusted ] && ! grep -q 'component=config' "$dir/h1.log"
ok $? "h1.json edited (not reloaded): no measurement changes, 3 s later h1 still passes"
kill -HUP "$(cat "$dir/h1.pid")"
wait_for 5 grep -q 'event=integrity_failed host=h1 component=config' "$dir/h1.log"
ok $? "SIGHUP: the reload measures the config in force, which is not golden yet"
hsmig "$dir" h1 ivt enrol h1 --golden config-2 >/dev/null &&
	wait_for 5 bash -c "[ \"\$($SMIG --socket $dir/h1.sock --json status | jq -r .attestation.verdict)\" != untrusted ]"
ok $? "enrolled, h1 passes again"
# a neighbour that still holds h1 untrusted (its IVT without config-2) would tell h1 so,
# and h1, out of maintenance, would leave: as docs/operations.md says, wait for them first
h1_by() { $SMIG --socket "$dir/$1.sock" --json hosts | jq -r '.hosts[] | select(.name == "h1") | .attestation.verdict'; }
wait_for 15 bash -c "[ \"\$($SMIG --socket $dir/h2.sock --json hosts | jq -r '.hosts[] | select(.name == \"h1\") | .attestation.verdict')\" = unverified ] &&
	[ \"\$($SMIG --socket $dir/h3.sock --json hosts | jq -r '.hosts[] | select(.name == \"h1\") | .attestation.verdict')\" = unverified ]"
ok $? "h2 and h3 hold h1 $(h1_by h2)/$(h1_by h3) again with the new IVT"

out=$(hsmig "$dir" h1 maintenance off h1) && sleep 3 && running_on h1 vm1 && [ "$(n_evac)" -eq 0 ] &&
	hsmig "$dir" h1 --json status | jqe '.maintenance.on == false' >/dev/null
ok $? "maintenance off: vm1 still runs on h1, nothing evacuated: $out"
verdict_h1() { hsmig "$dir" h2 --json hosts | jq -r '.hosts[] | select(.name == "h1") | .attestation.verdict'; }
wait_for 10 bash -c "[ \"\$($SMIG --socket $dir/h2.sock --json hosts | jq -r '.hosts[] | select(.name == \"h1\") | (.maintenance | tostring) + \" \" + .attestation.verdict')\" = 'false unverified' ]"
ok $? "h2 holds h1 out of maintenance and $(verdict_h1) (its golden values; no TPM here)"

# --- an upgrade enrolled before it lands ------------------------------------------------
version "$dir/qemu-3" 3
sum=$(sha256sum "$dir/qemu-3" | cut -d' ' -f1)
loads() { grep -c 'event=ivt_loaded' "$dir/$1.log"; }
l2=$(loads h2) l3=$(loads h3)
out=$(hsmig "$dir" h1 ivt enrol h1 --golden qemu-3 --with "qemu=$sum") &&
	# as docs/operations.md says: every verifier has the new IVT before the upgrade lands
	wait_for 10 bash -c "[ \$(grep -c event=ivt_loaded $dir/h2.log) -gt $l2 ] && [ \$(grep -c event=ivt_loaded $dir/h3.log) -gt $l3 ]"
ok $? "qemu-3 enrolled ahead with --with qemu=SHA256, and h2 and h3 took the new IVT: $(tr '\n' ' ' <<<"$out")"
n_fail=$(grep -c 'event=integrity_failed' "$dir/h1.log")
cp "$dir/qemu-3" "$qemu.new" && mv "$qemu.new" "$qemu"
sleep 3
[ "$(grep -c 'event=integrity_failed' "$dir/h1.log")" -eq "$n_fail" ] && running_on h1 vm1 && [ "$(n_evac)" -eq 0 ] &&
	self h1 reason | grep -q "golden set qemu-3"
ok $? "qemu-3 installed: no integrity failure, vm1 stays ($(self h1 reason))$(grep 'event=integrity_failed' "$dir/h1.log" | tail -n +$((n_fail + 1)) | cut -c1-300)"
out=$(hsmig "$dir" h1 ivt enrol h1 --with qemu=xyz 2>&1)
[ $? -eq 1 ] && grep -q "with.qemu: a component name and 64 hex digits" <<<"$out"
ok $? "a bad --with value is refused, naming it: $out"

# --- the same change without enrolment, outside maintenance: evacuation -------------------
version "$qemu" 4
elsewhere() { running_on h2 vm1 || running_on h3 vm1; }
wait_for 30 elsewhere && ! running_on h1 vm1
ok $? "QEMU 4, not enrolled, no maintenance: h1 evacuates, vm1 runs on $(running_on h2 vm1 && echo h2 || echo h3)"
wait_for 10 bash -c "[ \"\$($SMIG --socket $dir/h2.sock --json hosts | jq -r '.hosts[] | select(.name == \"h1\") | .attestation.verdict')\" = untrusted ]"
ok $? "h2 holds h1 untrusted"

# --- maintenance survives a restart --------------------------------------------------
hsmig "$dir" h3 maintenance on --reason kernel >/dev/null && smigd_stop "$dir" h3 && smigd_start "$dir" h3 &&
	hsmig "$dir" h3 --json status | jqe '.maintenance.on and .maintenance.reason == "kernel"' >/dev/null
ok $? "h3's maintenance is still on after smigd restarts"

done_testing
