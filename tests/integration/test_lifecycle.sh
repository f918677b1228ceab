#!/usr/bin/env bash
# A VM's life as an operator runs it, with real QEMU (TCG), swtpm and the
# test guest (which powers off on the ACPI power button, unless acpi=off):
# vm stop shuts the guest down through ACPI and kills only a guest that
# does not power off in time; vm reboot shuts it down and starts it again
# in the same QEMU, with its vTPM; vm define gives a VM a new spec (while
# it runs only autostart and shutdown_timeout_s); after a host's boot the
# autostart VMs start, after a restart of smigd alone they do not, and a
# VM that moved to another host starts there, never on the host it left.
# vm show lists the VM's history across all of it.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../harness/lib.sh"
. "$here/../harness/tap.sh"

dir=$(mktemp -d /tmp/smig-life.XXXXXX)
trap 'cluster_clean "$dir"' EXIT
cluster_make "$dir" 2 || { echo "Bail out! cluster_make"; exit 1; }

plan 27

smigd_start "$dir" h1 && smigd_start "$dir" h2
ok $? "h1 and h2 start"

con() { cat "$dir/state-$1/consoles/$2.log" 2>/dev/null; }
# spec NAME CMDLINE [MEMBERS]
spec() {
	printf '{"name": "%s", "memory_mib": 64, %s, "vtpm": true%s}\n' "$1" \
		"$(guest_boot smig-guest.elf "mem=16 hb=100 $2")" "${3:+, $3}" >"$dir/$1.json"
}
beats_after() { # HOST NAME N: at least N heartbeats after the last BOOT line
	[ "$(con "$1" "$2" | sed -n '/BOOT smig-guest/h; /BOOT smig-guest/!H; ${x;p}' | grep -c ' HB ')" -ge "$3" ]
}
# HOST NAME BOOTS N: a BOOT line more than BOOTS, and N heartbeats after it
# (the reboot's answer may come before the guest's new BOOT line)
booted_again() {
	[ "$(con "$1" "$2" | grep -c 'BOOT smig-guest')" -gt "$3" ] && beats_after "$1" "$2" "$4"
}
qpid() { hsmig "$dir" "$1" --json vm show "$2" | jq -r .pid; }
state() { hsmig "$dir" "$1" --json vm show "$2" | jq -r .state; }
secs() { date +%s.%N; }

spec web1 ""
spec quiet1 "acpi=off"
hsmig "$dir" h1 vm define "$dir/web1.json" >/dev/null && hsmig "$dir" h1 vm start web1 >/dev/null &&
	hsmig "$dir" h1 vm define "$dir/quiet1.json" >/dev/null && hsmig "$dir" h1 vm start quiet1 >/dev/null &&
	wait_for 20 beats_after h1 web1 3 && wait_for 20 beats_after h1 quiet1 3
ok $? "web1 and quiet1 (which ignores the power button) run on h1"

# --- stop: the power button, then quit after the time is up
t0=$(secs)
out=$(hsmig "$dir" h1 --json vm stop web1)
t=$(echo "$(secs) - $t0" | bc)
[ "$(jq -r .state <<<"$out")" = shutoff ] && [ "$(jq -r .stop.how <<<"$out")" = guest ] &&
	con h1 web1 | grep -q 'POWEROFF acpi' && ! pgrep -f "$dir/state-h1/vms/web1/" >/dev/null
ok $? "vm stop: the guest powered off by the ACPI power button in $(jq -r .stop.seconds <<<"$out") s (answer after ${t} s), QEMU and swtpm gone"
jq -e '.history | map(.why) | (map(test("ACPI power button pressed")) | any) and (map(test("the guest powered off in")) | any)' <<<"$out" >/dev/null
ok $? "its history says so: $(jq -c '[.history[-2:][] | .why]' <<<"$out")"

