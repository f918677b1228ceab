#!/usr/bin/env bash
# pingpong.sh [MOVES] [DEBIAN_MOVES]: the back-and-forth soak of make soak.
# A busy test guest with a vTPM (it rewrites its working set and verifies
# every page, and checks its PCR chain) moves h1 <-> h2 MOVES times (default
# 100); then the Debian 12 guest moves DEBIAN_MOVES times (default 20) while
# a client streams through its TCP echo service. Every move must complete
# and leave the VM running on its target only; at the end the guest's own
# checks, the stream and the Debian guest's heartbeats must be whole. TAP,
# one line per move and per final check; failures are counted.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../harness/lib.sh"
. "$here/../harness/tap.sh"
moves=${1:-100}
debian_moves=${2:-20}
netns_test soak
. "$here/../harness/faults.sh"
echoclient=$SMIG_BUILD/tests/harness/smig-echoclient

plan $((moves + debian_moves + 6))
"$cluster" up --hosts 2 >/dev/null
ok $? "two hosts up"

# move NAME I: the I-th move of NAME, from the host it is on to the other
move() {
	local from=h1 to=h2 t0 res
	[ $(($2 % 2)) -eq 0 ] && from=h2 to=h1
	t0=$(date +%s%3N)
	res=$(on "$from" --json migrate "$1" --to "$to" 2>&1 | tail -1)
	jqe '.status == "completed" and .guest == "alive"' <<<"$res" >/dev/null &&
		if [ "$1" = deb ]; then [ "$(listed deb)" = "$to:running " ]; else once "$1" "$to"; fi
	ok $? "$1 move $2: $from -> $to in $(($(date +%s%3N) - t0)) ms ($(jq -r '"downtime \(.downtime_ms | floor) ms, \(.passes) passes"' <<<"$res" 2>/dev/null || head -c 120 <<<"$res"))"
}

"$cluster" guest h1 busy --mem 64 --dirty 4000 --vtpm >/dev/null
ok $? "a busy guest with a vTPM runs on h1"
for i in $(seq 1 "$moves"); do move busy "$i"; done
sleep 1.5
out=$(guest_verdict busy --vtpm)
ok $? "after $moves moves the guest's own checks: $out"
on "$(where busy)" vm stop busy >/dev/null

"$cluster" debian h1 deb >/dev/null
ok $? "the Debian guest runs on h1"
"$cluster" client "$echoclient" 10.77.0.240:7 --rate 32 --until "$dir/stop" >"$dir/echo.out" 2>&1 &
client=$!
wait_for 30 grep -q 'echoed=[1-9]' "$dir/echo.out"
for i in $(seq 1 "$debian_moves"); do move deb "$i"; done
touch "$dir/stop"
wait $client
ok $? "the client's stream survived $debian_moves moves: $(tail -1 "$dir/echo.out")"
beats=$(cat "$dir"/state-h*/consoles/deb.log | tr -d '\r' | sed -n 's/.*smig-debian: hb \([0-9]*\) .*/\1/p' | sort -n)
n=$(wc -l <<<"$beats")
bugs=$(cat "$dir"/state-h*/consoles/deb.log | grep -caE 'BUG:|Oops|Call Trace|Kernel panic')
[ "$(uniq <<<"$beats" | wc -l)" = "$n" ] && [ "$(tail -1 <<<"$beats")" = "$n" ] && [ "$bugs" -eq 0 ]
ok $? "its heartbeats 1..$n ran on, none missing, none twice; $bugs BUG lines on its consoles"

done_testing
