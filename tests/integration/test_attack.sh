#!/usr/bin/env bash
# A man in the middle between two smig hosts: one flipped bit in the
# stream aborts the migration with the VM still running on its source and
# the guest's checks clean; a recorded session replayed later is refused
# before any VM data is accepted.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../harness/lib.sh"
. "$here/../harness/tap.sh"
MITM=$SMIG_BUILD/tests/harness/smig-mitm

dir=$(mktemp -d /tmp/smig-mitm.XXXXXX)
cleanup() {
	[ -n "${relay_pid:-}" ] && kill "$relay_pid" 2>/dev/null
	cluster_clean "$dir"
}
trap cleanup EXIT
cluster_make "$dir" 2 || { echo "Bail out! cluster_make"; exit 1; }
p2=$(cat "$dir/h2.port")
pm=$(free_port)

plan 9

# h1 reaches h2 only through the relay: h2's table entry points at it
jq --arg a "127.0.0.1:$pm" '(.hosts[] | select(.name == "h2") | .address) = $a' \
	"$dir/hosts.json" >"$dir/hosts.tmp" && mv "$dir/hosts.tmp" "$dir/hosts.json"
smigd_start "$dir" h1 && smigd_start "$dir" h2
ok $? "h1 and h2 start; h1 reaches h2 through the relay"

start_relay() {
	[ -n "${relay_pid:-}" ] && kill "$relay_pid" 2>/dev/null && sleep 0.1
	"$MITM" relay "$pm" 127.0.0.1 "$p2" "$@" 2>>"$dir/mitm.log" &
	relay_pid=$!
	wait_for 5 bash -c "ss -Htln 'sport = :$pm' | grep -q ."
}

cat >"$dir/g.json" <<JSON
{"name": "g", "memory_mib": 96,
 $(guest_boot smig-guest.elf "mem=64 dirty=2000 seed=11 hb=100"), "vtpm": true}
JSON
hsmig "$dir" h1 vm define "$dir/g.json" >/dev/null && hsmig "$dir" h1 vm start g >/dev/null &&
	wait_for 20 grep -q ' HB 5 ' "$dir/state-h1/consoles/g.log"
ok $? "a busy guest with a vTPM runs on h1"

start_relay --flip-after 3000000
msg=$(hsmig "$dir" h1 migrate g --to h2 2>&1)
rc=$?
[ $rc -eq 5 ] && grep -q 'flipped a bit' "$dir/mitm.log"
ok $? "one bit flipped 3 MB into the stream: the migration fails with exit 5 ($msg)"
wait_for 5 grep -qE 'bad record mac|decrypt' "$dir/h2.log"
ok $? "h2 detected the damaged TLS record ($(grep -oE 'bad record mac|decryption failed' "$dir/h2.log" | head -1))"
on_h1_only() {
	hsmig "$dir" h1 --json vm show g | jqe '.state == "running"' >/dev/null &&
		! hsmig "$dir" h2 --json vm list | jqe '.vms[] | select(.name == "g")' >/dev/null &&
		! pgrep -f "$dir/state-h2/vms/g/" >/dev/null
}
sleep 1
on_h1_only
ok $? "the VM still runs on h1, h2 kept no copy"
n=$(grep -c ' HB ' "$dir/state-h1/consoles/g.log")
wait_for 10 bash -c "[ \$(grep -c ' HB ' '$dir/state-h1/consoles/g.log') -gt $((n + 3)) ]" &&
	"$here/../harness/guest-check" g --vtpm "$dir/state-h1" "$dir/state-h2" >/dev/null
ok $? "the guest keeps beating with every page and its PCR chain intact"

# record a whole good migration, bring the VM back, then replay the recording
start_relay --record "$dir/session.bin"
hsmig "$dir" h1 migrate g --to h2 >/dev/null && hsmig "$dir" h2 migrate g --to h1 >/dev/null
ok $? "a clean migration through the relay is recorded ($(stat -c %s "$dir/session.bin") bytes) and the VM comes back"
before=$(grep -c migration_incoming "$dir/h2.log")
refused=$(grep -c peer_refused "$dir/h2.log")
"$MITM" replay 127.0.0.1 "$p2" "$dir/session.bin"
wait_for 5 bash -c "[ \$(grep -c peer_refused '$dir/h2.log') -gt $refused ]"
ok $? "the replayed session is refused by h2 ($(grep peer_refused "$dir/h2.log" | tail -1 | grep -o 'reason=.*'))"
sleep 0.5
[ "$(grep -c migration_incoming "$dir/h2.log")" = "$before" ] && on_h1_only
ok $? "no VM data was accepted from the replay; the VM runs on h1 only"

done_testing
