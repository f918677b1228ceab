#!/usr/bin/env bash
# The fleet store's transport against a real etcd: three members (Debian's
# etcd-server) in the test hosts' namespaces, TLS with client certificates
# of the cluster's CA, and smig's client (src/lib/etcd.c) driven call by
# call through smig-etcd-try: keys and prefixes, compare-and-swap (the
# ownership primitive) won by exactly one of two racers, leases that expire
# and are kept alive, a stranger's certificate refused, and the leader
# killed under the client's feet.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../harness/lib.sh"
. "$here/../harness/tap.sh"
netns_test etcd

plan 13

"$cluster" up --hosts 3 --store etcd --no-smigd >/dev/null && leader=$(etcd_leader "$dir")
ok $? "three host namespaces, an etcd member in each, member e${leader:-?} leads"

try() { etcdtry "$dir" "$@"; }
count_is() { [ "$(try h2 get "$1" | jq -r .count)" = "$2" ]; }
# on_member K KEY VALUE: member K alone answers KEY with VALUE
on_member() {
	[ "$(ip netns exec "$(cat "$dir/etcd-e$1.ns")" "$SMIG_BUILD/tests/harness/smig-etcd-try" \
		--endpoints "https://$(cat "$dir/etcd-e$1.addr"):2379" --ca "$dir/pki/ca.crt" \
		--cert "$dir/pki/h1.crt" --key "$dir/pki/h1.key" get "$2" | jq -r '.kvs[0].value')" = "$3" ]
}
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

out=$(try h2 put /smig/hosts/h2 '{"address": "10.77.0.2:7450"}') &&
	got=$(try h3 get /smig/hosts/h2) &&
	[ "$(jq -r '.kvs[0].value | fromjson | .address' <<<"$got")" = 10.77.0.2:7450 ] &&
	[ "$(jq -r '.kvs[0].mod_revision' <<<"$got")" = "$(jq -r .revision <<<"$out")" ] &&
	[ "$(etcdctl_as "$dir" get /smig/hosts/h2 --print-value-only)" = '{"address": "10.77.0.2:7450"}' ]
ok $? "h2 writes a key, h3 reads it back with its revision, and etcdctl sees the same: $(jq -c .kvs[0] <<<"${got:-{\}}")"

try h1 put /smig/hosts/h1 a >/dev/null && try h1 put /smig/hostsx b >/dev/null &&
	got=$(try h1 --prefix get /smig/hosts/) &&
	[ "$(jq -r '[.kvs[].key] | join(" ")' <<<"$got")" = "/smig/hosts/h1 /smig/hosts/h2" ] &&
	[ "$(jq -r .count <<<"$got")" = 2 ]
ok $? "a prefix reads exactly the keys that begin with it: $(jq -c '[.kvs[].key]' <<<"${got:-{\}}")"

a=$(try h1 cas /smig/vms/web1/owner 0 h1) && b=$(try h2 cas /smig/vms/web1/owner 0 h2) &&
	jq -e .done <<<"$a" >/dev/null && jq -e '.done | not' <<<"$b" >/dev/null &&
	[ "$(try h3 get /smig/vms/web1/owner | jq -r '.kvs[0].value')" = h1 ]
ok $? "compare-and-swap on a key that must not exist: the first wins, the second is told it did not"

rev=$(try h1 get /smig/vms/web1/owner | jq -r '.kvs[0].mod_revision')
c=$(try h1 cas /smig/vms/web1/owner "$rev" h2) && d=$(try h3 cas /smig/vms/web1/owner "$rev" h3) &&
	jq -e .done <<<"$c" >/dev/null && jq -e '.done | not' <<<"$d" >/dev/null &&
	e=$(try h3 delif /smig/vms/web1/owner "$rev") && jq -e '.done | not' <<<"$e" >/dev/null &&
	[ "$(try h2 get /smig/vms/web1/owner | jq -r '.kvs[0].value')" = h2 ]
ok $? "a swap from the revision read moves it once; a second swap or delete from that stale revision does nothing"

# ten racers from the three namespaces for one key that must not exist
for i in $(seq 1 10); do
	try "h$((i % 3 + 1))" cas /smig/vms/race/owner 0 "r$i" >"$dir/race.$i" &
