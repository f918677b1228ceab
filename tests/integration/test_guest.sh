#!/usr/bin/env bash
# The test guest under plain QEMU: it boots, verifies its memory, catches a
# page damaged behind its back, drives a vTPM, and survives QEMU's own live
# migration with every page and its PCR chain intact. This is the ground
# truth the migration tests stand on.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../harness/lib.sh"
. "$here/../harness/qemu.sh"
. "$here/../harness/tap.sh"

dir=$(mktemp -d /tmp/smig-guest.XXXXXX)
cleanup() {
	for d in "$dir"/*/; do qemu_stop "$d"; done
	[ -n "${SMIG_KEEP:-}" ] || rm -rf "$dir"
}
trap cleanup EXIT

plan 10

[ -f "$SMIG_GUEST" ]
ok $? "the test guest is built ($SMIG_GUEST)"

qemu_start "$dir/idle" 64 "mem=32 seed=3 hb=100"
wait_for 20 grep -qa '^HB 10 ' "$dir/idle/serial.log"
ok $? "an idle guest boots and beats"
grep -qa '^BOOT smig-guest mem=32 dirty=0 seed=3' "$dir/idle/serial.log" &&
	grep -qa '^READY pages=8192' "$dir/idle/serial.log" &&
	! grep -qa FAIL "$dir/idle/serial.log" &&
	[ "$(grep -a '^HB 10 ' "$dir/idle/serial.log" | awk '{print ($3 > 8192 && $4 == 0)}')" = 1 ]
ok $? "it verified every page at least once with no error"
qemu_stop "$dir/idle"

qemu_start "$dir/bad" 64 "mem=8 seed=3 hb=100 corrupt=3"
wait_for 20 grep -qa '^FAIL page 1024 gen 1 word 7' "$dir/bad/serial.log"
ok $? "a page changed behind the guest's back is caught (FAIL page)"
qemu_stop "$dir/bad"

# QEMU-native live migration of a busy guest with a vTPM, A -> B over a unix socket
qemu_start "$dir/a" 96 "mem=64 dirty=3000 seed=9 hb=100" --vtpm
qemu_start "$dir/b" 96 "mem=64 dirty=3000 seed=9 hb=100" --incoming --vtpm
wait_for 30 grep -qa '^VTPM ok 10' "$dir/a/serial.log"
ok $? "the guest extends PCR 16 and reads back its own chain (VTPM ok)"

qmp "$dir/b" "{\"execute\":\"migrate-incoming\",\"arguments\":{\"uri\":\"unix:$dir/mig.sock\"}}" >/dev/null
wait_for 5 test -S "$dir/mig.sock"
qmp "$dir/a" "{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"unix:$dir/mig.sock\"}}" >/dev/null
migrated() { qmp "$dir/a" '{"execute":"query-migrate"}' | grep -q '"status": *"completed"'; }
wait_for 60 migrated
ok $? "QEMU's own migration completes"

before=$(serial_last_hb "$dir/a/serial.log")
wait_for 20 bash -c "[ \"\$(grep -a '^HB ' '$dir/b/serial.log' | tail -1 | awk '{print \$2}')\" -gt $((before + 5)) ]"
ok $? "the heartbeat continues on the destination (source stopped at $before)"
first=$(grep -a '^HB ' "$dir/b/serial.log" | head -1 | awk '{print $2}')
! grep -qa '^BOOT' "$dir/b/serial.log" && [ "${first:-0}" -ge "$before" ]
ok $? "no restart: the destination's first heartbeat ($first) follows the source's last"
wait_for 20 bash -c "grep -a '^VTPM ok' '$dir/b/serial.log' | grep -q ."
! grep -qa FAIL "$dir/b/serial.log" && ! grep -qa FAIL "$dir/a/serial.log"
ok $? "no lost page and an intact PCR chain after migration"
last=$(grep -a '^HB ' "$dir/b/serial.log" | tail -1)
[ "$(awk '{print $4}' <<<"$last")" = 0 ]
ok $? "the guest's own error count is 0 ($last)"

done_testing
