#!/usr/bin/env bash
# UEFI and a vTPM together: a Linux guest booted by OVMF (code read-only
# from each host's firmware "ovmf", variables in its own NVRAM volume in
# the host-local pool "local") with a vTPM that OVMF measures the boot
# into. The guest sets a UEFI variable on h1; after the move to h2 the
# variable store is h2's own file, filled from the migration stream, and
# after a cold reboot on h2 the guest reads the variable back. PCR 0 reads
# the same on h1, on h2 after the move, and after the reboot. The VM's
# flash moves with it, so a destination must have the same firmware build
# or accept the VM's: h2 with another OVMF build refuses it, and so does
# h2 with flash of another size even when it lists the build; listing the
# build lets the move go.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../harness/lib.sh"
. "$here/../harness/tap.sh"

dir=$(mktemp -d /tmp/smig-uefi.XXXXXX)
trap 'cluster_clean "$dir"' EXIT
cluster_make "$dir" 2 || { echo "Bail out! cluster_make"; exit 1; }

plan 12

smigd_start "$dir" h1 && smigd_start "$dir" h2
ok $? "h1 and h2 start with firmware ovmf and pools local-h1, local-h2"
val=v$RANDOM$RANDOM
cat >"$dir/uefi1.json" <<JSON
{"name": "uefi1", "memory_mib": 272, "machine": "q35",
 "firmware": {"kind": "uefi", "name": "ovmf", "nvram": {"pool": "local", "volume": "uefi1.vars"}},
 "boot": {"kernel": {"pool": "images", "volume": "vmlinuz"}, "initrd": {"pool": "images", "volume": "initrd.img"},
          "cmdline": "console=ttyS0 quiet panic=-1 memcheck.mib=16 memcheck.rate=500 memcheck.hb=500 memcheck.efivar=$val memcheck.pcr=1"},
 "vtpm": true}
JSON
con() { cat "$dir/state-$1/consoles/uefi1.log" 2>/dev/null; }
pcrs() { con "$1" | sed -n 's/.* PCR0 \([0-9a-f]*\)$/\1/p' | sort -u; }
hsmig "$dir" h1 vm define "$dir/uefi1.json" >/dev/null && hsmig "$dir" h1 vm start uefi1 >/dev/null &&
	wait_for 120 bash -c "grep -q ' EFIVAR set=$val' $dir/state-h1/consoles/uefi1.log && grep -q ' PCR0 ' $dir/state-h1/consoles/uefi1.log"
ok $? "OVMF booted the guest on h1 (machine $(jq -r .machine "$dir/state-h1/vms/uefi1/spec.json")); it set its UEFI variable to $val"
p1=$(pcrs h1)
[ "$(wc -l <<<"$p1")" = 1 ] && [ "$p1" != "$(printf '0%.0s' $(seq 64))" ]
ok $? "the vTPM's PCR 0 holds the firmware's measurements: $p1"
! cmp -s "$dir/local-h1/uefi1.vars" /usr/share/OVMF/OVMF_VARS_4M.fd && [ ! -e "$dir/local-h2/uefi1.vars" ]
ok $? "the variable store is h1's own volume, changed by the guest; h2 has none yet"

