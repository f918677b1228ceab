#!/usr/bin/env bash
# A man in the middle between two smig hosts: one flipped bit in the
# stream aborts the migration with the VM still running on its source and
# the guest's checks clean; so does one flipped bit in one of 4 parallel
# channels (QEMU multifd, each channel a TLS session of its own bound to
# the migration's), while the same migration straight through the relay
# completes with every page intact; a recorded session replayed later is
# refused before any VM data is accepted.
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

plan 18

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

# --- parallel channels: the relay flips one bit 2 MB into the first session
# to get that far, which with multifd is one of the channels
start_relay --flip-after 2000000 --flip-once
n=$(grep -c ' HB ' "$dir/state-h1/consoles/g.log")
out=$(hsmig "$dir" h1 migrate g --to h2 --channels 4 2>&1)
rc=$?
[ $rc -ne 0 ] && [ "$(grep -c 'flipped a bit' "$dir/mitm.log")" = 2 ]
ok $? "one bit flipped 2 MB into one of 4 channels: the migration fails (exit $rc)"
grep -qE 'failed while streaming: .*channel [0-9]: read: .*(bad record mac|decrypt)' <<<"$out"
ok $? "the source's answer names the damaged channel: $out"
grep -qE 'kind=record_auth_failure .*detail="channel [0-9]: read: ' "$dir/h2.log"
ok $? "h2 counted it as a record that failed its check: $(grep -oE 'channel [0-9]: read: [^"]*' "$dir/h2.log" | head -1)"
sleep 1
on_h1_only && wait_for 10 bash -c "[ \$(grep -c ' HB ' '$dir/state-h1/consoles/g.log') -gt $((n + 3)) ]" &&
	"$here/../harness/guest-check" g --vtpm "$dir/state-h1" "$dir/state-h2" >/dev/null
ok $? "the VM still runs on h1 only, every page and its PCR chain intact"
start_relay
res=$(hsmig "$dir" h1 --json migrate g --to h2 --channels 4 | tail -1)
jqe '.status == "completed" and (.channels | length) == 4 and ([.channels[].bytes] | min) > 1000000' <<<"$res" >/dev/null &&
	[ "$(grep -cE 'event=channel_in vm=g from=h1 channel=[0-3]' "$dir/h2.log")" -ge 4 ]
ok $? "straight through the relay it moves with 4 channels, each a session of its own: $(jq -c '{total_ms, downtime_ms, bytes, channels: [.channels[] | .bytes]}' <<<"$res")"
out=$("$here/../harness/guest-check" g --vtpm "$dir/state-h2" "$dir/state-h1")
rc=$?
[ $rc -eq 0 ] && [ "$(vm_where "$dir" g)" = h2 ]
ok $? "g runs only on h2, every page and its PCR chain intact: $out"
# kTLS: where the kernel has the tls module, each channel's records go to it
if [ -d /sys/module/tls ] || modprobe -q tls 2>/dev/null; then
	jqe '[.channels[].ktls] | all' <<<"$res" >/dev/null
	ok $? "the kernel has kTLS: every channel sent through it ($(jq -c '[.channels[].ktls]' <<<"$res"))"
else
	jqe '[.channels[].ktls] | any | not' <<<"$res" >/dev/null
	ok $? "# SKIP kTLS: this kernel has no tls module, the channels' records stay in OpenSSL ($(jq -c '[.channels[].ktls]' <<<"$res"))"
fi
res=$(hsmig "$dir" h2 --json migrate g --to h1 --channels 2 | tail -1)
jqe '.status == "completed" and (.channels | length) == 2' <<<"$res" >/dev/null &&
	"$here/../harness/guest-check" g --vtpm "$dir/state-h1" "$dir/state-h2" >/dev/null
ok $? "and back with 2 channels, checks clean: $(jq -c '{total_ms, downtime_ms}' <<<"$res")"
! ls -A "$dir/state-h1/mig" "$dir/state-h2/mig" | grep -q sock
ok $? "no channel socket is left in either STATE_DIR/mig"

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
