#!/usr/bin/env bash
# Destination-local resources: a spec names pools, volumes and networks,
# never host paths; each host resolves the names in its own catalogue,
# opens volumes beneath their pool (no symlink, no "..") and hands QEMU
# descriptors; a destination refuses what it does not have, refuses a
# peer's hostile spec (counted as a security event) and reserves capacity
# before it answers PREPARE. smig vm check says all of it offline.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../harness/lib.sh"
. "$here/../harness/tap.sh"

dir=$(mktemp -d /tmp/smig-res.XXXXXX)
trap 'cluster_clean "$dir"' EXIT
cluster_make "$dir" 2 || { echo "Bail out! cluster_make"; exit 1; }
fakepeer=$SMIG_BUILD/tests/harness/smig-fakepeer

plan 24

# h2 offers 200 MiB: one 128 MiB VM fits, two do not
jq '.capacity = {memory_mib: 200, vcpus: 4, cpu_overcommit: 1}' "$dir/h2.json" >"$dir/h2.json.tmp" &&
	mv "$dir/h2.json.tmp" "$dir/h2.json" && ivt_make "$dir" 2 # its config is measured
echo shadow-of-the-host >"$dir/secret"
ln -s "$dir/secret" "$dir/shared/escape.raw"
head -c 1048576 /dev/zero >"$dir/shared/data.raw"
smigd_start "$dir" h1 && smigd_start "$dir" h2
ok $? "h1 and h2 start with pools images, shared and local"

spec() { # spec NAME MEM [EXTRA-JSON-MEMBERS]
	printf '{"name": "%s", "memory_mib": %s, %s%s}\n' "$1" "$2" \
		"$(guest_boot smig-guest.elf "mem=16 dirty=100 hb=100")" "${3:+, $3}"
}

# --- smig vm check: what a host would say, offline ----------------------------------
spec web 64 '"disks": [{"pool": "shared", "volume": "data.raw"}]' >"$dir/web.json"
out=$("$SMIG" vm check "$dir/web.json" --config "$dir/h1.json")
ok $? "vm check: h1 can run a VM with a disk in its shared pool: $out"
spec bad 64 '"disks": [{"pool": "nfs", "volume": "d.raw"}], "nics": [{"network": "dmz"}], "firmware": {"kind": "uefi", "name": "ovmf-9", "nvram": {"pool": "local", "volume": "bad.vars"}}' >"$dir/bad.json"
out=$("$SMIG" vm check "$dir/bad.json" --config "$dir/h1.json")
[ $? -eq 1 ] && grep -q "disks\[0\]: no pool nfs on this host (pools here: images, shared, local)" <<<"$out" &&
	grep -q "nics\[0\]: no network dmz on this host" <<<"$out" &&
	grep -q "firmware: no firmware ovmf-9 on this host" <<<"$out"
ok $? "vm check lists every unknown pool, network and firmware, exit 1"
diag "$out"
spec esc 64 '"disks": [{"pool": "shared", "volume": "escape.raw"}]' >"$dir/esc.json"
out=$("$SMIG" vm check "$dir/esc.json" --config "$dir/h1.json")
[ $? -eq 1 ] && grep -q "disks\[0\]: pool shared: volume escape.raw: is a symbolic link" <<<"$out"
ok $? "vm check refuses a volume that is a symlink out of its pool: $out"
printf '{"name": "old", "memory_mib": 64, "kernel": "/boot/vmlinuz", "disks": [{"path": "/dev/sda"}]}\n' >"$dir/old.json"
out=$("$SMIG" vm check "$dir/old.json" --config "$dir/h1.json")
[ $? -eq 1 ] && grep -q "old.json:1:45: kernel (a host path) is no longer accepted: a kernel is a volume" <<<"$out"
ok $? "vm check refuses the old host-path fields, saying what replaced them: $out"
pin='"machine": "pc-i440fx-7.2", "cpu": "qemu64"'
spec in1 64 "$pin"', "disks": [{"pool": "shared", "volume": "data.raw"}]' >"$dir/in1.json"
spec in2 64 "$pin"', "disks": [{"pool": "local", "volume": "x.raw"}]' >"$dir/in2.json"
touch "$dir/local-h1/x.raw"
out=$("$SMIG" vm check "$dir/in1.json" --config "$dir/h1.json" --incoming) &&
	grep -q "h1 can take in in1" <<<"$out" &&
	out2=$("$SMIG" vm check "$dir/in2.json" --config "$dir/h1.json" --incoming)
[ $? -eq 1 ] && grep -q "pool local is not shared on this host" <<<"$out2"
ok $? "vm check --incoming judges a move in: a writable disk moves on a shared pool, not a local one: $out / $out2"

