#!/usr/bin/env bash
# Each VM confined: its QEMU and its swtpm run as a uid of the VM's own (not
# root, not another VM's), without capabilities, with no_new_privs and a
# seccomp filter, in a cgroup of the VM's with a memory limit, under a
# Landlock ruleset that leaves them the system's files, a few devices and
# their own directory. One VM's QEMU cannot open another VM's disk or vTPM
# state even where the file's mode would let its uid read it (the attempt
# made by QEMU itself, through a test build's debug.qmp), nor can that uid
# outside QEMU. The vTPM state key lives apart from the state it encrypts.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../harness/lib.sh"
. "$here/../harness/tap.sh"

dir=$(mktemp -d /tmp/smig-confine.XXXXXX)
trap 'cluster_clean "$dir"' EXIT
cluster_make "$dir" 1 || { echo "Bail out! cluster_make"; exit 1; }

plan 19

smigd_start "$dir" h1
ok $? "h1 starts"
grep -q 'event=confinement cgroups="cgroup v[12]' "$dir/h1.log"
ok $? "h1 found its cgroups: $(grep -o 'event=confinement.*' "$dir/h1.log")"

# b has a disk in the local pool: a file every uid could read by its mode
head -c 1048576 /dev/urandom >"$dir/local-h1/b.raw"
chmod 0755 "$dir/local-h1" && chmod 0644 "$dir/local-h1/b.raw"
for vm in a b; do
	extra=
	[ $vm = b ] && extra=', "disks": [{"pool": "local", "volume": "b.raw"}]'
	printf '{"name": "%s", "memory_mib": 64, %s, "vtpm": true%s}\n' "$vm" \
		"$(guest_boot smig-guest.elf "mem=16 dirty=200 hb=100")" "$extra" >"$dir/$vm.json"
	hsmig "$dir" h1 vm define "$dir/$vm.json" >/dev/null && hsmig "$dir" h1 vm start "$vm" >/dev/null
done
wait_for 30 grep -q ' VTPM ok 10$' "$dir/state-h1/consoles/a.log" &&
	wait_for 30 grep -q ' VTPM ok 10$' "$dir/state-h1/consoles/b.log"
ok $? "two VMs with vTPMs run confined, their TPMs answering"

uid_a=$(cat "$dir/state-h1/vms/a/uid") uid_b=$(cat "$dir/state-h1/vms/b/uid")
[ "$uid_a" -ge 16781312 ] && [ "$uid_b" -ge 16781312 ] && [ "$uid_a" != "$uid_b" ]
ok $? "each VM has a uid of its own from h1's range ($uid_a, $uid_b)"

status() { grep -E "^$2:" "/proc/$1/status" | awk '{print $2}'; }
# cg_limit PID: the memory limit of PID's cgroup, from the v1 memory hierarchy or v2
cg_limit() {
	local p m
	p=$(awk -F: '$2 ~ /(^|,)memory(,|$)/ {print $3}' "/proc/$1/cgroup")
	if [ -n "$p" ]; then
		m=$(findmnt -rn -t cgroup -o TARGET,OPTIONS | awk '$2 ~ /(^|,)memory(,|$)/ {print $1; exit}')
		cat "$m$p/memory.limit_in_bytes"
	else
		p=$(awk -F: '$1 == 0 {print $3}' "/proc/$1/cgroup")
		m=$(findmnt -rn -t cgroup2 -o TARGET | head -1)
		cat "$m$p/memory.max"
	fi
}
for vm in a b; do
	eval "uid=\$uid_$vm"
	for proc in qemu swtpm; do
		pid=$(cat "$dir/state-h1/vms/$vm/$proc.pid")
		[ "$(status "$pid" Uid)" = "$uid" ] && [ "$(status "$pid" Gid)" = "$uid" ] &&
			[ "$(status "$pid" NoNewPrivs)" = 1 ] && [ "$(status "$pid" Seccomp)" = 2 ] &&
			[ "$(status "$pid" CapEff)" = 0000000000000000 ] &&
			[ "$(cg_limit "$pid")" = $(((64 + 512) * 1048576)) ] &&
			grep -qE "/smig\.h1\.[0-9a-f]{8}/vm-$vm\$" "/proc/$pid/cgroup"
		ok $? "$vm's $proc (pid $pid): uid $uid, NoNewPrivs 1, Seccomp 2, no capabilities, cgroup vm-$vm limited to $(cg_limit "$pid") bytes"
	done
done

st=$dir/state-h1/vms
[ "$(stat -c '%u %a' "$st/a/tpm")" = "$uid_a 700" ] && [ "$(stat -c '%u %g %a' "$st/a")" = "0 $uid_a 710" ] &&
	[ "$(stat -c '%u %a' "$st/a/qmp.sock")" = "0 600" ]
ok $? "a's tpm/ is its uid's alone (0700), its directory root's with its group (0710), QMP root's (0600)"

key=$dir/state-h1/vtpm-keys/a.key
[ "$(stat -c '%u %a %s' "$key")" = "0 600 32" ] && ! ls "$st/a" | grep -q key
ok $? "a's vTPM state key is root's (0600) in vtpm-keys/, not beside its state"

as_a() { setpriv --reuid="$uid_a" --regid="$uid_a" --clear-groups --no-new-privs "$@"; }
! as_a cat "$st/b/tpm/tpm2-00.permall" >/dev/null 2>&1 && ! as_a ls "$st/b" >/dev/null 2>&1 &&
	! as_a cat "$key" >/dev/null 2>&1 && ! as_a cat "$st/b/spec.json" >/dev/null 2>&1