# h2's firmware "ovmf" as another build: CODE FILE, ACCEPTS (a JSON array);
# its config is measured, so the integrity table takes h2's new measurement
h2_firmware() {
	smigd_stop "$dir" h2
	jq --arg c "$1" --argjson a "$2" '.firmware.ovmf.code = $c | .firmware.ovmf.accepts = $a' \
		"$dir/h2.json" >"$dir/h2.json.new" && mv "$dir/h2.json.new" "$dir/h2.json" &&
		ivt_make "$dir" 2 && kill -HUP "$(cat "$dir/h1.pid")" && smigd_start "$dir" h2 &&
		wait_for 10 grep -q "event=ivt_loaded.*" <(tail -n 3 "$dir/h1.log")
}
build="sha256:$(sha256sum /usr/share/OVMF/OVMF_CODE_4M.fd | cut -d' ' -f1)"
[ "$(cut -d' ' -f1 "$dir/state-h1/vms/uefi1/firmware.build")" = "$build" ]
ok $? "h1 keeps the build uefi1 booted: $(cut -c1-23 "$dir/state-h1/vms/uefi1/firmware.build")..."
h2_firmware /usr/share/OVMF/OVMF_CODE_4M.secboot.fd '[]'
out=$(hsmig "$dir" h1 migrate uefi1 --to h2 2>&1)
rc=$?
[ $rc -ne 0 ] && grep -q "firmware ovmf: uefi1 runs build $build, not this host's sha256:" <<<"$out" &&
	grep -q 'add it to firmware.ovmf.accepts; the VM is running on h1' <<<"$out" &&
	[ "$(jq -r .state <<<"$(hsmig "$dir" h1 --json vm show uefi1)")" = running ]
ok $? "h2 with another OVMF build refuses uefi1 at PREPARE; it runs on h1 (exit $rc: $(tail -1 <<<"$out"))"
h2_firmware /usr/share/OVMF/OVMF_CODE.fd "[\"$build\"]"
out=$(hsmig "$dir" h1 migrate uefi1 --to h2 2>&1)
rc=$?
[ $rc -ne 0 ] && grep -q "a VM's flash cannot change size" <<<"$out" &&
	[ "$(jq -r .state <<<"$(hsmig "$dir" h1 --json vm show uefi1)")" = running ]
ok $? "a 2 MiB build on h2 is refused even when it lists uefi1's build: $(tail -1 <<<"$out")"

h2_firmware /usr/share/OVMF/OVMF_CODE_4M.secboot.fd "[\"$build\"]"
out=$(hsmig "$dir" h1 migrate uefi1 --to h2 2>&1)
ok $? "uefi1 migrates to h2 with its vTPM, h2 listing its build in accepts: $(tail -1 <<<"$out")"
[ "$(cut -d' ' -f1 "$dir/state-h2/vms/uefi1/firmware.build")" = "$build" ]
ok $? "h2 records that uefi1 runs the build it brought, not h2's own"
# back to h2's usual firmware for the reboot below; smigd adopts the running VM
h2_firmware /usr/share/OVMF/OVMF_CODE_4M.fd '[]' &&
	wait_for 10 bash -c "[ \"\$($SMIG --socket $dir/h2.sock --json vm show uefi1 | jq -r .state)\" = running ]"
sleep 6 # a PCR 0 line from h2
n=$(con h2 | grep -c ' PCR0 ')
[ "$n" -ge 1 ] && [ "$(pcrs h2)" = "$p1" ] && [ -s "$dir/local-h2/uefi1.vars" ] &&
	out=$("$here/../harness/guest-check" uefi1 "$dir/state-h1" "$dir/state-h2")
ok $? "on h2 the guest runs on, PCR 0 unchanged ($n reads), memory checks clean: ${out:-}"

hsmig "$dir" h2 vm stop uefi1 >/dev/null && : >"$dir/state-h2/consoles/uefi1.log" &&
	hsmig "$dir" h2 vm start uefi1 >/dev/null &&
	wait_for 120 grep -q ' EFIVAR old=' "$dir/state-h2/consoles/uefi1.log"
grep -q " EFIVAR old=$val$" "$dir/state-h2/consoles/uefi1.log" && ! grep -q ' EFIVAR set=' "$dir/state-h2/consoles/uefi1.log"
ok $? "after a cold reboot on h2 the variable is still $val: $(grep -a 'EFIVAR' "$dir/state-h2/consoles/uefi1.log" | head -1)"
wait_for 20 grep -q ' PCR0 ' "$dir/state-h2/consoles/uefi1.log" && [ "$(pcrs h2)" = "$p1" ]
ok $? "and the reboot's measured boot gives the same PCR 0 on h2's firmware"

done_testing
