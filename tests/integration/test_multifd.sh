#!/usr/bin/env bash
# Parallel stream channels (QEMU multifd) through smig, with real daemons
# on two loopback hosts: the memory-verifying guest, busy, moves with 4
# channels, each a TLS session of its own bound to the attested one, and
# its checks are clean on the destination. Through a man in the middle
# that flips one bit in one channel's stream, the whole migration fails,
# the VM runs on at its source, and the destination keeps nothing. A
# channel that is not bound to the migration (a second session of the
# same host, a MAC that does not match) is refused as a protocol
# violation.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../harness/lib.sh"
. "$here/../harness/tap.sh"
check_guest=$here/../harness/guest-check
MITM=$SMIG_BUILD/tests/harness/smig-mitm

dir=$(mktemp -d /tmp/smig-mfd.XXXXXX)
cleanup() {
	[ -n "${relay_pid:-}" ] && kill "$relay_pid" 2>/dev/null
	cluster_clean "$dir"
}
trap cleanup EXIT
[ -n "${KEEP:-}" ] && trap - EXIT
cluster_make "$dir" 2 || { echo "Bail out! cluster_make"; exit 1; }
p2=$(cat "$dir/h2.port")
pm=$(free_port)

plan 11
reload() { # reload HOST: SIGHUP, then wait until it took the host table
	local n
	n=$(grep -c event=reload_done "$dir/$1.log")
	kill -HUP "$(cat "$dir/$1.pid")"
	wait_for 10 bash -c "[ \$(grep -c event=reload_done '$dir/$1.log') -gt $n ]"
}

smigd_start "$dir" h1 && smigd_start "$dir" h2
ok $? "h1 and h2 start"

cat >"$dir/g.json" <<JSON
{"name": "g", "memory_mib": 160,
 $(guest_boot smig-guest.elf "mem=128 dirty=2000 seed=21 hb=100"), "vtpm": true}
JSON
hsmig "$dir" h1 vm define "$dir/g.json" >/dev/null && hsmig "$dir" h1 vm start g >/dev/null &&
	wait_for 30 grep -q ' HB 5 ' "$dir/state-h1/consoles/g.log"
ok $? "a busy guest with a vTPM runs on h1 (128 MiB checked, 2000 pages/s dirtied)"

res=$(hsmig "$dir" h1 --json migrate g --to h2 --channels 4 | tail -1)
jqe '.status == "completed" and (.channels | length) == 4 and ([.channels[].bytes] | min) > 1000000' <<<"$res" >/dev/null
ok $? "it moves with 4 channels: $(jq -c '{total_ms, downtime_ms, bytes, channels: [.channels[] | .bytes]}' <<<"$res")"
[ "$(grep -cE 'event=channel_in vm=g from=h1 channel=[0-3]' "$dir/h2.log")" = 4 ]
ok $? "h2 took channels 0-3, each on a session of its own"
out=$("$check_guest" g --vtpm "$dir/state-h2" "$dir/state-h1")
rc=$?
[ $rc -eq 0 ] && [ "$(vm_where "$dir" g)" = h2 ]
ok $? "g runs only on h2, every page and its PCR chain intact: $out"
ls -A "$dir/state-h1/mig" "$dir/state-h2/mig" | grep -q sock
[ $? -ne 0 ]
ok $? "no channel socket is left in either STATE_DIR/mig"

# h2 reaches h1 only through the relay, which flips one bit 2 MB into the
# first session to get that far: with multifd only the channels carry that much
p1=$(cat "$dir/h1.port")
"$MITM" relay "$pm" 127.0.0.1 "$p1" --flip-after 2000000 --flip-once 2>>"$dir/mitm.log" &
relay_pid=$!
wait_for 5 bash -c "ss -Htln 'sport = :$pm' | grep -q ."
jq --arg a "127.0.0.1:$pm" '(.hosts[] | select(.name == "h1") | .address) = $a' \
	"$dir/hosts.json" >"$dir/hosts.tmp" && mv "$dir/hosts.tmp" "$dir/hosts.json"
reload h2
n=$(grep -c ' HB ' "$dir/state-h2/consoles/g.log")
out=$(hsmig "$dir" h2 migrate g --to h1 --channels 4 2>&1)
rc=$?
[ $rc -ne 0 ] && [ "$(grep -c 'flipped a bit' "$dir/mitm.log")" = 1 ]
ok $? "one bit flipped 2 MB into one channel: the migration fails (exit $rc): $out"
grep -qE 'failed while streaming: .*channel [0-9]: read: .*(bad record mac|decrypt)' <<<"$out"
ok $? "the source's answer says why: h1's abort names the damaged channel"
wait_for 5 grep -qE 'channel [0-9]: read: .*(bad record mac|decrypt)' "$dir/h1.log"
ok $? "h1 found the damaged record in that channel: $(grep -oE 'channel [0-9]: read: [^"]*' "$dir/h1.log" | head -1)"
sleep 1
wait_for 10 bash -c "[ \$(grep -c ' HB ' '$dir/state-h2/consoles/g.log') -gt $((n + 3)) ]" &&
	[ "$(hsmig "$dir" h2 --json vm show g | jq -r .state)" = running ] &&
	! hsmig "$dir" h1 --json vm list | jqe '.vms[] | select(.name == "g")' >/dev/null &&
	"$check_guest" g --vtpm "$dir/state-h2" "$dir/state-h1" >/dev/null
ok $? "g beats on at h2 with its checks clean, h1 kept no copy"
kill "$relay_pid" 2>/dev/null
relay_pid=
jq --arg a "127.0.0.1:$p1" '(.hosts[] | select(.name == "h1") | .address) = $a' \
	"$dir/hosts.json" >"$dir/hosts.tmp" && mv "$dir/hosts.tmp" "$dir/hosts.json"
reload h2
res=$(hsmig "$dir" h2 --json migrate g --to h1 --channels 2 | tail -1)
jqe '.status == "completed" and (.channels | length) == 2' <<<"$res" >/dev/null &&
	"$check_guest" g --vtpm "$dir/state-h1" "$dir/state-h2" >/dev/null
ok $? "straight, it moves back with 2 channels, checks clean: $(jq -c '{total_ms, downtime_ms}' <<<"$res")"

done_testing
