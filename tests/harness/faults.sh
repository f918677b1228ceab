# faults.sh - helpers for fault tests on a two-host network-namespace
# cluster (tests/harness/cluster; $cluster and $dir as netns_test sets them):
# restart a host's smigd with stop points (SMIG_STOP_AT), strike while a
# migration is at one exact step, kill what the fault kills, and find out
# where the VM runs afterwards.

on() { local h=$1; shift; "$cluster" exec "$h" "$SMIG" "$@"; }
# restart HOST [STOP_AT]: smigd on HOST again, stopping at the events STOP_AT
restart() {
	smigd_stop "$dir" "$1"
	SMIG_STOP_AT=${2:-} smigd_start "$dir" "$1"
}
# crash HOST: kill -9 HOST's smigd, warden and so worker (its VMs' QEMUs live on)
crash() { kill -KILL "$(cat "$dir/$1.pid")" 2>/dev/null; rm -f "$dir/$1.pid"; }
# kill_qemu HOST NAME: kill -9 NAME's QEMU on HOST and wait until it is gone
kill_qemu() {
	local pid
	pid=$(cat "$dir/state-$1/vms/$2/qemu.pid")
	kill -KILL "$pid"
	wait_for 10 bash -c "[ ! -e /proc/$pid ] || grep -q '^[^ ]* ([^)]*) Z' /proc/$pid/stat"
}
# worker HOST: the pid of HOST's smigd worker (stop points stop it, not the warden)
worker() { pgrep -P "$(cat "$dir/$1.pid" 2>/dev/null)" -x smigd-worker; }
# stopped HOST: HOST's smigd stopped itself at a stop point
stopped() { [ "$(awk '{print $3}' "/proc/$(worker "$1")/stat" 2>/dev/null)" = T ]; }
resume() { kill -CONT "$(worker "$1")"; }
where() { vm_where "$dir" "$1"; }
# listed NAME: every host that knows NAME, with its state
listed() {
	local h
	for h in h1 h2; do
		on "$h" --json vm list 2>/dev/null | jq -r --arg n "$1" --arg h "$h" \
			'.vms[] | select(.name == $n) | "\($h):\(.state)"'
	done | tr '\n' ' '
}
# beating NAME HOST: the guest's heartbeats go on on HOST
beating() {
	local n
	n=$(grep -c ' HB ' "$dir/state-$2/consoles/$1.log" 2>/dev/null) || n=0
	wait_for 10 bash -c "[ \$(grep -c ' HB ' '$dir/state-$2/consoles/$1.log') -gt $((n + 3)) ]"
}
# once NAME HOST: running on HOST, no other host holds a copy (within 20 s),
# and beating there
once() {
	local t=$((SECONDS + 20))
	until [ "$(listed "$1")" = "$2:running " ]; do
		[ $SECONDS -ge $t ] && return 1
		sleep 0.2
	done
	beating "$1" "$2"
}
# guest_verdict NAME [--vtpm]: the guest's own checks over every host it ran on
guest_verdict() { "$cluster" check "$@"; }
# strike HOST EVENT NAME GUEST_OPTS...: the guest NAME on h1, smigd on HOST
# set to stop at EVENT, NAME migrating to h2 in the background ($mig, its
# output in $dir/NAME.out) until HOST stops there
strike() {
	local h=$1 ev=$2 name=$3
	shift 3
	"$cluster" guest h1 "$name" "$@" >/dev/null
	restart "$h" "$ev"
	on h1 migrate "$name" --to h2 >"$dir/$name.out" 2>&1 &
	mig=$!
	wait_for 60 stopped "$h"
}