# --- vm define applies the same checks ------------------------------------------------
msg=$(hsmig "$dir" h1 vm define "$dir/esc.json" 2>&1)
[ $? -ne 0 ] && grep -q "is a symbolic link" <<<"$msg" && ! hsmig "$dir" h1 vm show esc >/dev/null 2>&1
ok $? "vm define refuses the symlinked volume: $msg"
msg=$(hsmig "$dir" h1 vm define "$dir/bad.json" 2>&1)
[ $? -ne 0 ] && grep -q "no pool nfs" <<<"$msg" && grep -q "no network dmz" <<<"$msg"
ok $? "vm define refuses unknown names, all of them: $msg"

# --- a running VM: QEMU holds descriptors, never a path a spec named -------------------
hsmig "$dir" h1 vm define "$dir/web.json" >/dev/null && hsmig "$dir" h1 vm start web >/dev/null &&
	wait_for 30 grep -q ' HB 3 ' "$dir/state-h1/consoles/web.log"
ok $? "web runs on h1 with its disk"
pid=$(hsmig "$dir" h1 --json vm show web | jq -r .pid)
args=$(tr '\0' ' ' <"/proc/$pid/cmdline")
! grep -q "data.raw\|smig-guest.elf\|$dir/shared\|$dir/images" <<<"$args" &&
	grep -q -- '-add-fd fd=[0-9]*,set=10,opaque=disk0-rw' <<<"$args" &&
	grep -q -- '-kernel /proc/self/fd/[0-9]*' <<<"$args"
