#!/usr/bin/env bash
# smigd in two processes: the warden (root: VMs, their resources, keys, the
# audit log, the host TPM) and the worker (the worker user, no capabilities,
# no_new_privs, seccomp, Landlock, a mount namespace of its own: TLS, peers,
# control clients, migrations). The worker holds the peer listener. From
# inside the worker (a test build's debug.worker) reading /etc/shadow, the
# host key or a VM's disk, running a program, making a process, tracing or
# reading a QEMU and making a user namespace all fail; a forged request for
# another VM's volume is refused by the warden and logged and audited as a
# security event. The worker killed at any moment is started again and takes
# the VMs back; killed during a migration, the VM runs in exactly one place.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../harness/lib.sh"
. "$here/../harness/tap.sh"

dir=$(mktemp -d /tmp/smig-privsep.XXXXXX)
trap 'cluster_clean "$dir"' EXIT
cluster_make "$dir" 2 || { echo "Bail out! cluster_make"; exit 1; }

plan 26

smigd_start "$dir" h1 && smigd_start "$dir" h2
ok $? "h1 and h2 start"

worker() { pgrep -P "$(cat "$dir/$1.pid")" -x smigd-worker; }
status() { grep -E "^$2:" "/proc/$1/status" | awk '{print $2}'; }
w1=$(worker h1)
[ "$(status "$(cat "$dir/h1.pid")" Uid)" = 0 ] && [ -n "$w1" ] &&
	[ "$(status "$w1" Uid)" = "$(id -u smig)" ] && [ "$(status "$w1" Gid)" = "$(id -g smig)" ]
ok $? "the warden runs as root, the worker (pid $w1) as smig"
[ "$(status "$w1" CapEff)" = 0000000000000000 ] && [ "$(status "$w1" CapBnd)" = 0000000000000000 ] &&
	[ "$(status "$w1" NoNewPrivs)" = 1 ] && [ "$(status "$w1" Seccomp)" = 2 ]
ok $? "the worker has no capabilities (effective, bounding), NoNewPrivs 1, Seccomp 2"
[ "$(readlink "/proc/$w1/ns/mnt")" != "$(readlink /proc/self/ns/mnt)" ]
ok $? "the worker has a mount namespace of its own"
holders=$(ss -Hltnp "sport = :$(cat "$dir/h1.port")" | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u)
[ "$holders" = "$w1" ] && [ "$(status "$holders" Uid)" != 0 ]
ok $? "only the worker holds the peer listening socket, and it is not root ($holders)"

# a VM with a disk in the shared pool, readable by any uid's mode
head -c 1048576 /dev/urandom >"$dir/shared/a.raw"
chmod 0755 "$dir/shared" && chmod 0644 "$dir/shared/a.raw"
printf '{"name": "a", "memory_mib": 64, %s, "disks": [{"pool": "shared", "volume": "a.raw"}]}\n' \
	"$(guest_boot smig-guest.elf "mem=16 dirty=300 hb=100")" >"$dir/a.json"
hsmig "$dir" h1 vm define "$dir/a.json" >/dev/null && hsmig "$dir" h1 vm start a >/dev/null &&
	wait_for 30 grep -q ' HB 5 ' "$dir/state-h1/consoles/a.log"
ok $? "a VM starts: the warden opened its disk and started its QEMU"

hook() { "$SMIG_BUILD/tests/harness/smig-ctl" "$dir/h1.sock" "{\"id\":1,\"cmd\":\"debug.worker\",\"args\":$1}"; }
denied() { # denied ARGS ERRNO-REGEX DESCRIPTION
	local out
	out=$(hook "$1")
	jqe --arg e "$2" '.ok and .result.denied and (.result.errno | test($e))' <<<"$out"
	ok $? "$3: $(jq -c .result <<<"$out")"
}
denied '{"action":"open","path":"/etc/shadow"}' 'EACCES|EPERM' "the worker cannot read /etc/shadow"
denied "{\"action\":\"open\",\"path\":\"$dir/pki/h1.key\"}" 'EACCES|EPERM' "nor the host key on disk"
denied "{\"action\":\"open\",\"path\":\"$dir/shared/a.raw\"}" 'EACCES|EPERM' \
	"nor a VM's disk, though its mode lets any uid read it"
denied "{\"action\":\"open\",\"path\":\"$dir/h1.json\"}" 'EACCES|EPERM' "nor its own config (the warden reads it)"
denied '{"action":"exec"}' 'EPERM|EACCES' "the worker cannot run a program"
denied '{"action":"fork"}' 'EPERM' "nor make a process"
qpid=$(cat "$dir/state-h1/vms/a/qemu.pid")
denied "{\"action\":\"ptrace\",\"pid\":$qpid}" 'EPERM' "nor trace the VM's QEMU"
denied "{\"action\":\"peek\",\"pid\":$qpid}" 'EPERM' "nor read the QEMU's memory"
denied '{"action":"unshare"}' 'EPERM' "nor make a user namespace"
out=$(hook '{"action":"open","path":"/proc/self/status"}')
jqe '.ok and (.result.denied | not)' <<<"$out"
ok $? "what it needs still opens (/proc/self/status), so the refusals above are the sandbox's"