t0=$(secs)
out=$(hsmig "$dir" h1 --json vm stop quiet1 --timeout 2)
t=$(echo "$(secs) - $t0" | bc)
[ "$(jq -r .state <<<"$out")" = shutoff ] && [ "$(jq -r .stop.how <<<"$out")" = forced ] &&
	[ "$(echo "$t >= 2 && $t < 10" | bc)" = 1 ] && ! con h1 quiet1 | grep -q POWEROFF &&
	grep -q 'event=vm_shutdown_timeout vm=quiet1 timeout_s=2 action=quit' "$dir/h1.log"
ok $? "a guest that ignores the button is stopped only after its 2 s (answer after ${t} s)"
out=$(hsmig "$dir" h1 vm stop quiet1 2>&1)
[ $? -eq 1 ] && grep -q 'quiet1 is shutoff already' <<<"$out"
ok $? "stopping a stopped VM says so: $out"

# a Linux guest (Debian's kernel; its init powers off on KEY_POWER from the ACPI button driver)
cat >"$dir/lin1.json" <<JSON
{"name": "lin1", "memory_mib": 256,
 "boot": {"kernel": {"pool": "images", "volume": "vmlinuz"}, "initrd": {"pool": "images", "volume": "initrd.img"},
          "cmdline": "console=ttyS0 quiet panic=-1 memcheck.mib=16 memcheck.rate=0 memcheck.hb=200"}}
JSON
hsmig "$dir" h1 vm define "$dir/lin1.json" >/dev/null && hsmig "$dir" h1 vm start lin1 >/dev/null &&
	wait_for 120 grep -q ' HB 5 ' "$dir/state-h1/consoles/lin1.log" &&
	out=$(hsmig "$dir" h1 --json vm stop lin1) && [ "$(jq -r .stop.how <<<"$out")" = guest ] &&
	con h1 lin1 | grep -q 'POWEROFF acpi' && con h1 lin1 | grep -q 'reboot: Power down'
ok $? "a Linux guest powers off through ACPI too, its kernel's last word 'reboot: Power down' ($(jq -r .stop.seconds <<<"${out:-{\}}") s)"

# --- reboot: in the same QEMU, with its vTPM
# (the console keeps its earlier boots: counted, not cut, since a fast guest
# may print its BOOT line before anything could cut the file)
boots=$(con h1 web1 | grep -c 'BOOT smig-guest')
hsmig "$dir" h1 vm start web1 >/dev/null && wait_for 20 booted_again h1 web1 "$boots" 12
boots=$(con h1 web1 | grep -c 'BOOT smig-guest')
pid=$(qpid h1 web1)
out=$(hsmig "$dir" h1 --json vm reboot web1)
rc=$?
[ $rc -eq 0 ] && [ "$(jq -r .reboot.how <<<"$out")" = guest ] && [ "$(qpid h1 web1)" = "$pid" ] &&
	wait_for 20 booted_again h1 web1 "$boots" 15 && [ "$(con h1 web1 | grep -c 'BOOT smig-guest')" = $((boots + 1)) ] &&
	con h1 web1 | tac | sed '/POWEROFF/q' | grep -q 'VTPM ok 10' && ! con h1 web1 | grep -q FAIL
ok $? "vm reboot: the guest shut down and booted again in the same QEMU (pid $pid), its vTPM checks pass after it ($(jq -r .reboot.seconds <<<"$out") s)"
[ "$(state h1 web1)" = running ] && ! hsmig "$dir" h1 --json vm show web1 | jq -e .operation >/dev/null
ok $? "and it is running, with no operation left over"

hsmig "$dir" h1 vm start quiet1 >/dev/null && wait_for 20 beats_after h1 quiet1 3
pid=$(qpid h1 quiet1)
out=$(hsmig "$dir" h1 vm reboot quiet1 --timeout 2 2>&1)
rc=$?
[ $rc -eq 1 ] && grep -q 'did not shut down within 2 s' <<<"$out" && grep -q 'reboot quiet1 --force' <<<"$out" &&
	[ "$(state h1 quiet1)" = running ] && [ "$(qpid h1 quiet1)" = "$pid" ] && wait_for 10 beats_after h1 quiet1 8
