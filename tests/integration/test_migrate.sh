#!/usr/bin/env bash
# Live migration between two smigd hosts on loopback with real QEMU (TCG),
# real swtpm and the test guest. After every case the VM runs in exactly
# one place and the guest's own checks (every page, heartbeat continuity,
# vTPM PCR chain) are clean.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../harness/lib.sh"
. "$here/../harness/tap.sh"
check_guest=$here/../harness/guest-check

dir=$(mktemp -d /tmp/smig-mig.XXXXXX)
trap 'cluster_clean "$dir"' EXIT
cluster_make "$dir" 2 || { echo "Bail out! cluster_make"; exit 1; }
guest=$SMIG_BUILD/guest/smig-guest.elf

plan 34

smigd_start "$dir" h1 && smigd_start "$dir" h2
ok $? "h1 and h2 start"

# define_start HOST NAME MEM_MIB GUEST_ARGS VTPM [MEMBERS]: defines and starts
# a test guest (MEMBERS: more of the spec, e.g. '"guest_agent": true')
define_start() {
	cat >"$dir/$2.json" <<JSON
{"name": "$2", "memory_mib": $3, $(guest_boot smig-guest.elf "$4"), "vtpm": $5${6:+, $6}}
JSON
	hsmig "$dir" "$1" vm define "$dir/$2.json" >/dev/null &&
		hsmig "$dir" "$1" vm start "$2" >/dev/null &&
		wait_for 20 grep -q ' HB 5 ' "$dir/state-$1/consoles/$2.log"
}

where() { vm_where "$dir" "$1"; }

# runs_only_on NAME HOST: running on HOST, on no other host, and beating there
runs_only_on() {
	local n
	[ "$(where "$1")" = "$2" ] || return 1
	n=$(grep -c ' HB ' "$dir/state-$2/consoles/$1.log")
	wait_for 10 bash -c "[ \$(grep -c ' HB ' '$dir/state-$2/consoles/$1.log') -gt $((n + 3)) ]"
}

# mark HOST: remembers how long HOST's log is; wait_log then looks only past it
declare -A marks
mark() { marks[$1]=$(wc -l <"$dir/$1.log"); }
wait_log() { wait_for 15 bash -c "tail -n +$((${marks[$1]} + 1)) '$dir/$1.log' | grep -qE '$2'"; }

guest_ok() {
	local out
	out=$("$check_guest" "$@" "$dir/state-h1" "$dir/state-h2")
	local rc=$?
	diag "$out"
	return $rc
}

# ---- idle guest with a vTPM, h1 -> h2 -------------------------------------
define_start h1 idle 96 "mem=48 seed=1 hb=100" true
ok $? "an idle guest with a vTPM runs on h1"
res=$(hsmig "$dir" h1 --json migrate idle --to h2 | tail -1)
ok $? "smig migrate idle --to h2 succeeds"
jqe '.status == "completed" and .from == "h1" and .to == "h2" and .bytes > 0 and
	.total_ms > 0 and .downtime_ms > 0 and .setup_ms > 0 and .handshake_ms > 0 and .handshake_ms < .setup_ms and .passes >= 1 and .mbps > 0 and
	(.cipher | test("AES_256_GCM|CHACHA20")) and .peer_trust != null and
	.qemu_downtime_ms >= 0 and .accel == "tcg"' <<<"$res" >/dev/null
ok $? "the result names status, hosts, times, bytes, passes, throughput, cipher ($(jq -c '{total_ms,downtime_ms,setup_ms,bytes,passes}' <<<"$res"))"
runs_only_on idle h2
ok $? "the VM now runs on h2 and only there"
[ ! -d "$dir/state-h1/vms/idle" ] && [ ! -e "$dir/state-h1/vtpm-keys/idle.key" ] &&
	[ -f "$dir/state-h2/vtpm-keys/idle.key" ]
ok $? "the source wiped its copy and vTPM state; the destination holds the vTPM key"
guest_ok idle --vtpm
ok $? "the guest found every page intact and its PCR chain continued"
id1=$(jq -r .id <<<"$res")
[[ $id1 =~ ^[0-9a-f]{32}$ ]] && grep -q "event=migration_incoming vm=idle from=h1 id=$id1" "$dir/h2.log" &&
	grep -q "event=migration_prepared vm=idle to=h2 id=$id1" "$dir/h1.log" &&
	! grep -q "event=migration_start vm=idle to=h2 id=" "$dir/h1.log"
ok $? "the migration's id is 128 bits that h2 chose and sent in PREPARED ($id1)"

# ---- back again, h2 -> h1 ---------------------------------------------------
res=$(hsmig "$dir" h2 --json migrate idle --to h1 --downtime-ms 40 | tail -1) && runs_only_on idle h1 &&
	id2=$(jq -r .id <<<"$res") && [[ $id2 =~ ^[0-9a-f]{32}$ ]] && [ "$id2" != "$id1" ]
ok $? "A -> B -> A: the same VM goes back to h1 (under a new id from h1: ${id2:-})"
jqe '.qemu_downtime_limit_ms == 40' <<<"$res" && [ -f "$dir/state-h1/vms/idle/spec.json" ] &&
	[ ! -e "$dir/state-h1/vms/idle/spec.staged" ]
