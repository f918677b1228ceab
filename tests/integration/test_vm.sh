#!/usr/bin/env bash
# The VM manager: smig vm define/start/console/stop/undefine drive a real
# QEMU (TCG) with a real swtpm; bad specs are refused with file:line:col;
# a VM whose QEMU cannot start ends shut off with the reason.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../harness/lib.sh"
. "$here/../harness/tap.sh"

dir=$(mktemp -d /tmp/smig-vm.XXXXXX)
trap 'cluster_clean "$dir"' EXIT
cluster_make "$dir" 1 || { echo "Bail out! cluster_make"; exit 1; }
guest=$SMIG_BUILD/guest/smig-guest.elf

plan 15

smigd_start "$dir" h1
ok $? "h1 starts"

printf '{"name": "web1", "memory_mib": 96,\n "kernal": "/x"}\n' >"$dir/bad.json"
msg=$(hsmig "$dir" h1 vm define "$dir/bad.json" 2>&1)
[ $? -eq 1 ] && grep -q "bad.json:2:2: unknown key \"kernal\"" <<<"$msg"
ok $? "a bad spec is refused with file:line:column ($msg)"

cat >"$dir/web1.json" <<JSON
{"name": "web1", "memory_mib": 96, $(guest_boot smig-guest.elf "mem=32 dirty=500 hb=100"),
 "vtpm": true, "labels": {"tier": "web"}}
JSON
hsmig "$dir" h1 vm define "$dir/web1.json" >/dev/null
ok $? "a good spec is defined"
out=$(hsmig "$dir" h1 vm define "$dir/web1.json" 2>&1) && grep -q 'web1: the spec is the one it has; nothing changed' <<<"$out" &&
	[ "$(ls "$dir/state-h1/vms")" = web1 ]
ok $? "defining the same spec again changes nothing: $out"

out=$(hsmig "$dir" h1 --json vm start web1)
[ $? -eq 0 ] && [ "$(jq -r .state <<<"$out")" = running ]
ok $? "vm start brings the VM to running"

has_console() { hsmig "$dir" h1 vm console web1 | grep -qE "$1"; }
wait_for 20 has_console '^[0-9]{13} VTPM ok 10$'
ok $? "the console log carries host timestamps and the guest's vTPM checks pass"
! has_console 'FAIL' && has_console '^[0-9]{13} HB [0-9]+ [0-9]+ 0$'
ok $? "the guest's memory checks are clean"

stat -c %a "$dir/state-h1/vtpm-keys/web1.key" | grep -qx 600 &&
	ls "$dir/state-h1/vms/web1/tpm/" | grep -q . &&
	! grep -qa 'smig-hb' "$dir"/state-h1/vms/web1/tpm/* 2>/dev/null
ok $? "the vTPM state is on disk with a 0600 per-VM key"

out=$(hsmig "$dir" h1 --json vm stop web1)
[ "$(jq -r .state <<<"$out")" = shutoff ] && ! pgrep -f "$dir/state-h1/vms/web1/" >/dev/null
ok $? "vm stop ends QEMU and swtpm"

cat >"$dir/missing.json" <<JSON
{"name": "missing", "memory_mib": 64, "boot": {"kernel": {"pool": "images", "volume": "nonexistent"}}}
JSON
msg=$(hsmig "$dir" h1 vm define "$dir/missing.json" 2>&1)
[ $? -eq 1 ] && grep -q "boot.kernel: pool images: volume nonexistent: no such volume in the pool" <<<"$msg" &&
	! hsmig "$dir" h1 vm show missing >/dev/null 2>&1
ok $? "a spec naming a volume the pool lacks is refused at define, naming pool and volume: $msg"

# not a kernel: 4 KiB of 0xff (random bytes pass QEMU's header check one time
# in 32: a setup size byte below 8 at offset 0x1f1 fits in 4 KiB)
head -c 4096 /dev/zero | tr '\0' '\377' >"$dir/images/junk.bin"
cat >"$dir/broken.json" <<JSON
{"name": "broken", "memory_mib": 64, "boot": {"kernel": {"pool": "images", "volume": "junk.bin"}}}
JSON
hsmig "$dir" h1 vm define "$dir/broken.json" >/dev/null
msg=$(hsmig "$dir" h1 vm start broken 2>&1)
rc=$?
[ $rc -eq 1 ] && grep -q "invalid kernel header" <<<"$msg" &&
	wait_for 5 bash -c "'$SMIG' --socket '$dir/h1.sock' --json vm show broken | grep -q '\"state\": *\"shutoff\"'"
ok $? "a VM whose QEMU cannot start is reported shut off with the reason (exit $rc: $msg; now $(hsmig "$dir" h1 --json vm show broken | jq -r .state))"

# the warden, not the worker, finds this one: its answer carries no QEMU sockets
truncate -s 1M "$dir/local-h1/gone.raw"
cat >"$dir/gone.json" <<JSON
{"name": "gone", "memory_mib": 64, $(guest_boot smig-guest.elf "mem=16"),
 "disks": [{"pool": "local", "volume": "gone.raw", "format": "raw"}]}
JSON
hsmig "$dir" h1 vm define "$dir/gone.json" >/dev/null && rm "$dir/local-h1/gone.raw"
msg=$(timeout 20 "$SMIG" --socket "$dir/h1.sock" vm start gone 2>&1)
rc=$?
[ $rc -eq 1 ] && grep -q "volume gone.raw: no such volume in the pool" <<<"$msg" &&
	hsmig "$dir" h1 --json vm show gone | jqe '.state == "shutoff"' >/dev/null &&
	hsmig "$dir" h1 vm undefine gone >/dev/null
ok $? "a disk gone between define and start: the start fails at once and says so (exit $rc: $msg)"

hsmig "$dir" h1 vm start web1 >/dev/null && smigd_stop "$dir" h1 && smigd_start "$dir" h1 &&
	hsmig "$dir" h1 --json vm list | jqe '[.vms[].name] | sort == ["broken", "web1"]' >/dev/null
ok $? "defined VMs survive a smigd restart"
n=$(hsmig "$dir" h1 vm console web1 | wc -l)
wait_for 10 bash -c "[ \$($SMIG --socket $dir/h1.sock vm console web1 | wc -l) -gt $n ]" &&
	hsmig "$dir" h1 --json vm show web1 | jqe '.state == "running"' >/dev/null &&
	hsmig "$dir" h1 vm stop web1 >/dev/null
ok $? "a VM left running across a smigd restart is adopted: running, console live, stoppable"

hsmig "$dir" h1 vm undefine web1 >/dev/null && [ ! -d "$dir/state-h1/vms/web1" ]
ok $? "vm undefine removes the VM and its state"

done_testing