ok $? "a guest that ignores the button runs on after its time (exit $rc): $out"
hsmig "$dir" h1 vm reboot quiet1 --timeout 4 >/dev/null 2>&1 &
rb=$!
sleep 1
out=$(hsmig "$dir" h1 migrate quiet1 --to h2 2>&1)
rc=$?
wait $rb
[ $rc -eq 1 ] && grep -q 'quiet1 is shutting down or rebooting; migrate it once that has ended' <<<"$out" &&
	[ "$(vm_where "$dir" quiet1)" = h1 ]
ok $? "no migration while a reboot holds the guest (exit $rc): $out"
n=$(con h1 quiet1 | grep -c 'BOOT smig-guest')
out=$(hsmig "$dir" h1 vm reboot quiet1 --force 2>&1)
[ $? -eq 0 ] && grep -q 'quiet1: reset' <<<"$out" && [ "$(qpid h1 quiet1)" = "$pid" ] &&
	wait_for 20 bash -c "[ \$(grep -c 'BOOT smig-guest' '$dir/state-h1/consoles/quiet1.log') -gt $n ]"
ok $? "vm reboot --force resets it at once"

# --- redefine
spec web1 "" '"memory_mib": 80'
sed -i 's/"memory_mib": 64, //' "$dir/web1.json"
out=$(hsmig "$dir" h1 vm define "$dir/web1.json" 2>&1)
[ $? -eq 1 ] && grep -q 'web1 is running: only autostart and shutdown_timeout_s change while it runs, not memory_mib' <<<"$out"
ok $? "a running VM keeps its memory: $out"
spec web1 "" '"autostart": true, "shutdown_timeout_s": 30'
out=$(hsmig "$dir" h1 vm define "$dir/web1.json" 2>&1)
[ $? -eq 0 ] && grep -q 'web1 redefined: autostart, shutdown_timeout_s changed (it runs on)' <<<"$out" &&
	jq -e '.autostart == true and .shutdown_timeout_s == 30' "$dir/state-h1/vms/web1/spec.json" >/dev/null
ok $? "while it runs, autostart and the shutdown timeout change: $out"
m=$(jq -r .machine "$dir/state-h1/vms/quiet1/spec.json")
hsmig "$dir" h1 vm stop quiet1 --force >/dev/null
spec quiet1 "acpi=off" '"memory_mib": 80'
sed -i 's/"memory_mib": 64, //' "$dir/quiet1.json"
out=$(hsmig "$dir" h1 vm define "$dir/quiet1.json" 2>&1)
[ $? -eq 0 ] && grep -q 'quiet1 redefined: memory_mib changed$' <<<"$out" &&
	[ "$(hsmig "$dir" h1 --json vm show quiet1 | jq .memory_mib)" = 80 ] &&
	[ "$(jq -r .machine "$dir/state-h1/vms/quiet1/spec.json")" = "$m" ]
ok $? "a stopped VM takes a new spec and keeps its pinned machine type ($m): $out"
sed 's/"vtpm": true/"vtpm": false/' "$dir/quiet1.json" >"$dir/quiet1-novtpm.json"
out=$(hsmig "$dir" h1 vm define "$dir/quiet1-novtpm.json" 2>&1)
[ $? -eq 1 ] && grep -q 'quiet1 has a vTPM and its state' <<<"$out"
ok $? "a redefinition never drops a vTPM: $out"

# --- autostart: a host's boot (every process gone, the runtime directory emptied)
boot() { # HOST
	kill -KILL "$(cat "$dir/$1.pid")" 2>/dev/null
	pkill -KILL -f "$dir/state-$1/vms/" 2>/dev/null
	wait_for 10 bash -c "! pgrep -f '$dir/state-$1/vms/' >/dev/null"
	rm -f "$dir/$1.pid" "$dir/autostart-$1.done"
	cgroups_clean
	smigd_start "$dir" "$1"
}
[ -e "$dir/autostart-h1.done" ]
ok $? "h1 marked its first start since boot in its runtime directory"
boot h1
wait_for 20 bash -c "[ \"\$($SMIG --socket $dir/h1.sock --json vm show web1 | jq -r .state)\" = running ]" &&
	[ "$(state h1 quiet1)" = shutoff ] && wait_for 20 beats_after h1 web1 3 &&
	hsmig "$dir" h1 --json vm show web1 | jq -e '.history | map(.why) | map(test("its QEMU was gone when smigd started")) | any' >/dev/null
