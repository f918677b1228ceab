#!/usr/bin/env bash
# A real VM: the Debian 12 guest (guest/debian/build.sh, made from Debian's
# packages) boots on h1 under UEFI from its own disk in the shared pool,
# with a vTPM, systemd, and a filtered virtio-net NIC serving TCP echo. A
# client on a third machine streams through it while it moves h1 -> h2 ->
# h1. Each host's QEMU holds the one shared disk file (nothing copied), the
# NVRAM is each host's own volume, the stream keeps every byte, the guest's
# heartbeats run on without a gap or a repeat and its kernel logs no BUG.
# The guest agent answers on h1 before each move and on the destination
# after it. vm stop shuts it down through ACPI (systemd-logind hears the
# power button), and a cold start on h1 boots the disk both hosts wrote to. Last,
# the agent is stopped inside the guest while it migrates: the destination
# hears nothing after resume, and the job fails as "guest unresponsive after
# switch-over" instead of completing (the VM stays running there, flagged).
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../harness/lib.sh"
. "$here/../harness/tap.sh"
netns_test debian
echoclient=$SMIG_BUILD/tests/harness/smig-echoclient

plan 18

"$cluster" up --hosts 2 >/dev/null
ok $? "two hosts and a client on one segment"
t0=$(date +%s)
img=$("$here/../../guest/debian/build.sh" 2>"$dir/build.log")
ok $? "the Debian image from Debian's packages: ${img:-none} (ready in $(($(date +%s) - t0)) s)"
[ -s "$dir/build.log" ] && diag "$(grep 'MiB, kernel' "$dir/build.log")"
on() { local h=$1; shift; "$cluster" exec "$h" "$SMIG" "$@"; }
con() { tr -d '\r' <"$dir/state-$1/consoles/deb.log" 2>/dev/null; }
beats() { con "$1" | sed -n 's/.*smig-debian: hb \([0-9]*\) .*/\1/p'; }
# agent H JSON: one request straight to the guest agent of deb on H
agent() { printf '%s\n' "$2" | socat -t 1 - "UNIX-CONNECT:$dir/state-$1/vms/deb/agent.sock"; }
qemu_fds() { ls -l "/proc/$(on "$1" --json vm show deb | jq -r .pid)/fd" 2>/dev/null | sed 's/.* -> //'; }

t0=$(date +%s)
out=$("$cluster" debian h1 deb 2>&1)
ok $? "$out (booted in $(($(date +%s) - t0)) s)"
fds=$(qemu_fds h1)
grep -qx "$dir/shared/deb.qcow2" <<<"$fds" && grep -qx "$dir/local-h1/deb.vars" <<<"$fds" &&
	grep -qx /usr/share/OVMF/OVMF_CODE_4M.fd <<<"$fds"
ok $? "h1's QEMU holds the disk of the shared pool, its NVRAM in local-h1 and h1's OVMF code"
wait_for 60 on h1 vm ping deb >/dev/null 2>&1
ok $? "the guest agent (qemu-ga, virtio-serial) answers on h1: $(on h1 vm ping deb 2>&1)"

"$cluster" client "$echoclient" 10.77.0.240:7 --rate 32 --until "$dir/stop" >"$dir/echo.out" 2>&1 &
client=$!
wait_for 30 grep -q 'echoed=[1-9]' "$dir/echo.out"
ok $? "a client streams through systemd's echo service in the guest"

out=$(on h1 migrate deb --to h2 2>&1)
ok $? "deb moves to h2 while the stream runs: $(grep " -> " <<<"$out")"
fds=$(qemu_fds h2)
grep -qx "$dir/shared/deb.qcow2" <<<"$fds" && grep -qx "$dir/local-h2/deb.vars" <<<"$fds" &&
	[ ! -e "$dir/local-h2/deb.qcow2" ] && [ "$(ls "$dir/shared")" = deb.qcow2 ]
ok $? "h2's QEMU opened the same shared disk (nothing copied) and its own NVRAM volume"
grep -q 'event=guest_agent_ping vm=deb answered=yes' "$dir/h1.log" &&
	grep -q 'event=guest_agent_answered vm=deb' "$dir/h2.log" &&
	grep -q 'the guest agent answered .* after resume' <<<"$out"