ok $? "QEMU got the 40 ms budget; the spec staged on arrival became the host's own at commit"
hsmig "$dir" h1 migrate idle --to h2 >"$dir/tcg.out" 2>"$dir/tcg.err" &&
	grep -q '^idle: h1 -> h2 in ' "$dir/tcg.out" && grep -q "ran under QEMU's TCG" "$dir/tcg.err" &&
	grep -q 'event=migration_under_tcg vm=idle' "$dir/h1.log"
ok $? "without --json: one line of figures, and a warning that the VM ran under TCG"
guest_ok idle --vtpm
ok $? "after two moves the guest's checks are still clean"
# each case runs on its own: a finished guest stops rather than compete for the CPUs
hsmig "$dir" h2 vm stop idle >/dev/null

# ---- a busy guest that needs several passes ------------------------------
# (its spec has a guest agent port, but the test guest runs no agent)
define_start h1 busy 160 "mem=128 dirty=20000 seed=2 hb=100" false '"guest_agent": true'
res=$(hsmig "$dir" h1 --json migrate busy --to h2 | tail -1)
[ "$(jq -r .status <<<"$res")" = completed ] && [ "$(jq -r .passes <<<"$res")" -ge 2 ]
ok $? "a busy guest (20000 dirty pages/s) migrates in $(jq -r .passes <<<"$res") passes"
jqe '.guest_agent_before == "silent" and .guest == "alive" and (.guest_detail | test("agent") | not)' <<<"$res" >/dev/null &&
	grep -q 'event=guest_agent_ping vm=busy answered=no' "$dir/h1.log" &&
	! grep -q 'event=guest_unresponsive' "$dir/h2.log"
ok $? "a guest agent that never answered the source is not held against the destination: $(jq -r .guest_detail <<<"$res")"
runs_only_on busy h2 && guest_ok busy
ok $? "the busy guest runs on h2 with every page verified"
hsmig "$dir" h2 vm stop busy >/dev/null

# ---- progress events --------------------------------------------------------
define_start h1 slow 96 "mem=64 dirty=2000 seed=3 hb=100" false
mark h1
hsmig "$dir" h1 --json migrate slow --to h2 --max-bandwidth 40 >"$dir/slow.json" &
mpid=$!
# a second terminal follows the same job
wait_log h1 'migration_streaming vm=slow'
hsmig "$dir" h1 --json migrate watch slow >"$dir/watch1.json" &
wpid=$!
wait "$mpid"
wait "$wpid"
wrc=$?
out=$(cat "$dir/slow.json")
jq -se '[.[] | select(.progress.phase == "streaming")] | length >= 2' <<<"$out" >/dev/null &&
	jq -se '.[-1].status == "completed"' <<<"$out" >/dev/null
ok $? "with --json, progress objects stream before the result"
id=$(jq -sr '.[-1].id' <<<"$out")
[ $wrc -eq 0 ] && jq -se --arg id "$id" '.[-1].status == "completed" and .[-1].id == $id and
	([.[] | select(.progress) | .progress.id == $id] | all) and ([.[] | select(.progress)] | length >= 1)' \
	"$dir/watch1.json" >/dev/null && jq -se '[.[] | select(.progress.id)] | length >= 1' <<<"$out" >/dev/null
ok $? "smig migrate watch from a second terminal follows the same job ($id) to its result (exit $wrc)"
jq -se '[.[] | select(.progress.phase == "streaming") | .progress |
	has("percent") and has("mbps") and has("dirty_pages_rate") and has("pass") and has("eta_s")] | all' \
	<<<"$out" >/dev/null
ok $? "progress carries percent, throughput, dirty rate, pass and ETA"

# ---- Ctrl-C detaches, watch re-attaches, cancel from another terminal ---------
mark h2
"$SMIG" --socket "$dir/h2.sock" migrate slow --to h1 --max-bandwidth 8 >"$dir/detach.out" 2>&1 &
mpid=$!
wait_log h2 'migration_prepared vm=slow'
wait_for 10 grep -q '^migration [0-9a-f]* of slow' "$dir/detach.out"
id=$(sed -n 's/^migration \([0-9a-f]*\) of slow.*/\1/p' "$dir/detach.out")
hsmig "$dir" h2 vm list | grep -q '^slow  *migrating>h1 '
ok $? "smig migrate names the job first (${id:-no id}); vm list shows the VM migrating>h1"
kill -INT "$mpid"
wait "$mpid"
rc=$?
sleep 0.5
[ $rc -eq 130 ] && grep -q "detached; the migration of slow goes on: smig migrate watch ${id:0:16} re-attaches" "$dir/detach.out" &&
	tail -n +$((${marks[h2]} + 1)) "$dir/h2.log" | grep -q 'event=migration_streaming vm=slow' &&
	! tail -n +$((${marks[h2]} + 1)) "$dir/h2.log" | grep -q 'event=migration_failed vm=slow' &&
	hsmig "$dir" h2 vm list | grep -q '^slow  *migrating>h1 '