done
wait
won=$(cat "$dir"/race.* | jq -s 'map(select(.done)) | length')
owner=$(try h1 get /smig/vms/race/owner | jq -r '.kvs[0].value')
[ "$won" = 1 ] && [ "$(cat "$dir"/race.* | wc -l)" = 10 ] && grep -q "\"done\":true" "$dir/race.${owner#r}"
ok $? "ten clients race to create the same owner key: exactly one wins ($owner), the nine others are told so"

g=$(try h1 grant 2) && id=$(jq -r .id <<<"$g") && try h1 --lease "$id" put /smig/alive/h1 yes >/dev/null &&
	[ "$(try h2 get /smig/alive/h1 | jq -r '.kvs[0].lease')" = "$id" ]
ok $? "a key bound to a 2 s lease ($(jq -c . <<<"${g:-{\}}"))"
alive=true
for i in 1 2 3 4 5 6; do
	k=$(try h1 keepalive "$id") && [ "$(jq -r .ttl <<<"$k")" -gt 0 ] || alive=false
	sleep 0.5
done
$alive && count_is /smig/alive/h1 1
ok $? "kept alive every 0.5 s it outlives its TTL: the key is there after 3 s"
t0=$(date +%s.%N)
wait_for 10 count_is /smig/alive/h1 0
gone=$?
t=$(since "$t0")
k=$(try h1 keepalive "$id")
[ $gone -eq 0 ] && [ "$(jq -r .ttl <<<"$k")" = 0 ]
ok $? "left alone, the lease expires and takes the key with it (gone after ${t} s); a late keepalive is told TTL 0"

g=$(try h1 grant 30) && id=$(jq -r .id <<<"$g") && try h1 --lease "$id" put /smig/alive/h1 yes >/dev/null &&
	try h1 revoke "$id" >/dev/null && count_is /smig/alive/h1 0
ok $? "a revoked lease takes its keys at once"

"$SMIG" pki init "$dir/other" >/dev/null && "$SMIG" pki issue "$dir/other" h1 --ip 10.77.0.1 >/dev/null
out=$(ip netns exec "$(cat "$dir/etcd-e1.ns")" "$SMIG_BUILD/tests/harness/smig-etcd-try" \
	--endpoints "$(etcd_endpoints "$dir")" --ca "$dir/pki/ca.crt" --cert "$dir/other/h1.crt" \
	--key "$dir/other/h1.key" --timeout-ms 1000 put /smig/hosts/h1 evil 2>&1)
rc=$?
[ $rc -eq 1 ] && grep -q 'no endpoint answered' <<<"$out" && [ "$(try h2 get /smig/hosts/h1 | jq -r '.kvs[0].value')" = a ]
ok $? "a client whose certificate another CA signed is refused by every member, nothing written (exit $rc: $(cut -c1-160 <<<"$out"))"
out=$("$SMIG_BUILD/tests/harness/smig-etcd-try" --endpoints http://10.77.0.1:2379 --ca "$dir/pki/ca.crt" \
	--cert "$dir/pki/h1.crt" --key "$dir/pki/h1.key" get /x 2>&1)
[ $? -eq 1 ] && grep -q 'over TLS only' <<<"$out"
ok $? "an http:// endpoint is refused before anything is sent: $out"

# the leader killed: the next calls go to the members left
leader=$(etcd_leader "$dir")
etcd_kill "$dir" "$leader"
t0=$(date +%s.%N)
out=$(try h2 --timeout-ms 1000 put /smig/after-leader yes) && t=$(since "$t0") &&
	[ "$(jq -r .endpoint <<<"$out")" != "https://10.77.0.$leader:2379" ] &&
	[ "$(try h3 get /smig/after-leader | jq -r '.kvs[0].value')" = yes ] &&
	etcd_start "$dir" "$leader" && wait_for 20 etcd_leader "$dir" &&
	wait_for 20 on_member "$leader" /smig/after-leader yes
ok $? "the leader e$leader killed: a write goes to another member (${t:-?} s, $(jq -r .endpoint <<<"${out:-{\}}")); e$leader restarted catches up"

done_testing