ok $? "after h1's boot the autostart VM web1 runs again (its history says its QEMU was gone), quiet1 (no autostart) does not"
hsmig "$dir" h1 --json audit show --last 20 | jq -se 'map(select(.action == "vm.start" and .target == "web1" and .rule == "autostart" and .actor == "smigd")) | length == 1' >/dev/null &&
	hsmig "$dir" h1 --json vm show web1 | jq -e '.history | map(.why) | map(test("autostart")) | any' >/dev/null
ok $? "the start is audited (actor smigd, rule autostart) and in its history"

hsmig "$dir" h1 vm stop web1 >/dev/null && smigd_stop "$dir" h1 && smigd_start "$dir" h1 &&
	sleep 2 && [ "$(state h1 web1)" = shutoff ]
ok $? "a restart of smigd alone does not start the VM its operator stopped"

out=$(hsmig "$dir" h1 vm show web1)
grep -q '^autostart: yes, shutdown timeout 30 s' <<<"$out" && grep -q 'defined$' <<<"$out" &&
	grep -q 'rebooted: the guest shut down' <<<"$out" && grep -q 'redefined (autostart, shutdown_timeout_s)' <<<"$out" &&
	grep -q 'autostart: smigd' <<<"$out"
ok $? "vm show lists its history across both restarts of smigd"
diag "$(sed -n '/^history/,$p' <<<"$out" | tail -8)"

# --- a power cut while web1 (autostart) moves: its host never starts it by itself then
hsmig "$dir" h1 vm start web1 >/dev/null && wait_for 20 beats_after h1 web1 3 &&
	{ hsmig "$dir" h1 migrate web1 --to h2 --max-bandwidth 1 >/dev/null 2>&1 & } &&
	wait_for 20 bash -c "grep -q 'event=migration_streaming vm=web1' '$dir/h1.log'" &&
	[ -s "$dir/state-h1/worker/vms/web1/outgoing" ]
ok $? "web1 is on its way to h2, its outgoing mark synced on h1 before PREPARE"
boot h1
sleep 3
out=$(hsmig "$dir" h1 --json vm show web1)
[ "$(jq -r .state <<<"$out")" != running ] && [ -z "$(vm_where "$dir" web1)" ] &&
	jq -r .last_error <<<"$out" | grep -q 'not autostarted: a migration of it to h2 had begun'
ok $? "after the power cut h1 does not autostart web1 (h2 may have it): $(jq -r .last_error <<<"$out" | head -c 140)"
hsmig "$dir" h1 vm start web1 >/dev/null && wait_for 20 beats_after h1 web1 3 && [ "$(vm_where "$dir" web1)" = h1 ]
ok $? "h2 does not run it, so its operator starts it on h1"

# --- exactly once: an autostart VM that moved starts where it went, never where it was
{ [ "$(state h1 web1)" = running ] || hsmig "$dir" h1 vm start web1 >/dev/null; } &&
	wait_for 20 beats_after h1 web1 3 &&
	hsmig "$dir" h1 migrate web1 --to h2 >/dev/null &&
	[ "$(vm_where "$dir" web1)" = h2 ]
ok $? "web1 (autostart) moves to h2"
boot h1
sleep 2
[ "$(vm_where "$dir" web1)" = h2 ] && ! hsmig "$dir" h1 vm show web1 >/dev/null 2>&1
ok $? "after h1's boot web1 runs on h2 only: h1 does not have it any more"
boot h2
wait_for 20 bash -c "[ \"\$($SMIG --socket $dir/h2.sock --json vm show web1 | jq -r .state)\" = running ]" &&
	[ "$(vm_where "$dir" web1)" = h2 ] && wait_for 20 beats_after h2 web1 3
ok $? "after h2's boot web1 starts on h2, where its autostart went with it"

done_testing