ok $? "Ctrl-C detaches (exit $rc), says how to re-attach, and the migration goes on: $(tail -1 "$dir/detach.out")"
hsmig "$dir" h2 migrate watch "${id:0:16}" >"$dir/cancel.out" 2>&1 &
wpid=$!
wait_log h2 'migration_watched vm=slow'
hsmig "$dir" h2 migrate cancel "${id:0:12}" >"$dir/cancel.cli" 2>&1 &&
	grep -q "^slow: migration $id cancelled, the VM runs here" "$dir/cancel.cli"
ok $? "smig migrate cancel ID from another terminal stops it: $(cat "$dir/cancel.cli")"
wait "$wpid"
rc=$?
[ $rc -eq 5 ] && grep -q 'cancelled by the operator' "$dir/cancel.out"
ok $? "the re-attached watch hears the cancel: exit 5, and why"
runs_only_on slow h2 && guest_ok slow
ok $? "after the cancel the VM runs on its source only, guest checks clean"

# ---- kill -9 the destination QEMU mid-stream -------------------------------
mark h2
hsmig "$dir" h2 migrate slow --to h1 --max-bandwidth 8 >"$dir/kq.out" 2>&1 &
mpid=$!
wait_log h2 'migration_streaming vm=slow'
wait_for 10 test -s "$dir/state-h1/vms/slow/qemu.pid"
sleep 0.5
kill -9 "$(cat "$dir/state-h1/vms/slow/qemu.pid")"
wait "$mpid"
ok $([ $? -eq 5 ] && echo 0 || echo 1) "killing the destination's QEMU fails the migration (exit 5)"
runs_only_on slow h2 && guest_ok slow && [ ! -d "$dir/state-h1/vms/slow" ]
ok $? "the VM keeps running on the source; the destination kept nothing"
last=$(hsmig "$dir" h2 --json migrate list --vm slow --last 2)
jq -e '.migrations[-1].failed_by == "destination" and .migrations[-2].failed_by == "source" and
	.migrations[-2].outcome == "cancelled"' <<<"$last" >/dev/null
ok $? "the history names the side that ended each: the destination (its QEMU killed), the source (cancelled): $(jq -c '[.migrations[] | {outcome, failed_by}]' <<<"$last")"

# ---- kill -9 the destination smigd mid-stream ------------------------------
mark h2
hsmig "$dir" h2 migrate slow --to h1 --max-bandwidth 8 >"$dir/kd.out" 2>&1 &
mpid=$!
wait_log h2 'migration_streaming vm=slow'
sleep 0.5
kill -9 "$(cat "$dir/h1.pid")"
wait "$mpid"
ok $([ $? -eq 5 ] && echo 0 || echo 1) "killing the destination smigd fails the migration (exit 5)"
out=$(hsmig "$dir" h2 migrate slow --to h1 2>&1)
rc=$?
[ $rc -eq 4 ] && grep -q "slow to h1 failed while connecting" <<<"$out" && runs_only_on slow h2
ok $? "to a host whose smigd is down: unreachable, exit 4 as documented, the VM stays (exit $rc: $(cut -c1-140 <<<"$out"))"
smigd_start "$dir" h1 && runs_only_on slow h2 && guest_ok slow &&
	[ ! -d "$dir/state-h1/vms/slow" ] && ! pgrep -f "$dir/state-h1/vms/slow" >/dev/null
ok $? "the VM runs on the source; the restarted destination cleaned up its half copy"

# ---- kill -9 the source smigd mid-stream -----------------------------------
mark h1
mark h2
hsmig "$dir" h2 migrate slow --to h1 --max-bandwidth 8 >/dev/null 2>&1 &
wait_log h2 'migration_streaming vm=slow'
sleep 0.5
kill -9 "$(cat "$dir/h2.pid")"
wait_log h1 'migration_aborted vm=slow'
ok $? "when the source smigd dies the destination aborts"
smigd_start "$dir" h2 && runs_only_on slow h2 && guest_ok slow
ok $? "the restarted source adopts its still-running VM; guest checks clean"

# ---- refusals ---------------------------------------------------------------
msg=$(hsmig "$dir" h2 migrate nosuch --to h1 2>&1)
ok $([ $? -eq 1 ] && echo 0 || echo 1) "migrating a VM that is not here: exit 1 ($msg)"
define_start h2 twin 64 "mem=16 seed=5 hb=100" false && define_start h1 twin2 64 "mem=16 seed=6 hb=100" false
cp "$dir/twin.json" "$dir/twin-h1.json"
hsmig "$dir" h1 vm define "$dir/twin-h1.json" >/dev/null
msg=$(hsmig "$dir" h2 migrate twin --to h1 2>&1)
rc=$?
[ $rc -eq 5 ] && grep -q 'already exists' <<<"$msg" && runs_only_on twin h2
ok $? "a destination that already has a VM of that name refuses; the VM stays ($msg)"
msg=$(hsmig "$dir" h1 migrate twin2 --to h1 2>&1)
ok $([ $? -eq 1 ] && echo 0 || echo 1) "migrating to oneself is refused ($msg)"

done_testing