out=$(hook '{"action":"forge","pool":"shared","volume":"a.raw"}')
jqe '.ok and .result.denied and (.result.detail | test("a.raw of pool shared is a.s"))' <<<"$out"
ok $? "a forged request to stage a VM on a's disk is refused by the warden: $(jq -r .result.detail <<<"$out")"
grep -q 'event=security_event kind=privsep_violation request=vm.stage' "$dir/h1.log" &&
	grep -q '"action":"privsep.violation"' "$dir/state-h1/audit.log"
ok $? "the warden logs the forged request as a security event and audits it"
out=$(hook '{"action":"forge-audit","path":"audit.rotate"}')
jqe '.ok and .result.denied' <<<"$out" && ! grep -q '"detail":"forged"' "$dir/state-h1/audit.log" &&
	grep -q 'privsep_violation request=audit' "$dir/h1.log"
ok $? "a worker asking for an audit.rotate record (the warden's own) is refused as a privsep violation"

# ---- the worker dies; the warden starts another, which takes the VM back --
kill -KILL "$w1"
wait_for 10 bash -c "[ -n \"\$(pgrep -P $(cat "$dir/h1.pid") -x smigd-worker)\" ]" &&
	wait_for 20 grep -q 'event=vm_adopted vm=a' "$dir/h1.log"
ok $? "kill -9 of the worker: the warden starts another ($(worker h1)), which adopts the running VM"
n=$(grep -c ' HB ' "$dir/state-h1/consoles/a.log")
wait_for 10 bash -c "[ \$(grep -c ' HB ' '$dir/state-h1/consoles/a.log') -gt $((n + 3)) ]" &&
	[ "$(cat "$dir/state-h1/vms/a/qemu.pid")" = "$qpid" ] && hsmig "$dir" h1 vm list | grep -q '^a  *running'
ok $? "the same QEMU runs on, its console read again"
grep -q '"action":"worker.restart"' "$dir/state-h1/audit.log"
ok $? "the worker's death is audited"

# ---- killed in the middle of a migration: the VM runs in exactly one place -
printf '{"name": "m", "memory_mib": 96, %s}\n' \
	"$(guest_boot smig-guest.elf "mem=64 dirty=2000 hb=100")" >"$dir/m.json"
hsmig "$dir" h1 vm define "$dir/m.json" >/dev/null && hsmig "$dir" h1 vm start m >/dev/null &&
	wait_for 30 grep -q ' HB 3 ' "$dir/state-h1/consoles/m.log"
hsmig "$dir" h1 migrate m --to h2 --max-bandwidth 4 >"$dir/m.out" 2>&1 &
mig=$!
wait_for 30 grep -q 'event=migration_streaming vm=m' "$dir/h1.log"
kill -KILL "$(worker h1)"
wait $mig
wait_for 20 grep -q 'event=migration_aborted vm=m' "$dir/h2.log" &&
	wait_for 20 bash -c "[ \"\$(. '$SMIG_ROOT/tests/harness/lib.sh'; vm_where '$dir' m)\" = h1 ]"
ok $? "the source's worker killed mid-stream: h2 drops its copy, the new worker on h1 runs m ($(vm_where "$dir" m))"
n=$(grep -c ' HB ' "$dir/state-h1/consoles/m.log")
wait_for 10 bash -c "[ \$(grep -c ' HB ' '$dir/state-h1/consoles/m.log') -gt $((n + 3)) ]" &&
	! grep -q FAIL "$dir/state-h1/consoles/m.log"
ok $? "m beats on h1, its memory checks clean"

hsmig "$dir" h1 migrate m --to h2 --max-bandwidth 4 >"$dir/m2.out" 2>&1 &
mig=$!
wait_for 30 grep -q 'event=migration_incoming vm=m' "$dir/h2.log" &&
	wait_for 30 grep -q 'event=migration_streaming vm=m' "$dir/h1.log"
kill -KILL "$(worker h2)"
wait $mig
wait_for 20 bash -c "[ \"\$(. '$SMIG_ROOT/tests/harness/lib.sh'; vm_where '$dir' m)\" = h1 ]" &&
	wait_for 20 bash -c "[ ! -e '$dir/state-h2/vms/m' ]"
ok $? "the destination's worker killed mid-stream: h1 keeps running m, h2's new worker discards its staged copy ($(vm_where "$dir" m))"
hsmig "$dir" h1 migrate m --to h2 >/dev/null && [ "$(vm_where "$dir" m)" = h2 ]
ok $? "and m migrates again, to h2"
