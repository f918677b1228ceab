#!/usr/bin/env bash
# The switch-over against a destination that does not play fair: after
# COMMIT, a peer's ABORT is only a word (the copy there may be running), so
# the source keeps its VM paused and asks how the migration ended; only the
# destination's recorded outcome (QUERY -> DISCARDED) lets it resume. The
# destination is smig-fakepeer with h2's real certificate.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../harness/lib.sh"
. "$here/../harness/tap.sh"

dir=$(mktemp -d /tmp/smig-switch.XXXXXX)
cleanup() {
	[ -n "${fake:-}" ] && kill "$fake" 2>/dev/null
	cluster_clean "$dir"
}
trap cleanup EXIT
cluster_make "$dir" 2 || { echo "Bail out! cluster_make"; exit 1; }
fakepeer=$SMIG_BUILD/tests/harness/smig-fakepeer

plan 7

smigd_start "$dir" h1
ok $? "h1 starts; h2's place is taken by a fake destination"
cat >"$dir/g.json" <<JSON
{"name": "g", "memory_mib": 64, $(guest_boot smig-guest.elf "mem=32 dirty=500 seed=5 hb=100")}
JSON
hsmig "$dir" h1 vm define "$dir/g.json" >/dev/null && hsmig "$dir" h1 vm start g >/dev/null &&
	wait_for 20 grep -q ' HB 5 ' "$dir/state-h1/consoles/g.log"
ok $? "a guest runs on h1"

"$fakepeer" serve --ca "$dir/pki/ca.crt" --cert "$dir/pki/h2.crt" --key "$dir/pki/h2.key" \
	--name h2 --listen "127.0.0.1:$(cat "$dir/h2.port")" --ivt "$dir/ivt.json" \
	--after-commit abort 2>"$dir/fake.log" &
fake=$!
sleep 0.5
hsmig "$dir" h1 migrate g --to h2 >"$dir/mig.out" 2>&1 &
mig=$!
state() { hsmig "$dir" h1 --json vm show g | jq -r .state; }
running() { [ "$(state)" = running ]; }
wait_for 60 grep -q 'answered COMMIT with ABORT' "$dir/fake.log" && sleep 1 &&
	s=$(state) && [ "$s" != running ] && grep -q 'event=migration_unresolved vm=g' "$dir/h1.log"
ok $? "ABORT after COMMIT: the VM stays paused on h1 (${s:-?}) while h1 asks h2 how it ended"
wait_for 15 grep -q 'answered QUERY with DISCARDED' "$dir/fake.log" &&
	wait_for 10 running
ok $? "h2's recorded outcome, DISCARDED, lets the copy on h1 resume"
wait "$mig"
rc=$?
[ $rc -ne 0 ]
ok $? "the migration is reported failed (exit $rc: $(tail -1 "$dir/mig.out" | cut -c1-160))"
n=$(grep -c ' HB ' "$dir/state-h1/consoles/g.log")
wait_for 10 bash -c "[ \$(grep -c ' HB ' '$dir/state-h1/consoles/g.log') -gt $((n + 3)) ]" &&
	out=$("$here/../harness/guest-check" g "$dir/state-h1")
ok $? "the guest beats on h1, its checks clean: ${out:-}"

# --- READY for an id the destination did not give in PREPARED ---------------------------
kill "$fake" 2>/dev/null
wait "$fake" 2>/dev/null
"$fakepeer" serve --ca "$dir/pki/ca.crt" --cert "$dir/pki/h2.crt" --key "$dir/pki/h2.key" \
	--name h2 --listen "127.0.0.1:$(cat "$dir/h2.port")" --ivt "$dir/ivt.json" \
	--after-commit swap-id 2>"$dir/fake2.log" &
fake=$!
sleep 0.5
out=$(hsmig "$dir" h1 migrate g --to h2 2>&1)
rc=$?
[ $rc -ne 0 ] && grep -q 'READY with another id\|READY for another id' "$dir/fake2.log" &&
	grep -q 'MIG_READY for another migration (id [0-9a-f]\{32\})' <<<"$out" && wait_for 10 running &&
	[ "$(hsmig "$dir" h1 --json ids status | jq '.events.protocol_violation')" -ge 1 ]
ok $? "READY naming another id than PREPARED's is refused before COMMIT, counted, and g runs on h1: $(tail -1 <<<"$out" | cut -c1-200)"

done_testing