ok $? "the agent answered h1 before the move and h2 after resume: $(grep 'after the switch-over' <<<"$out")"
wait_for 20 bash -c "[ \$(grep -ac 'smig-debian: hb' $dir/state-h2/consoles/deb.log) -ge 1 ]"
sleep 2
out=$(on h2 migrate deb --to h1 2>&1)
ok $? "and back to h1: $(grep " -> " <<<"$out")"
wait_for 20 bash -c "[ \$(grep -ac 'smig-debian: hb' $dir/state-h1/consoles/deb.log) -ge 2 ]"
touch "$dir/stop"
wait $client
rc=$?
res=$(tail -1 "$dir/echo.out")
[ $rc -eq 0 ]
ok $? "the connection survived both moves, every byte echoed in order: $res"

all=$( (beats h1; beats h2) | sort -n)
n=$(wc -l <<<"$all")
[ "$n" -ge 3 ] && [ "$(head -1 <<<"$all")" = 1 ] && [ "$(tail -1 <<<"$all")" = "$n" ] &&
	[ "$(uniq <<<"$all" | wc -l)" = "$n" ]
ok $? "the guest's heartbeats 1..$n ran on across both hosts, none missing, none twice (h1: $(beats h1 | tr '\n' ' '), h2: $(beats h2 | tr '\n' ' '))"
bugs=$( (con h1; con h2) | grep -E 'BUG:|Oops|Call Trace|Kernel panic|stuck for' | head -3)
[ -z "$bugs" ]
ok $? "the guest's kernel logged no BUG, oops or lockup${bugs:+: $bugs}"

out=$(on h1 --json vm stop deb) && [ "$(jq -r .stop.how <<<"$out")" = guest ] &&
	con h1 | grep -q 'reboot: Power down'
ok $? "vm stop shuts the Debian guest down through ACPI (logind, systemd's shutdown, the kernel's 'reboot: Power down') in $(jq -r .stop.seconds <<<"${out:-{\}}") s"
: >"$dir/state-h1/consoles/deb.log" && on h1 vm start deb >/dev/null &&
	wait_for 240 grep -qa 'smig-debian: up' "$dir/state-h1/consoles/deb.log" &&
	"$cluster" client "$echoclient" 10.77.0.240:7 --seconds 2 >/dev/null 2>&1
ok $? "a cold restart on h1 boots the disk both hosts wrote to: $(con h1 | grep 'smig-debian: up' | tail -1)"

# A guest that stops answering while it moves: qemu-ga is stopped from inside
# the guest after h1 heard it, while the (slowed) stream runs.
wait_for 60 on h1 vm ping deb >/dev/null 2>&1
pings=$(grep -c 'event=guest_agent_ping vm=deb answered=yes' "$dir/h1.log")
commits=$(grep -c 'event=migration_committed vm=deb' "$dir/h2.log")
on h1 migrate deb --to h2 --max-bandwidth 12 >"$dir/mig.out" 2>&1 &
mig=$!
wait_for 30 bash -c "[ \$(grep -c 'event=guest_agent_ping vm=deb answered=yes' $dir/h1.log) -gt $pings ]"
[ "$(grep -c 'event=migration_committed vm=deb' "$dir/h2.log")" -gt "$commits" ] &&
	diag "the stream ended before the agent was stopped"
agent h1 '{"execute":"guest-exec","arguments":{"path":"/bin/sh","arg":["-c","kill -STOP $(pidof qemu-ga)"]}}' >"$dir/exec.out" 2>&1
wait $mig
rc=$?
[ $rc -eq 5 ] && grep -q 'failed (guest unresponsive after switch-over)' "$dir/mig.out"
ok $? "the agent silent after resume: the job fails (exit $rc): $(head -c 300 "$dir/mig.out")"
show=$(on h2 --json vm show deb)
[ "$(jq -r .state <<<"$show")" = running ] && jq -r .last_error <<<"$show" | grep -q 'guest agent answered on h1' &&
	grep -q 'event=guest_unresponsive_after_switchover vm=deb from=h1' "$dir/h2.log"
ok $? "the VM runs on h2, flagged: $(jq -r .last_error <<<"$show" | head -c 160)"
out=$(on h2 vm ping deb 2>&1)
[ $? -ne 0 ] && grep -q 'did not answer' <<<"$out"
ok $? "and smig vm ping says so: $out"

done_testing
