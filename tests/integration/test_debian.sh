#!/usr/bin/env bash
# A real VM: the Debian 12 guest (guest/debian/build.sh, made from Debian's
# packages) boots on h1 under UEFI from its own disk in the shared pool,
# with a vTPM, systemd, and a filtered virtio-net NIC serving TCP echo. A
# client on a third machine streams through it while it moves h1 -> h2 ->
# h1. Each host's QEMU holds the one shared disk file (nothing copied), the
# NVRAM is each host's own volume, the stream keeps every byte, the guest's
# heartbeats run on without a gap or a repeat and its kernel logs no BUG.
# A cold restart on h1 boots the disk both hosts wrote to.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../harness/lib.sh"
. "$here/../harness/tap.sh"
netns_test debian
echoclient=$SMIG_BUILD/tests/harness/smig-echoclient

plan 12

"$cluster" up --hosts 2 >/dev/null
ok $? "two hosts and a client on one segment"
t0=$(date +%s)
img=$("$here/../../guest/debian/build.sh" 2>"$dir/build.log")
ok $? "the Debian image from Debian's packages: ${img:-none} (ready in $(($(date +%s) - t0)) s)"
[ -s "$dir/build.log" ] && diag "$(grep 'MiB, kernel' "$dir/build.log")"
on() { local h=$1; shift; "$cluster" exec "$h" "$SMIG" "$@"; }
con() { tr -d '\r' <"$dir/state-$1/consoles/deb.log" 2>/dev/null; }
beats() { con "$1" | sed -n 's/.*smig-debian: hb \([0-9]*\) .*/\1/p'; }
qemu_fds() { ls -l "/proc/$(on "$1" --json vm show deb | jq -r .pid)/fd" 2>/dev/null | sed 's/.* -> //'; }

t0=$(date +%s)
out=$("$cluster" debian h1 deb 2>&1)
ok $? "$out (booted in $(($(date +%s) - t0)) s)"
fds=$(qemu_fds h1)
grep -qx "$dir/shared/deb.qcow2" <<<"$fds" && grep -qx "$dir/local-h1/deb.vars" <<<"$fds" &&
	grep -qx /usr/share/OVMF/OVMF_CODE_4M.fd <<<"$fds"
ok $? "h1's QEMU holds the disk of the shared pool, its NVRAM in local-h1 and h1's OVMF code"

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

on h1 vm stop deb >/dev/null && : >"$dir/state-h1/consoles/deb.log" && on h1 vm start deb >/dev/null &&
	wait_for 240 grep -qa 'smig-debian: up' "$dir/state-h1/consoles/deb.log" &&
	"$cluster" client "$echoclient" 10.77.0.240:7 --seconds 2 >/dev/null 2>&1
ok $? "a cold restart on h1 boots the disk both hosts wrote to: $(con h1 | grep 'smig-debian: up' | tail -1)"

done_testing