ok $? "as a's uid, b's vTPM state, b's directory, a's own key and b's spec cannot be read"

as_a cat "$dir/local-h1/b.raw" >/dev/null
ok $? "b's disk file's mode lets a's uid read it (so only Landlock stands in QEMU's way below)"

# debug.qmp: a's QEMU itself opens a file (blockdev-add), as it would if it were compromised
qemu_open() {
	"$SMIG_BUILD/tests/harness/smig-ctl" "$dir/h1.sock" "$(printf '{"id":1,"cmd":"debug.qmp","args":{"vm":"a","command":"blockdev-add","arguments":{"driver":"file","node-name":"probe%s","read-only":true,"filename":"%s"}}}' "$RANDOM" "$1")"
}
out=$(qemu_open /usr/share/qemu/kvmvapic.bin)
jqe '.ok' <<<"$out"
ok $? "a's QEMU may open a file of the system's ($out)"
out=$(qemu_open "$dir/local-h1/b.raw")
jqe '.ok == false and (.error.message | test("Permission denied"))' <<<"$out"
ok $? "a's QEMU cannot open b's disk: $(jq -r .error.message <<<"$out")"
out=$(qemu_open "$st/b/tpm/tpm2-00.permall")
jqe '.ok == false and (.error.message | test("Permission denied"))' <<<"$out"
ok $? "a's QEMU cannot open b's vTPM state: $(jq -r .error.message <<<"$out")"
out=$(qemu_open "$dir/h1.json")
jqe '.ok == false and (.error.message | test("Permission denied"))' <<<"$out"
ok $? "a's QEMU cannot open smigd's config, which any uid may read: $(jq -r .error.message <<<"$out")"

# a's cgroup directories, in every hierarchy it is in
cg_dirs=$(awk -F: '$3 ~ /\/vm-a$/ {print $2, $3}' "/proc/$(cat "$st/a/qemu.pid")/cgroup" |
	while read -r ctl path; do
		if [ -z "$ctl" ]; then findmnt -rn -t cgroup2 -o TARGET | head -1
		else findmnt -rn -t cgroup -o TARGET,OPTIONS | awk -v c="${ctl%%,*}" '$2 ~ "(^|,)" c "(,|$)" {print $1; exit}'
		fi | sed "s|\$|$path|"
	done)
hsmig "$dir" h1 vm stop a >/dev/null && wait_for 10 hsmig "$dir" h1 vm undefine a &&
	wait_for 5 test ! -e "$key" && [ ! -d "$st/a" ] && [ -n "$cg_dirs" ] &&
	! for d in $cg_dirs; do [ -d "$d" ] && echo "$d"; done | grep -q .
ok $? "undefine removes a's directory, wipes its key, and its cgroups go: $(echo $cg_dirs)"

# with no VM left, smigd's own cgroups are empty, and whoever tidies empty
# cgroups may take them (v1; v2's holds smigd itself): the next VM still
# gets its confined cgroup
hsmig "$dir" h1 vm stop b >/dev/null && wait_for 10 hsmig "$dir" h1 vm undefine b
# smigd's own cgroups: where a's were
took=
for b in $(for d in $cg_dirs; do dirname "$d"; done | sort -u); do
	rmdir "$b" 2>/dev/null && took="$took $b"
done
printf '{"name": "c", "memory_mib": 64, %s}\n' "$(guest_boot smig-guest.elf "mem=16 hb=100")" >"$dir/c.json"
if [ -z "$took" ]; then
	ok 0 "# SKIP no v1 cgroup of smigd's to take away here"
else
	hsmig "$dir" h1 vm define "$dir/c.json" >/dev/null && hsmig "$dir" h1 vm start c >/dev/null &&
		pid=$(cat "$st/c/qemu.pid") && grep -qE "/smig\.h1\.[0-9a-f]{8}/vm-c\$" "/proc/$pid/cgroup" &&
		[ -n "$(cg_limit "$pid")" ]
	ok $? "smigd's empty cgroups taken away ($took): the next VM starts in a cgroup of its own below them again"
	hsmig "$dir" h1 vm stop c >/dev/null
fi

# A VM that outgrows its cgroup: with no overhead allowed, the limit is its
# memory_mib alone, and QEMU (its own memory on top of the 124 MiB the guest
# touches) is killed by the kernel. smigd says so, not "exited".
smigd_stop "$dir" h1
jq '.confinement.vm_memory_overhead_mib = 0' "$dir/h1.json" >"$dir/h1.json.tmp" && mv "$dir/h1.json.tmp" "$dir/h1.json"
smigd_start "$dir" h1
m_is() { [ "$(hsmig "$dir" h1 --json vm show m | jq -r .state)" = "$1" ]; }
printf '{"name": "m", "memory_mib": 128, %s}\n' "$(guest_boot smig-guest.elf "mem=108 hb=100")" >"$dir/m.json"
hsmig "$dir" h1 vm define "$dir/m.json" >/dev/null && { hsmig "$dir" h1 vm start m >/dev/null 2>&1; :; } &&
	wait_for 60 grep -q 'event=vm_oom_killed vm=m process=qemu limit_mib=128 ' "$dir/h1.log" &&
	wait_for 10 m_is shutoff &&
	m=$(hsmig "$dir" h1 --json vm show m) &&
	jq -e '.last_error | test("killed by the kernel, out of memory in the VM.s cgroup \\(limit 128 MiB")' <<<"$m" >/dev/null
ok $? "a VM past its cgroup's limit: the kernel kills its QEMU, and smigd says so ($(jq -r .last_error <<<"${m:-{\}}" | head -c 200))"

