#!/usr/bin/env bash
# A third party on the path must not make honest hosts ban each other. A
# relay in h1's namespace (so h2 sees h1's own address) flips one bit of
# h1's bytes in each of three migrations: h2 counts the failed records and
# raises a path alarm, but bans no one, and the next migration goes
# through. And a host that refuses our connection (it banned our address)
# is not a TLS failure of that host: h1, polling a host that refuses it,
# does not ban it in turn.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../harness/lib.sh"
. "$here/../harness/tap.sh"
MITM=$SMIG_BUILD/tests/harness/smig-mitm
netns_test pathfault

plan 10

"$cluster" up --hosts 2 >/dev/null
ok $? "two hosts up in their own namespaces"
h1ip=10.77.0.1
h2ip=10.77.0.2
on() { local h=$1; shift; "$cluster" exec "$h" "$SMIG" "$@"; }
# h1 reaches h2 through the relay on its own loopback; the relay connects
# out from h1's address, so h2 sees h1 as it always does
pm=$(free_port)
jq --arg a "127.0.0.1:$pm" '(.hosts[] | select(.name == "h2") | .address) = $a' \
	"$dir/hosts.json" >"$dir/hosts.tmp" && mv "$dir/hosts.tmp" "$dir/hosts.json"
ivt_make "$dir" 2
kill -HUP "$(cat "$dir/h1.pid")" "$(cat "$dir/h2.pid")"
"$cluster" exec h1 "$MITM" relay "$pm" $h2ip 7450 --flip-after 2000000 2>>"$dir/mitm.log" &
relay=$!
wait_for 5 "$cluster" exec h1 bash -c "ss -Htln 'sport = :$pm' | grep -q ."
"$cluster" guest h1 g --mem 64 --dirty 500 >/dev/null
ok $? "a guest runs on h1; h1 reaches h2 through a relay that flips a bit 2 MB into each connection"

fails=0
for i in 1 2 3; do
	on h1 migrate g --to h2 >"$dir/mig$i.out" 2>&1
	[ $? -eq 5 ] && fails=$((fails + 1))
	sleep 0.5
done
[ $fails -eq 3 ] && [ "$(on h1 --json vm show g | jq -r .state)" = running ]
ok $? "three migrations fail on damaged records ($fails of 3), the VM runs on h1 ($(tail -1 "$dir/mig3.out"))"
counted() { on h2 --json ids status | jq -e '.events.record_auth_failure >= 3' >/dev/null; }
wait_for 5 counted
status2=$(on h2 --json ids status)
jq -e '.events.record_auth_failure >= 3' <<<"$status2" >/dev/null
ok $? "h2 counted the failed records: $(jq -c .events.record_auth_failure <<<"$status2")"
jq -e '.bans | length == 0' <<<"$status2" >/dev/null &&
	jq -e '.bans | length == 0' <<<"$(on h1 --json ids status)" >/dev/null
ok $? "neither host banned the other ($(jq -c .bans <<<"$status2"))"
jq -e --arg a $h1ip '[.path_alarms[] | select(.host == "h1" and .addr == $a and .failures >= 3)] | length == 1' \
	<<<"$status2" >/dev/null &&
	on h2 --json events --last 0 | jqe -s 'map(select(.kind == "path_alarm" and .host == "h1")) | length == 1' &&
	grep -q 'event=security kind=path_alarm' "$dir/h2.log"
ok $? "h2 raised one path alarm naming h1 ($(jq -c '.path_alarms' <<<"$status2"))"
on h2 ids status | grep -A1 '^path alarms' | grep -q 'h1 .* ALARM'
ok $? "smig ids status shows it: $(on h2 ids status | grep -A1 '^path alarms' | tail -1)"

# the relay is gone: h1 reaches h2 directly again, and is served at once
kill $relay 2>/dev/null
jq --arg a "$h2ip:7450" '(.hosts[] | select(.name == "h2") | .address) = $a' \
	"$dir/hosts.json" >"$dir/hosts.tmp" && mv "$dir/hosts.tmp" "$dir/hosts.json"
ivt_make "$dir" 2
kill -HUP "$(cat "$dir/h1.pid")" "$(cat "$dir/h2.pid")"
sleep 1
on h1 --json migrate g --to h2 | tail -1 | jqe '.status == "completed"' && out=$("$cluster" check g)
ok $? "without the relay the migration completes at once; the guest's checks are clean (${out:-})"

# --- a host that refuses us is not failing TLS ------------------------------------------
# h2 bans h1's address (a client with a foreign CA's certificate from h1's
# namespace, three times); h1's own connections to h2 are then closed at accept
jq '.firewall.rules = [{kind: "tls_failure", count: 3, window_s: 30, ban_s: 8}]' \
	"$dir/h2.json" >"$dir/h2.tmp" && mv "$dir/h2.tmp" "$dir/h2.json"
jq '.firewall.rules = [{kind: "tls_failure", count: 3, window_s: 30, ban_s: 8}]' \
	"$dir/h1.json" >"$dir/h1.tmp" && mv "$dir/h1.tmp" "$dir/h1.json"
ivt_make "$dir" 2
smigd_stop "$dir" h1 && smigd_stop "$dir" h2 && smigd_start "$dir" h2 && smigd_start "$dir" h1
"$SMIG" pki init "$dir/rogue" >/dev/null && "$SMIG" pki issue "$dir/rogue" h1 --ip $h1ip >/dev/null
for _ in 1 2 3; do
	"$cluster" exec h1 timeout 5 openssl s_client -connect $h2ip:7450 -tls1_3 \
		-cert "$dir/rogue/h1.crt" -key "$dir/rogue/h1.key" </dev/null >/dev/null 2>&1
done
refused=0
for _ in 1 2 3 4 5 6; do on h1 ping h2 >/dev/null 2>&1 || refused=$((refused + 1)); done
on h2 --json ids status | jqe --arg a $h1ip '[.bans[] | select(.addr == $a)] | length == 1' &&
	[ $refused -eq 6 ]
ok $? "h2 banned h1's address; h1's six pings were refused ($refused)"
on h1 --json ids status | jqe '(.bans | length == 0) and .events.tls_failure == 0'
ok $? "h1 counts no TLS failure of h2 for being refused, and bans no one: $(on h1 --json ids status | jq -c '{bans, tls: .events.tls_failure}')"

done_testing
