#!/usr/bin/env bash
# Per-peer limits, against a peer with a real cluster certificate that does
# not play fair (smig-fakepeer as h1, from h1's namespace): it cannot hold
# more than limits.peers_per_host of h2's connections, so h3 is still
# served; one address cannot hold more than firewall.conns_per_source;
# ATTEST_REQ is answered once per session (each answer is a TPM quote),
# and a flood of them ends the session as a protocol violation.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../harness/lib.sh"
. "$here/../harness/tap.sh"
netns_test peerlimits
fakepeer=$SMIG_BUILD/tests/harness/smig-fakepeer

plan 7

"$cluster" up --hosts 3 >/dev/null
ok $? "three hosts up in their own namespaces"
h1ip=10.77.0.1
h2ip=10.77.0.2
on() { local h=$1; shift; "$cluster" exec "$h" "$SMIG" "$@"; }
# h1's smigd steps aside: its namespace, address and certificate are the fake's
smigd_stop "$dir" h1
fake() { "$cluster" exec h1 "$fakepeer" "$@" --ca "$dir/pki/ca.crt" --cert "$dir/pki/h1.crt" \
	--key "$dir/pki/h1.key" --name h1 --to $h2ip:7450; }

fake hold --count 70 --hold-s 8 >"$dir/hold.out" 2>&1 &
holder=$!
wait_for 30 grep -q '^held' "$dir/hold.out"
held=$(awk '/^held/ {print $2}' "$dir/hold.out")
[ "${held:-99}" -le 8 ]
ok $? "h1's identity asks for 70 connections and holds ${held:-?} (limits.peers_per_host 8 of max_peers 64)"
on h3 ping h2 >/dev/null
ok $? "h3 is served meanwhile"
on h2 --json events --last 0 | jqe -s 'map(select(.kind == "conn_refused" and .host == "h1" and (.detail | test("peers_per_host")))) | length > 0'
ok $? "the refusals are events naming h1 and the limit"
wait $holder

# the address's own cap: a higher per-host limit, and 10 connections per address
jq '.limits.peers_per_host = 32 | .firewall.conns_per_source = 10' "$dir/h2.json" >"$dir/h2.tmp" &&
	mv "$dir/h2.tmp" "$dir/h2.json"
ivt_make "$dir" 3
smigd_stop "$dir" h2 && smigd_start "$dir" h2
kill -HUP "$(cat "$dir/h3.pid")"
fake hold --count 20 --hold-s 1 >"$dir/hold2.out" 2>&1
held=$(awk '/^held/ {print $2}' "$dir/hold2.out")
[ "${held:-99}" -le 10 ] && on h2 --json events --last 0 |
	jqe -s --arg a $h1ip 'map(select(.kind == "conn_refused" and .addr == $a and (.detail | test("conns_per_source")))) | length > 0'
ok $? "one address holds at most firewall.conns_per_source (10) connections: held ${held:-?} of 20"

out=$(fake attest-flood --count 3000 2>&1)
n=$(awk '/^answered/ {print $2}' <<<"$out")
[ "${n:-99}" -le 1 ]
ok $? "3,000 ATTEST_REQs in one session: ${n:-?} answered ($out)"
on h2 --json events --last 0 | jqe -s 'map(select(.kind == "protocol_violation" and .host == "h1" and (.detail | test("second ATTEST_REQ")))) | length == 1' &&
	on h3 ping h2 >/dev/null
ok $? "the flood ended its session as one protocol violation; h2 still answers h3"

done_testing
