#!/usr/bin/env bash
# smigd under systemd: the unit this build installs verifies with
# systemd-analyze, and smigd speaks the notification protocol of
# Type=notify (READY=1 once its worker serves, RELOADING=1 and READY=1
# around a SIGHUP, STOPPING=1 at SIGTERM), here to a socket of the test's
# own standing in for systemd's.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../harness/lib.sh"
. "$here/../harness/tap.sh"

dir=$(mktemp -d /tmp/smig-systemd.XXXXXX)
listener=
cleanup() {
	[ -n "$listener" ] && kill "$listener" 2>/dev/null
	cluster_clean "$dir"
}
trap cleanup EXIT
cluster_make "$dir" 1 || { echo "Bail out! cluster_make"; exit 1; }

plan 5

unit=$SMIG_BUILD/dist/smigd.service
grep -q '^Type=notify$' "$unit" && grep -q '^ExecReload=/bin/kill -HUP \$MAINPID$' "$unit" &&
	grep -q '^KillMode=process$' "$unit" &&
	sed "s|^\(Exec[A-Za-z]*=\)[^ ]*/smigd |\1$SMIGD |" "$unit" >"$dir/smigd.service" &&
	out=$(systemd-analyze verify "$dir/smigd.service" 2>&1) && [ -z "$out" ]
ok $? "the unit (Type=notify, reload by SIGHUP, VMs outlive a restart) verifies with systemd-analyze${out:+: $out}"

socat -u "UNIX-RECV:$dir/notify.sock" "OPEN:$dir/notify.log,creat,append" &
listener=$!
wait_for 5 test -S "$dir/notify.sock"
notes() { tr '\n' ' ' <"$dir/notify.log"; }
# each datagram is one notification; they are written one after another
said() { grep -c . <(grep -o "$1" "$dir/notify.log"); }
NOTIFY_SOCKET=$dir/notify.sock smigd_start "$dir" h1 &&
	wait_for 10 grep -q 'READY=1' "$dir/notify.log" && grep -q 'STATUS=serving as h1' "$dir/notify.log" &&
	hsmig "$dir" h1 status >/dev/null
ok $? "READY=1 once the worker serves, with a status line: $(notes)"

n=$(said 'READY=1')
kill -HUP "$(cat "$dir/h1.pid")"
ready_again() { [ "$(said 'READY=1')" -gt "$n" ]; }
wait_for 10 grep -q 'RELOADING=1' "$dir/notify.log" && grep -q 'MONOTONIC_USEC=[0-9]' "$dir/notify.log" &&
	wait_for 10 ready_again && hsmig "$dir" h1 status >/dev/null
ok $? "SIGHUP (systemctl reload): RELOADING=1, then READY=1 again"

pid=$(cat "$dir/h1.pid")
kill -9 "$(pgrep -P "$pid" | head -1)" 2>/dev/null
two_workers() { [ "$(grep -c 'event=worker_ready' "$dir/h1.log")" -ge 2 ]; }
wait_for 20 two_workers && sleep 1 && hsmig "$dir" h1 status >/dev/null &&
	[ "$(said 'READY=1')" -eq $((n + 1)) ]
ok $? "a worker the warden restarts does not say READY=1 again"

kill -TERM "$pid"
wait_for 10 grep -q 'STOPPING=1' "$dir/notify.log"
ok $? "SIGTERM (systemctl stop): STOPPING=1"

done_testing
