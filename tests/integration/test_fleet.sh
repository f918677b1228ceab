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

plan 37

SMIG_STORE_TTL=3 "$cluster" up --hosts 3 --store etcd >/dev/null
ok $? "three hosts up with store.backend etcd, an etcd member beside each"

on() { hsmig "$dir" "$@"; }
members() { on "$1" --json hosts | jq -r '[.store.members[].name] | sort | join(" ")'; }
registered() { on "$1" --json status | jq -e '.store.registered and .store.reachable' >/dev/null; }
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
# the record of host H as etcd holds it, read from h3's namespace with its
# certificate (h3's namespace is never cut off below)
record() { etcdtry "$dir" h3 get "/smig/hosts/$1" | jq -c '.kvs[0] // empty'; }
record_gone() { local o; o=$(etcdtry "$dir" h3 get "/smig/hosts/$1") && [ "$(jq -r .count <<<"$o")" = 0 ]; }
fleet_is() { [ "$(members "$1")" = "$2" ]; }

wait_for 15 registered h1 && wait_for 15 registered h2 && wait_for 15 registered h3 &&
	wait_for 10 fleet_is h1 "h1 h2 h3"
ok $? "each smigd registered itself; h1 sees the fleet: $(members h1)"

# the store's thread runs inside the worker's sandbox, as the worker's others
w=$(pgrep -P "$(cat "$dir/h1.pid")" -x smigd-worker)
tasks=0 bad=0
for t in /proc/"$w"/task/*; do
	tasks=$((tasks + 1))
	grep -q '^NoNewPrivs:[[:space:]]*1$' "$t/status" && grep -q '^Seccomp:[[:space:]]*2$' "$t/status" ||
		bad=$((bad + 1))
done
[ -n "$w" ] && [ "$tasks" -ge 2 ] && [ "$bad" = 0 ]
ok $? "every one of the worker's $tasks threads (the store's among them) has NoNewPrivs 1 and Seccomp 2"

rec=$(record h2)
fp=$(on h2 --json status | jq -r .fingerprint)
[ "$(jq -r '.value | fromjson | .fingerprint' <<<"$rec")" = "$fp" ] &&
	[ "$(jq -r '.value | fromjson | "\(.address):\(.port)"' <<<"$rec")" = 10.77.0.2:7450 ] &&
	[ "$(jq -r .lease <<<"$rec")" = "$(on h2 --json status | jq -r .store.lease)" ] &&
	on h1 hosts | grep -qE '^h2 .* member '
ok $? "h2's record names its address and certificate, under the lease h2 renews; smig hosts shows it a member: $(jq -r .value <<<"$rec" | cut -c1-120)"

# the members' view is kept by a watch: a record written from outside reaches every smigd
# at once, and so does its deletion (h9 is in no host table: shown, never trusted)
has_h9() { on "$1" --json hosts | jq -e '[.store.members[] | select(.name == "h9")] | length == 1' >/dev/null; }
no_h9() { ! has_h9 "$1"; }
seen_within() { # seen_within CHECK: ms until CHECK holds on h1 and h2 (polled every 20 ms; 9999: never)
	local t0 i
	t0=$(date +%s%N)
	for i in $(seq 1 250); do
		"$1" h1 && "$1" h2 && { echo $((($(date +%s%N) - t0) / 1000000)); return; }
		sleep 0.02
	done
	echo 9999
}
etcdtry "$dir" h3 put /smig/hosts/h9 '{"name":"h9","address":"10.77.0.9","port":7450,"fingerprint":"sha256:00","version":"x"}' >/dev/null
t_put=$(seen_within has_h9)
listed=$(on h1 hosts)
etcdtry "$dir" h3 del /smig/hosts/h9 >/dev/null
t_del=$(seen_within no_h9)
[ "$t_put" -lt 1000 ] && [ "$t_del" -lt 1000 ] &&
	on h1 --json status | jq -e '.store.watching and .store.watch_events >= 2' >/dev/null &&
	grep -q "^h9 .*in the fleet store (/smig/hosts/h9) but not in the host table: not trusted" <<<"$listed"
ok $? "the members' view follows etcd's watch: a record put from outside is seen by h1 and h2 in ${t_put} ms, its deletion in ${t_del} ms (under 1 s each; a read per renewal took up to a third of the TTL)"

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
[ "$(members h1)" = "h1 h2 h3" ] && [ "$(members h2)" = "h1 h2 h3" ] && [ "$(members h3)" = "h1 h2 h3" ] &&
	registered h1 && registered h2 && registered h3 &&
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

# h2's record deleted behind its back (its lease lives on): h2 writes it again
etcdctl_as "$dir" del /smig/hosts/h2 >/dev/null && wait_for 5 bash -c "grep -q 'event=store_record_rewritten key=/smig/hosts/h2' '$dir/h2.log'" &&
	[ -n "$(record h2)" ]
ok $? "h2's record deleted from outside: h2 finds it gone at its next renewal and writes it again"

# h3's lease revoked behind its back (etcdctl): h3 notices at its next renewal
lease=$(on h3 --json status | jq -r .store.lease)
etcdctl_as "$dir" lease revoke "$(printf '%x' "$lease")" >/dev/null &&
	wait_for 10 bash -c "grep -q 'event=store_registered key=/smig/hosts/h3 .* again=yes' '$dir/h3.log'" &&
	wait_for 5 fleet_is h1 "h1 h2 h3" && [ "$(on h3 --json status | jq -r .store.lease)" != "$lease" ]
ok $? "h3's lease revoked from outside: h3 takes a new one and writes its record again"

# ---- VM ownership: a VM runs only where its owner record says -------------
cat >"$dir/own1.json" <<JSON
{"name": "own1", "memory_mib": 64, $(guest_boot smig-guest.elf "mem=16 dirty=200 hb=100")}
JSON
for h in h1 h2 h3; do on "$h" vm define "$dir/own1.json" >/dev/null; done
# owner_is HOST: the record names HOST (or, with "", there is none)
owner_is() {
	local o
	o=$(etcdtry "$dir" h3 get /smig/vms/own1/owner) || return 1
	[ "$(jq -r '.kvs[0].value // "{}" | fromjson | .host // ""' <<<"$o")" = "$1" ]
}
running_on() { # the hosts where own1 runs
	local h
	for h in h1 h2 h3; do
		[ "$(on "$h" --json vm show own1 2>/dev/null | jq -r .state)" = running ] && printf '%s ' "$h"
	done
}
pids=
for h in h1 h2 h3; do
	on "$h" vm start own1 >"$dir/start.$h" 2>&1 &
	pids="$pids $!"
done
wait $pids # not a bare wait: the etcd members restarted above are this shell's too
runs=$(running_on)
winner=${runs% }
refused=$(grep -l "is $winner's in the fleet store" "$dir"/start.h* 2>/dev/null | wc -l)
[ "$(wc -w <<<"$runs")" = 1 ] && [ "$refused" = 2 ] && owner_is "$winner"
ok $? "the same VM started on three hosts at once: it runs on exactly one ($runs), the owner record names it, the two others are refused naming it: $(cat "$dir"/start.h* | grep -v '^$' | grep -m1 "fleet store" | cut -c1-150)"

loser=$([ "$winner" = h1 ] && echo h2 || echo h1)
on "$winner" vm stop own1 --force >/dev/null && wait_for 5 owner_is "" &&
	on "$loser" vm start own1 >/dev/null && owner_is "$loser" && [ "$(running_on)" = "$loser " ]
ok $? "stopped on $winner, its record goes; $loser starts it and owns it"

other=$([ "$loser" = h3 ] && echo h2 || echo h3)
on "$other" vm undefine own1 >/dev/null # (its own definition, from the race: it takes the VM's now)
on "$loser" migrate own1 --to "$other" >/dev/null && wait_for 5 owner_is "$other" &&
	[ "$(running_on)" = "$other " ] && grep -q 'event=vm_claimed vm=own1 from_migration=yes' "$dir/$other.log" &&
	grep -E "event=migration_(handover|commit_sent) vm=own1 to=$other" "$dir/$loser.log" | head -2 |
	awk '/migration_handover/ { h = NR } /commit_sent/ { c = NR } END { exit !(h == 1 && c == 2) }'
ok $? "migrated $loser -> $other: the owner record went to $other in the switch-over, before COMMIT ($(grep -o "event=migration_handover vm=own1 .*" "$dir/$loser.log" | tail -1))"
on "$loser" vm define "$dir/own1.json" >/dev/null
out=$(on "$loser" vm start own1 2>&1)
rc=$?
[ $rc -ne 0 ] && grep -q "is $other's in the fleet store" <<<"$out" && [ "$(running_on)" = "$other " ]
ok $? "defined again on $loser, it is not started there: exit $rc, $(cut -c1-140 <<<"$out")"

# the owner's host dies (smigd and QEMU killed): its lease runs out, the VM may start elsewhere
pkill -KILL -f "$dir/$other.json"
pkill -KILL -f "$dir/state-$other/vms/own1/"
t0=$(date +%s.%N)
wait_for 15 bash -c "$SMIG --socket $dir/$loser.sock vm start own1 >/dev/null 2>&1"
started=$?
[ $started -eq 0 ] && owner_is "$loser" && [ "$(on "$loser" --json vm show own1 | jq -r .state)" = running ]
ok $? "$other killed with its VM: once its 3 s lease ran out $loser could start own1 ($(since "$t0") s) and owns it"
# $other back (its copy of own1 died with it): the three hosts serve the tests below
rm -f "$dir/$other.pid"
smigd_start "$dir" "$other" && wait_for 15 registered "$other" || echo "# $other did not come back"
on "$other" vm undefine own1 >/dev/null 2>&1

# ---- self-fencing: a host cut off from etcd pauses its VMs before its lease can run out
p=$loser
q=$([ "$p" = h1 ] && echo h2 || echo h1)
state_of() { on "$1" --json vm show own1 | jq -r .state; }
cut_etcd() { ip netns exec "$("$cluster" ns "$1")" iptables "$2" OUTPUT -p tcp --dport 2379 -j DROP; }
beats() { grep -c ' HB ' "$dir/state-$p/consoles/own1.log"; }

cut_etcd "$p" -I
t0=$(date +%s.%N)
wait_for 10 bash -c "[ \"\$($SMIG --socket $dir/$p.sock --json vm show own1 | jq -r .state)\" = paused ]"
fenced=$?
t_fenced=$(since "$t0")
[ $fenced -eq 0 ] && awk -v t="$t_fenced" 'BEGIN { exit !(t < 3) }' &&
	on "$p" --json vm show own1 | jq -e '(.history[-1].why | test("fenced")) and .fleet.fenced and (.fleet.claimed | not)' >/dev/null &&
	on "$p" vm show own1 | grep -q '^owner record: not claimed under .*; fenced' &&
	grep -q "event=vm_fenced vm=own1" "$dir/$p.log"
ok $? "$p cut off from etcd: own1 paused (fenced) after ${t_fenced} s, before its 3 s lease can run out"
sleep 3
n=$(beats)
cut_etcd "$p" -D
t0=$(date +%s.%N)
wait_for 20 bash -c "[ \"\$($SMIG --socket $dir/$p.sock --json vm show own1 | jq -r .state)\" = running ]" &&
	owner_is "$p" && sleep 1 && [ "$(beats)" -gt "$n" ] && grep -q "event=vm_unfenced vm=own1" "$dir/$p.log"
ok $? "the link back: $p holds a lease again, claims own1 anew and resumes it ($(since "$t0") s); the guest beats on"

cut_etcd "$p" -I
wait_for 10 bash -c "[ \"\$($SMIG --socket $dir/$p.sock --json vm show own1 | jq -r .state)\" = paused ]" &&
	wait_for 10 owner_is "" && on "$q" vm start own1 >/dev/null && owner_is "$q"
ok $? "cut off again: once its lease ran out the record went, and $q started own1 and owns it"
cut_etcd "$p" -D
wait_for 20 bash -c "$SMIG --socket $dir/$p.sock --json vm show own1 | jq -e '.last_error | test(\"$q owns own1\")' >/dev/null"
lost=$?
sleep 1
[ $lost -eq 0 ] && [ "$(state_of "$p")" = paused ] && [ "$(state_of "$q")" = running ] && owner_is "$q" &&
	on "$p" --json vm show own1 | jq -e '.fleet.owned_elsewhere' >/dev/null &&
	grep -q "event=vm_owner_conflict vm=own1 owner=$q" "$dir/$p.log"
ok $? "the link back: $p finds $q owns own1 and keeps its copy paused, saying so: $(on "$p" --json vm show own1 | jq -r .last_error | cut -c1-120)"
out=$(on "$p" vm resume own1 2>&1)
rc=$?
[ $rc -ne 0 ] && grep -q 'may not run here now' <<<"$out" && sleep 0.5 && [ "$(state_of "$p")" = paused ]
ok $? "smig vm resume of the fenced copy is refused (exit $rc): $(cut -c1-120 <<<"$out")"
on "$p" vm stop own1 --force >/dev/null && [ "$(state_of "$p")" = shutoff ] && owner_is "$q"
ok $? "its operator stops the stale copy on $p; $q's record is untouched"

# smigd restarted on $q (an upgrade): own1 runs on, its record kept for the new smigd
owner_lease_is_of() { # HOST: own1's record is under HOST's lease now
	[ "$(etcdtry "$dir" h3 get /smig/vms/own1/owner | jq -r '.kvs[0].lease')" = "$(on "$1" --json status | jq -r .store.lease)" ]
}
smigd_stop "$dir" "$q" && grep -q "event=store_left key=/smig/hosts/$q lease_revoked=\"no (VMs run on" "$dir/$q.log" &&
	owner_is "$q" && smigd_start "$dir" "$q" && wait_for 15 registered "$q" && sleep 1 &&
	[ "$(state_of "$q")" = running ] && owner_is "$q" && wait_for 5 owner_lease_is_of "$q" &&
	! on "$q" --json vm show own1 | jq -e '.history | map(.why) | map(test("fenced")) | any' >/dev/null
ok $? "smigd on $q restarted: own1 ran on unpaused, the new smigd took its record over"

# ---- migrations with the fleet store under faults: own1 runs on $q
a=$q
b=$([ "$a" = h1 ] && echo h2 || echo h1)
on "$b" vm undefine own1 >/dev/null 2>&1
where_now() { # the one host own1 runs on, with the record naming it ("" otherwise)
	local r
	r=$(running_on)
	[ "$(wc -w <<<"$r")" = 1 ] && owner_is "${r% }" && printf '%s' "${r% }"
}
# the etcd leader killed while own1 migrates a -> b: it completes or fails cleanly, and runs once
leader=$(etcd_leader "$dir")
on "$a" migrate own1 --to "$b" --max-bandwidth 4 >"$dir/mig.leader" 2>&1 &
mp=$!
sleep 1.5
etcd_kill "$dir" "$leader"
wait $mp
rc=$?
sleep 1
at=$(where_now)
{ [ $rc -eq 0 ] && [ "$at" = "$b" ]; } || { [ $rc -ne 0 ] && [ "$at" = "$a" ]; }
ok $? "etcd's leader e$leader killed during the migration $a -> $b: exit $rc, own1 runs on ${at:-no single host} alone and its record names it"
etcd_start "$dir" "$leader"
x=${at:-$b}
y=$([ "$x" = "$a" ] && echo "$b" || echo "$a")
wait_for 15 registered "$x" && wait_for 15 registered "$y"

# the source cut off from etcd (not from the destination) mid-migration: it fences, the
# migration cannot hand the record over and fails before COMMIT, the VM stays on the source
beats_of() { grep -c ' HB ' "$dir/state-$1/consoles/own1.log"; }
on "$x" migrate own1 --to "$y" --max-bandwidth 3 >"$dir/mig.cut" 2>&1 &
mp=$!
sleep 1.5
cut_etcd "$x" -I
t0=$(date +%s.%N)
wait_for 10 bash -c "[ \"\$($SMIG --socket $dir/$x.sock --json vm show own1 | jq -r .state)\" = paused ]"
fenced=$?
t_fenced=$(since "$t0")
wait $mp
rc=$?
[ $fenced -eq 0 ] && awk -v t="$t_fenced" 'BEGIN { exit !(t < 3) }' && [ $rc -ne 0 ] &&
	grep -q 'fleet store' "$dir/mig.cut" && [ -z "$(running_on)" ] && [ "$(state_of "$x")" = paused ] &&
	! on "$y" --json vm show own1 >/dev/null 2>&1
ok $? "$x cut off from etcd while own1 migrates to $y: paused ${t_fenced} s after the cut (3 s lease), the migration failed before COMMIT (exit $rc), no copy runs anywhere: $(grep -m1 'fleet store' "$dir/mig.cut" | cut -c1-160)"
n=$(beats_of "$x")
cut_etcd "$x" -D
t0=$(date +%s.%N)
wait_for 20 bash -c "[ \"\$($SMIG --socket $dir/$x.sock --json vm show own1 | jq -r .state)\" = running ]" &&
	sleep 1 && [ "$(where_now)" = "$x" ] && [ "$(beats_of "$x")" -gt "$n" ]
ok $? "the link back: $x has own1's record again and resumes it ($(since "$t0") s); it runs there alone, the guest beats on"

# the source cut off from etcd right after COMMIT: the destination owns and runs the VM, once
n0=$(wc -l <"$dir/$x.log")
(
	for _ in $(seq 1 1500); do
		tail -n +"$n0" "$dir/$x.log" | grep -q "event=migration_commit_sent vm=own1 to=$y" && break
		sleep 0.01
	done
	cut_etcd "$x" -I
) &
cp=$!
on "$x" migrate own1 --to "$y" >"$dir/mig.after" 2>&1
rc=$?
wait $cp
sleep 4 # more than the source's lease
[ $rc -eq 0 ] && [ "$(where_now)" = "$y" ] && ! on "$x" --json vm show own1 >/dev/null 2>&1 &&
	owner_lease_is_of "$y"
ok $? "$x cut off from etcd as it sent COMMIT: the migration completed (exit $rc), own1 runs on $y alone under $y's lease, and still after $x's lease ran out"
cut_etcd "$x" -D
sound() { on "$1" --json status | jq -e '.store.lease_sound' >/dev/null; }
wait_for 15 sound "$x" # (a destination takes a VM only under a sound lease)

# $x refuses the COMMIT it cannot record (as on a full disk): the record went to $x in the
# switch-over; $y's copy takes it back (it still carries the migration's mark), then resumes
il="$dir/state-$x/worker/incoming.log"
[ -e "$il" ] && mv "$il" "$il.keep"
mkdir "$il"
on "$y" migrate own1 --to "$x" >"$dir/mig.refused" 2>&1
rc=$?
rmdir "$il" && { [ ! -e "$il.keep" ] || mv "$il.keep" "$il"; }
wait_for 10 bash -c "[ \"\$($SMIG --socket $dir/$y.sock --json vm show own1 | jq -r .state)\" = running ]"
[ $rc -eq 5 ] && [ "$(where_now)" = "$y" ] && owner_lease_is_of "$y" &&
	[ "$(grep -c "event=migration_handover vm=own1 to=$x" "$dir/$y.log")" -ge 1 ] &&
	grep -q "event=migration_source_fenced vm=own1 to=$x .*action=resume_once_taken_back" "$dir/$y.log" &&
	grep -q "event=vm_unfenced vm=own1" "$dir/$y.log" &&
	on "$y" --json vm show own1 | jq -e '.fleet.claimed and (.fleet.fenced | not) and (.fleet.handed_to == null)' >/dev/null &&
	on "$y" vm show own1 | grep -q "^owner record: this host's, under its lease$"
r=$?
[ $r -eq 0 ] || { echo "# where_now=$(where_now) rc=$rc"; cat "$dir/mig.refused"; grep -E "own1" "$dir/$y.log" | tail -8; echo "== $x"; grep -E "own1|store_|vm_fence|lease" "$dir/$x.log" | tail -25; etcdtry "$dir" h3 get /smig/vms/own1/owner | jq -c '.kvs[0]'; } | sed 's/^/# /'
ok $r "$x refused COMMIT after the handover (exit $rc): $y took own1's record back from $x and resumed it; it runs there alone"

# ---- the fleet's migration queue: policy limits.max_cluster_migrations 1 on every host
for h in "$x" "$y"; do
	jq '.limits = {"max_cluster_migrations": 1}' "$dir/$h.policy.json" >"$dir/$h.policy.new" &&
		mv "$dir/$h.policy.new" "$dir/$h.policy.json" && kill -HUP "$(cat "$dir/$h.pid")"
done
wait_for 10 bash -c "grep -q 'event=policy_reloaded' '$dir/$x.log' && grep -q 'event=policy_reloaded' '$dir/$y.log'"
"$cluster" guest "$x" q2 --mem 16 >/dev/null
tickets() { etcdtry "$dir" h3 --prefix get /smig/queue/ | jq -r '.count // 0'; }
on "$y" migrate own1 --to "$x" --max-bandwidth 8 >"$dir/mig.q1" 2>&1 &
m1=$!
wait_for 10 grep -q "event=migration_fleet_admitted vm=own1" "$dir/$y.log"
on "$x" migrate q2 --to "$y" >"$dir/mig.q2" 2>&1 &
m2=$!
wait_for 5 grep -q "event=migration_queued_fleet vm=q2" "$dir/$x.log"
two_tickets() { [ "$(tickets)" = 2 ]; }
wait_for 5 two_tickets && n_mid=2 || n_mid=$(tickets)
wait $m1
r1=$?
wait $m2
r2=$?
c1=$(grep "event=migration_committed vm=own1 to=$x" "$dir/$y.log" | tail -1 | cut -d' ' -f1)
a2=$(grep "event=migration_fleet_admitted vm=q2" "$dir/$x.log" | tail -1)
[ $r1 -eq 0 ] && [ $r2 -eq 0 ] && [ "$n_mid" = 2 ] && [ -n "$c1" ] && [ -n "$a2" ] &&
	[[ "$(cut -d' ' -f1 <<<"$a2")" > "$c1" ]] && [ "$(where_now)" = "$x" ] &&
	[ "$(on "$y" --json vm show q2 | jq -r .state)" = running ]
ok $? "max_cluster_migrations 1: $x's migration of q2 (to $y) waited in the fleet's queue (2 tickets) until own1's from $y had committed ($c1), then ran: $(grep -o 'position=.*' <<<"$a2")"
places() { etcdtry "$dir" h3 --prefix get /smig/queue-slots/ | jq -r '.count // 0'; }
[ "$(tickets)" = 0 ] && [ "$(places)" = 0 ] && ! grep -q policy_cluster_cap_ignored "$dir/$x.log"
ok $? "both migrations ended: no ticket and no place is left in etcd"

# ---- placement: smig migrate --to auto picks the member with the most free memory
z=$(for h in h1 h2 h3; do [ "$h" != "$x" ] && [ "$h" != "$y" ] && echo "$h"; done)
# each record publishes its capacity; $y runs q2, so $z has more free than $y
free_of() { etcdtry "$dir" h3 get "/smig/hosts/$1" | jq -r '.kvs[0].value | fromjson | .capacity.memory_free_mib'; }
fz=$(free_of "$z")
fy=$(free_of "$y")
"$cluster" guest "$x" pl1 --mem 16 >/dev/null
out=$(on "$x" migrate pl1 --to auto 2>&1)
rc=$?
[ $rc -eq 0 ] && [ "$fz" -gt "$fy" ] && grep -qE "^pl1 goes to $z: [a-z]+; allowed by rule" <<<"$out" &&
	grep -q "event=placement vm=pl1 to=$z " "$dir/$x.log" &&
	[ "$(on "$z" --json vm show pl1 | jq -r .state)" = running ] &&
	[ "$(etcdtry "$dir" h3 get /smig/vms/pl1/owner | jq -r '.kvs[0].value | fromjson | .host')" = "$z" ] &&
	on "$x" hosts | grep -qE "^$z .* member +[0-9.]+[MG] " &&
	on "$x" --json audit show --last 0 | jq -se "map(select(.target == \"vm:pl1 to:$z\" and .rule == \"root-is-admin\")) | map(.outcome) | index(\"started\") != null and index(\"ok\") != null" >/dev/null
ok $? "migrate pl1 --to auto from $x: placed on $z, whose record said $fz MiB free ($y: $fy MiB), and it runs there owned by $z: $(grep -m1 'goes to' <<<"$out" | cut -c1-160)"
cat >"$dir/pl2.json" <<JSON
{"name": "pl2", "memory_mib": 64, "security": {"requires": ["gpu"]}, $(guest_boot smig-guest.elf "mem=16 hb=100")}
JSON
on "$z" vm define "$dir/pl2.json" >/dev/null && on "$z" vm start pl2 >/dev/null
out=$(on "$z" migrate pl2 --to auto 2>&1)
rc=$?
[ $rc -eq 4 ] && grep -q "no host can take pl2 now" <<<"$out" && grep -q "gpu" <<<"$out" &&
	[ "$(on "$z" --json vm show pl2 | jq -r .state)" = running ]
ok $? "migrate pl2 --to auto when no host offers its required capability: exit $rc, pl2 runs on $z: $(cut -c1-160 <<<"$out")"

# the fleet's VMs by their owner records, from any host
out=$(on "$y" --json vm list --all)
[ "$(jq -c '[.vms[] | {vm, host}] | sort_by(.vm)' <<<"$out")" = \
	"[{\"vm\":\"own1\",\"host\":\"$x\"},{\"vm\":\"pl1\",\"host\":\"$z\"},{\"vm\":\"pl2\",\"host\":\"$z\"},{\"vm\":\"q2\",\"host\":\"$y\"}]" ] &&
	jq -e '.vms[] | select(.vm == "q2") | .state_here == "running"' <<<"$out" >/dev/null &&
	on "$y" vm list --all | grep -qE "^pl1 +$z +20[0-9-]+T"
ok $? "vm list --all on $y: every VM of the fleet with its owner, q2 running here: $(on "$y" vm list --all | tr -s ' ' | tr '\n' ';' | cut -c1-200)"

# a fleet larger than a page: 2,100 more owner records, read 1,000 at a time
gw() { # gw PATH: one call to etcd's gateway (body on stdin) from h3's namespace, as h3
	ip netns exec "$(sed 's/-h1$//' "$dir/etcd-e1.ns")-h3" curl -sS --fail --cacert "$dir/pki/ca.crt" \
		--cert "$dir/pki/h3.crt" --key "$dir/pki/h3.key" -X POST "$(etcd_endpoints "$dir" | cut -d, -f3)$1" --data-binary @-
}
python3 -c '
import base64, json
b = lambda s: base64.b64encode(s.encode()).decode()
ops = [{"requestPut": {"key": b("/smig/vms/z%04d/owner" % i), "value": b(json.dumps({"host": "h9", "vm": "z%04d" % i, "since": 1}))}} for i in range(2100)]
for k in range(0, len(ops), 128): print(json.dumps({"success": ops[k:k + 128]}))' |
	while IFS= read -r txn; do printf '%s' "$txn" | gw /v3/kv/txn >/dev/null || echo "# a fill failed"; done
out=$(on "$x" --json vm list --all)
[ "$(jq '.vms | length' <<<"$out")" = 2104 ] && [ "$(jq '[.vms[].vm] | unique | length' <<<"$out")" = 2104 ] &&
	jq -e '.warning == null' <<<"$out" >/dev/null
ok $? "vm list --all over 2,104 owner records (three pages of 1,000): each listed once ($(jq '.vms | length' <<<"$out"))"

# $y dies with COMMIT in hand (stopped as it recorded it, then killed with own1's copy):
# $x's copy waits paused, its record handed to $y; smig vm resume --force takes it back
smigd_stop "$dir" "$y"
SMIG_STOP_AT=migration_commit_recorded smigd_start "$dir" "$y" && wait_for 15 sound "$y"
on "$x" migrate own1 --to "$y" >"$dir/mig.dead" 2>&1 &
mp=$!
y_stopped() { [ "$(awk '{print $3}' "/proc/$(pgrep -P "$(cat "$dir/$y.pid")" -x smigd-worker)/stat" 2>/dev/null)" = T ]; }
wait_for 30 y_stopped
pkill -KILL -f "$dir/$y.json"
pkill -KILL -f "$dir/state-$y/vms/own1/"
rm -f "$dir/$y.pid"
wait_for 10 bash -c "$SMIG --socket $dir/$x.sock --json vm show own1 | jq -e '.fleet.handed_to == \"$y\"' >/dev/null"
handed=$?
out=$(on "$x" vm resume own1 --force 2>&1)
rc=$?
wait_for 10 bash -c "[ \"\$($SMIG --socket $dir/$x.sock --json vm show own1 | jq -r .state)\" = running ]" &&
	owner_is "$x" && owner_lease_is_of "$x"
[ $? -eq 0 ] && [ $handed -eq 0 ] && [ $rc -eq 0 ] && grep -q 'vm_resume_forced vm=own1' "$dir/$x.log" &&
	grep -q '^own1: resuming: it resumes once its owner record is taken back' <<<"$out"
ok $? "$y died after the handover with COMMIT unanswered: own1 waited paused on $x, handed to $y; resume --force took its record back and it runs on $x (exit $rc: $(head -c 120 <<<"$out"))"
kill "$mp" 2>/dev/null

done_testing