ok $? "QEMU's command line names descriptors (fdset 10, /proc/self/fd), no pool path"
outside=$(for f in /proc/"$pid"/fd/*; do readlink "$f"; done | grep '^/' |
	grep -v "^$dir/shared/\|^$dir/images/\|^$dir/state-h1/\|^/dev/\|^/proc/\|^/memfd:" || true)
readlink /proc/"$pid"/fd/* | grep -qx "$dir/shared/data.raw" && [ -z "$outside" ]
ok $? "every file QEMU holds is in a pool or its VM directory${outside:+: $outside}"
hsmig "$dir" h1 vm stop web >/dev/null

# --- a hostile peer's PREPARE ------------------------------------------------------------
prepare() { # prepare SPEC-FILE: h1's key and golden values, straight to h2
	"$fakepeer" prepare --ca "$dir/pki/ca.crt" --cert "$dir/pki/h1.crt" --key "$dir/pki/h1.key" \
		--name h1 --to "127.0.0.1:$(cat "$dir/h2.port")" --ivt "$dir/ivt.json" --spec "$@"
}
hostile_count() { hsmig "$dir" h2 --json ids status | jq '.events.hostile_spec'; }
no_qemu_on_h2() { ! pgrep -f "$dir/state-h2/vms/" >/dev/null && [ -z "$(ls -A "$dir/state-h2/vms" 2>/dev/null)" ]; }
n0=$(hostile_count)
printf '{"name": "p1", "memory_mib": 32, "disks": [{"path": "/etc/shadow"}], %s}\n' \
	"$(guest_boot smig-guest.elf x)" >"$dir/p1.json"
out=$(prepare "$dir/p1.json")
[ $? -eq 0 ] && grep -q "refused: .*path (a host path) is no longer accepted" <<<"$out" && no_qemu_on_h2
ok $? "PREPARE with a host path is refused before anything is opened: $out"
printf '{"name": "p2", "memory_mib": 32, "disks": [{"pool": "shared", "volume": "../../../etc/shadow"}], %s}\n' \
	"$(guest_boot smig-guest.elf x)" >"$dir/p2.json"
out=$(prepare "$dir/p2.json")
[ $? -eq 0 ] && grep -q "refused: .*disks\[0\].volume must be a plain file name" <<<"$out" && no_qemu_on_h2
ok $? "PREPARE with a volume climbing out of its pool is refused: $out"
spec p3 32 '"machine": "pc-i440fx-7.2", "cpu": "qemu64", "disks": [{"pool": "shared", "volume": "escape.raw"}]' >"$dir/p3.json"
out=$(prepare "$dir/p3.json")
[ $? -eq 0 ] && grep -q "refused: h2 cannot host p3: disks\[0\]: pool shared: volume escape.raw: is a symbolic link" <<<"$out" &&
	no_qemu_on_h2
ok $? "PREPARE naming a symlink that leaves the pool is refused: $out"
spec p4 32 '"machine": "pc-i440fx-7.2", "cpu": "qemu64", "disks": [{"pool": "san", "volume": "x.raw"}], "nics": [{"network": "dmz", "mac": "52:54:00:00:00:09"}]' >"$dir/p4.json"
out=$(prepare "$dir/p4.json")
[ $? -eq 0 ] && grep -q "no pool san on this host" <<<"$out" && grep -q "no network dmz on this host" <<<"$out" && no_qemu_on_h2
ok $? "PREPARE naming a pool and a network h2 lacks is refused, naming both: $out"
spec p5 32 '"machine": "pc-i440fx-7.2", "cpu": "qemu64", "disks": [{"pool": "local", "volume": "x.raw"}]' >"$dir/p5.json"
touch "$dir/local-h2/x.raw"
out=$(prepare "$dir/p5.json")
[ $? -eq 0 ] && grep -q "pool local is not shared on this host and the disk is not copied" <<<"$out"
ok $? "a writable disk in a pool that is not shared cannot move: $out"
spec p6 32 '"machine": "pc-q35-7.2", "cpu": "qemu64", "firmware": {"kind": "uefi", "name": "ovmf", "nvram": {"pool": "local", "volume": "p6.vars"}}' >"$dir/p6.json"
out=$(prepare "$dir/p6.json")
[ $? -eq 0 ] && grep -q "refused: h2 cannot host p6: the source did not say which firmware build p6 runs" <<<"$out" &&
	no_qemu_on_h2
ok $? "PREPARE of a UEFI VM that does not name its firmware build is refused: $out"
n1=$(hostile_count)
[ "$((n1 - n0))" -ge 3 ] &&
	hsmig "$dir" h2 --json audit show --last 0 | jqe -s 'map(select(.action == "vm.migrate" and .outcome == "refused" and .actor == "peer:h1")) | length >= 3' >/dev/null
ok $? "h2 counted $((n1 - n0)) hostile_spec security events and audited the refusals"
violations() { hsmig "$dir" h2 --json ids status | jq '.events.protocol_violation // 0'; }
v0=$(violations)
spec p7 32 '"machine": "pc-i440fx-7.2", "cpu": "qemu64"' >"$dir/p7.json"
out=$(prepare "$dir/p7.json" --ids wrong)
[ $? -eq 0 ] && grep -q "^prepared; sent COMMIT_REQ with another id" <<<"$out" &&
	grep -q "refused: MIG_COMMIT_REQ for another migration (id [0-9a-f]\{32\})" <<<"$out" &&
	wait_for 10 no_qemu_on_h2 && [ "$(violations)" -gt "$v0" ]
ok $? "a COMMIT_REQ naming another id than the one h2 chose for the session is refused, counted, and the staged VM is gone: $(tr '\n' ' ' <<<"$out")"

# --- admission control ----------------------------------------------------------------------
for v in a b; do
	spec "$v" 128 >"$dir/$v.json"
	hsmig "$dir" h1 vm define "$dir/$v.json" >/dev/null && hsmig "$dir" h1 vm start "$v" >/dev/null
done
wait_for 30 grep -q ' HB 3 ' "$dir/state-h1/consoles/b.log"
spec big 256 >"$dir/big.json"
hsmig "$dir" h1 vm define "$dir/big.json" >/dev/null && hsmig "$dir" h1 vm start big >/dev/null
out=$(hsmig "$dir" h1 migrate big --to h2 2>&1)
rc=$?
[ $rc -eq 4 ] && grep -q "capacity: big needs 256 MiB and 1 vCPUs; h2 has 200 MiB" <<<"$out" &&
	[ "$(hsmig "$dir" h1 --json vm show big | jq -r .state)" = running ]
ok $? "a VM larger than h2's free capacity is refused with reason capacity (exit $rc), still running on h1: $out"
hsmig "$dir" h1 migrate a --to h2 >"$dir/ma.out" 2>&1 &
pa=$!
hsmig "$dir" h1 migrate b --to h2 >"$dir/mb.out" 2>&1 &
pb=$!
wait $pa
ra=$?
wait $pb
rb=$?
{ [ $ra -eq 0 ] && [ $rb -eq 4 ]; } || { [ $ra -eq 4 ] && [ $rb -eq 0 ]; }
ok $? "two concurrent PREPAREs that fit alone but not together: exactly one is taken (exits $ra, $rb)"
diag "$(cat "$dir/ma.out" "$dir/mb.out")"
on_h1=0 on_h2=0
for v in a b; do
	[ "$(hsmig "$dir" h1 --json vm show "$v" 2>/dev/null | jq -r .state)" = running ] && on_h1=$((on_h1 + 1))
	[ "$(hsmig "$dir" h2 --json vm show "$v" 2>/dev/null | jq -r .state)" = running ] && on_h2=$((on_h2 + 1))
done
[ $on_h1 -eq 1 ] && [ $on_h2 -eq 1 ]
ok $? "each VM runs exactly once: $on_h1 on h1, $on_h2 on h2"
st=$(hsmig "$dir" h2 --json status)
jqe '.capacity.memory_mib == 200 and .capacity.used.memory_mib == 128 and .capacity.reserved.memory_mib == 0 and .capacity.free.memory_mib == 72' <<<"$st" >/dev/null
ok $? "smig status shows h2's capacity, used, reserved and free: $(jq -c .capacity <<<"$st")"
spec c 128 >"$dir/c.json"
hsmig "$dir" h2 vm define "$dir/c.json" >/dev/null
out=$(hsmig "$dir" h2 vm start c 2>&1)
[ $? -eq 4 ] && grep -q "capacity" <<<"$out"
ok $? "a local start past the capacity is refused too (exit 4): $out"

done_testing
