#!/usr/bin/env bash
# Fleet membership in etcd (store.backend "etcd"): three hosts in their own
# network namespaces, a real three-member etcd cluster beside them (TLS,
# client certificates: each smigd presents its host certificate). Each
# smigd keeps its record under a lease it renews; a host killed without a
# word leaves the fleet's view when its lease runs out, one stopped cleanly
# at once; the etcd leader's death changes nothing; the whole store gone
# longer than a lease, each host registers anew when it is back.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../harness/lib.sh"
. "$here/../harness/tap.sh"
netns_test fleet

plan 10

SMIG_STORE_TTL=3 "$cluster" up --hosts 3 --store etcd >/dev/null
ok $? "three hosts up with store.backend etcd, an etcd member beside each"

on() { hsmig "$dir" "$@"; }
members() { on "$1" --json hosts | jq -r '[.store.members[].name] | sort | join(" ")'; }
registered() { on "$1" --json status | jq -e '.store.registered and .store.reachable' >/dev/null; }
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
# the record of host H as etcd holds it, read with h1's certificate
record() { etcdtry "$dir" h1 get "/smig/hosts/$1" | jq -c '.kvs[0] // empty'; }
record_gone() { local o; o=$(etcdtry "$dir" h1 get "/smig/hosts/$1") && [ "$(jq -r .count <<<"$o")" = 0 ]; }
fleet_is() { [ "$(members "$1")" = "$2" ]; }

wait_for 15 registered h1 && wait_for 15 registered h2 && wait_for 15 registered h3 &&
	wait_for 10 fleet_is h1 "h1 h2 h3"
ok $? "each smigd registered itself; h1 sees the fleet: $(members h1)"

rec=$(record h2)
fp=$(on h2 --json status | jq -r .fingerprint)
[ "$(jq -r '.value | fromjson | .fingerprint' <<<"$rec")" = "$fp" ] &&
	[ "$(jq -r '.value | fromjson | "\(.address):\(.port)"' <<<"$rec")" = 10.77.0.2:7450 ] &&
	[ "$(jq -r .lease <<<"$rec")" = "$(on h2 --json status | jq -r .store.lease)" ] &&
	on h1 hosts | grep -qE '^h2 .* member '
ok $? "h2's record names its address and certificate, under the lease h2 renews; smig hosts shows it a member: $(jq -r .value <<<"$rec" | cut -c1-120)"

# kill -9 h3's smigd (warden and worker): its lease runs out, its record goes
pkill -KILL -f "$dir/h3.json"
t0=$(date +%s.%N)
wait_for 20 record_gone h3
gone=$?
t_gone=$(since "$t0")
wait_for 10 fleet_is h1 "h1 h2"
seen=$?
t_seen=$(since "$t0")
[ $gone -eq 0 ] && [ $seen -eq 0 ] && awk -v t="$t_gone" 'BEGIN { exit !(t <= 6) }' &&
	on h1 hosts | grep -qE '^h3 .* absent '
ok $? "h3's smigd killed -9: its record is gone when its 3 s lease runs out (${t_gone} s), h1 shows it absent (${t_seen} s)"

rm -f "$dir/h3.pid"
cgroups_clean
smigd_start "$dir" h3 && wait_for 15 registered h3 && wait_for 10 fleet_is h1 "h1 h2 h3"
ok $? "h3 restarted registers again under a new lease"

# a clean stop revokes the lease: the record goes at once
smigd_stop "$dir" h2
record_gone h2 && grep -q 'event=store_left key=/smig/hosts/h2 lease_revoked=yes' "$dir/h2.log"
ok $? "h2 stopped cleanly: its record is gone as it stops (lease revoked)"
smigd_start "$dir" h2 && wait_for 15 registered h2

# the etcd leader killed: renewals go to the other members, nobody leaves
leader=$(etcd_leader "$dir")
g1=$(on h1 --json status | jq .store.grants) g3=$(on h3 --json status | jq .store.grants)
etcd_kill "$dir" "$leader"
sleep 5 # more than the lease
[ "$(members h1)" = "h1 h2 h3" ] || [ "$(members h2)" = "h1 h2 h3" ]
all=$?
[ $all -eq 0 ] && registered h1 && registered h3 &&
	[ "$(on h1 --json status | jq .store.grants)" = "$g1" ] && [ "$(on h3 --json status | jq .store.grants)" = "$g3" ]
ok $? "etcd's leader e$leader killed: 5 s later (more than a lease) every host is still a member under its first lease"
etcd_start "$dir" "$leader"

# every member gone longer than a lease: the hosts say so, and register anew after
for k in $(cat "$dir/etcd.members"); do etcd_kill "$dir" "$k"; done
sleep 5
out=$(on h1 status)
st=$(on h1 --json status | jq -c .store)
jq -e '(.reachable | not) and (.last_error | test("no endpoint answered"))' <<<"$st" >/dev/null &&
	grep -q 'UNREACHABLE' <<<"$out" && on h1 hosts | grep -q 'the fleet store is unreachable' &&
	grep -q 'event=store_unreachable backend=etcd' "$dir/h1.log"
ok $? "etcd down: smig status and smig hosts say the store is unreachable: $(grep '^store' <<<"$out" | cut -c1-160)"
for k in $(cat "$dir/etcd.members"); do etcd_start "$dir" "$k"; done
t0=$(date +%s.%N)
wait_for 30 registered h1 && wait_for 30 registered h2 && wait_for 30 registered h3 &&
	wait_for 10 fleet_is h1 "h1 h2 h3" &&
	wait_for 5 grep -q 'event=store_reachable backend=etcd' "$dir/h1.log"
ok $? "etcd back: every host is registered again, the fleet whole ($(since "$t0") s)"

# h3's lease revoked behind its back (etcdctl): h3 notices at its next renewal
lease=$(on h3 --json status | jq -r .store.lease)
etcdctl_as "$dir" lease revoke "$(printf '%x' "$lease")" >/dev/null && record_gone h3 &&
	wait_for 10 bash -c "grep -q 'event=store_registered key=/smig/hosts/h3 .* again=yes' '$dir/h3.log'" &&
	wait_for 5 fleet_is h1 "h1 h2 h3" && [ "$(on h3 --json status | jq -r .store.lease)" != "$lease" ]
ok $? "h3's lease revoked from outside: h3 takes a new one and writes its record again"

done_testing
