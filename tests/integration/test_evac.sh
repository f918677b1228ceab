#!/usr/bin/env bash
# Evacuation through the policy and capacity the destinations hold, with
# real daemons h1, h2 and h3 and a peer standing in for h4 that answers
# attestation with h4's golden values, claims whatever free memory it is
# told (smig-fakepeer serve) and says it holds whatever a RESERVE asks.
# h1's policy denies migrating db* VMs to h3; h3 offers VMs 40 MiB, less
# than one VM needs, and h2 100 MiB, two VMs' worth. h1 runs three 48 MiB
# VMs with evacuation.priority labels. The plan orders them by priority,
# never sends db1 to h3, places each VM on a host that holds its capacity
# for it (h3 refuses, by its own admission control, and the next host is
# asked), names the rule that allows each move, and does not change when
# h4 claims 1 TiB or 1 MiB free; a dry run lets its holds go; a RESERVE
# before authentic evidence holds nothing; the
# evacuation executes exactly the dry run's plan (h4, having held on its
# word only, then refuses its VM at PREPARE, which stays on h1).
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../harness/lib.sh"
. "$here/../harness/tap.sh"
fakepeer=$SMIG_BUILD/tests/harness/smig-fakepeer

dir=$(mktemp -d /tmp/smig-evac.XXXXXX)
trap 'kill "$(cat "$dir/h4-fake.pid" 2>/dev/null)" 2>/dev/null; cluster_clean "$dir"' EXIT
SMIG_ATTEST_S=2 cluster_make "$dir" 4 || { echo "Bail out! cluster_make"; exit 1; }
for c in h2:100 h3:40; do
	jq --argjson m "${c#*:}" '.capacity = {memory_mib: $m, vcpus: 8}' "$dir/${c%%:*}.json" >"$dir/c.tmp" &&
		mv "$dir/c.tmp" "$dir/${c%%:*}.json"
done
ivt_make "$dir" 4 || { echo "Bail out! ivt_make"; exit 1; }
jq '.bindings += [{"name": "no-db-on-h3", "effect": "deny", "users": ["*"],
	"actions": ["vm.migrate"], "vms": ["db*"], "targets": ["h3"]}]' "$dir/h1.policy.json" \
	>"$dir/p.tmp" && mv "$dir/p.tmp" "$dir/h1.policy.json"
h4() { # h4 FREE_MIB: the stand-in for h4, claiming FREE_MIB free
	kill "$(cat "$dir/h4-fake.pid" 2>/dev/null)" 2>/dev/null
	sleep 0.2
	"$fakepeer" serve --ca "$dir/pki/ca.crt" --cert "$dir/pki/h4.crt" --key "$dir/pki/h4.key" \
		--name h4 --listen "127.0.0.1:$(cat "$dir/h4.port")" --ivt "$dir/ivt.json" \
		--free-mib "$1" >>"$dir/h4-fake.log" 2>&1 &
	echo $! >"$dir/h4-fake.pid"
}

plan 12

smigd_start "$dir" h1 && smigd_start "$dir" h2 && smigd_start "$dir" h3 && h4 1048576
ok $? "h1, h2 and h3 start; a stand-in for h4 claims 1 TiB free"
for v in web1:1 db1:10 batch1:; do
	name=${v%%:*} prio=${v#*:}
	cat >"$dir/$name.json" <<JSON
{"name": "$name", "memory_mib": 48, $(guest_boot smig-guest.elf "mem=8 hb=100")
 $([ -n "$prio" ] && echo ", \"labels\": {\"evacuation.priority\": \"$prio\"}")}
JSON
	hsmig "$dir" h1 vm define "$dir/$name.json" >/dev/null && hsmig "$dir" h1 vm start "$name" >/dev/null || break
done
wait_for 30 grep -q ' HB 3 ' "$dir/state-h1/consoles/batch1.log" &&
	wait_for 10 grep -q ' HB 3 ' "$dir/state-h1/consoles/db1.log"
ok $? "web1 (priority 1), db1 (priority 10) and batch1 run on h1"

known() { # every neighbour attested
	[ "$(hsmig "$dir" h1 --json hosts | jq '[.hosts[] | select(.self | not) | select(.attestation.verdict == "unverified")] | length')" = 3 ]
}
wait_for 15 known
steps() { jq -c '[.steps[] | {vm, to, rule}]'; }
dry=$(hsmig "$dir" h1 --json evacuate --dry-run)
plan1=$(steps <<<"$dry")
[ "$(jq -r '[.steps[].vm] | join(" ")' <<<"$dry")" = "db1 web1 batch1" ]
ok $? "the plan takes the VMs by priority: $(jq -c '[.steps[] | [.vm, .priority]]' <<<"$dry")"
jqe '[.steps[] | select(.vm == "db1")][0] | .to != "h3" and .to != null' <<<"$dry" >/dev/null &&
	jqe '[.steps[] | select(.to != null and (.rule | length) > 0)] | length == 3' <<<"$dry" >/dev/null
ok $? "db1 never goes to h3 (denied by the policy); each move names its rule: $plan1"
jqe '[.steps[] | select(.vm == "web1")][0] | .to == "h4" and (.reason | test("refused by h3: capacity: web1 needs 48 MiB and 1 vCPUs; h3 has [0-9]+ MiB"))' <<<"$dry" >/dev/null &&
	jqe '[.steps[] | select(.vm == "batch1")][0] | .to == "h2" and (.reason | test("h2 holds 48 MiB"))' <<<"$dry" >/dev/null
ok $? "each VM goes to a host that holds its capacity: h3 refuses web1 by its own admission control, the next host is asked: $(jq -c '[.steps[] | [.vm, .to, .reason]]' <<<"$dry")"
sleep 0.5 # the dry run's releases are on their way
[ "$(hsmig "$dir" h2 --json status | jq .capacity.reserved.memory_mib)" = 0 ] &&
	grep -q 'event=capacity_released from=h1 vm=batch1' "$dir/h2.log"
ok $? "the dry run let its holds go: h2 reserves nothing"
out=$("$fakepeer" reserve --ca "$dir/pki/ca.crt" --cert "$dir/pki/h4.crt" --key "$dir/pki/h4.key" \
	--name h4 --to "127.0.0.1:$(cat "$dir/h2.port")" --free-mib 1000000 2>&1)
grep -q "refused: .*RESERVE before authentic evidence" <<<"$out" &&
	[ "$(hsmig "$dir" h2 --json status | jq .capacity.reserved.memory_mib)" = 0 ]
ok $? "h4's key asks h2 to hold 1 TB before any evidence: refused, nothing held ($out)"

h4 1
wait_for 10 bash -c "grep -c 'peer_attested host=h4' '$dir/h1.log' | grep -qv '^[01]$'"
sleep 2.5 # a round of h1's with h4's new claim
plan2=$(hsmig "$dir" h1 --json evacuate --dry-run | steps)
[ "$plan2" = "$plan1" ]
ok $? "h4 now claims 1 MiB free: the plan is the same ($plan2)"

out=$(hsmig "$dir" h1 --json evacuate)
rc=$?
done_steps=$(steps <<<"$out")
[ "$done_steps" = "$plan1" ]
ok $? "smig evacuate executes exactly the dry run's plan (exit $rc): $(jq -c '[.steps[] | [.vm, .to, .outcome]]' <<<"$out")"
jqe '[.steps[] | select(.to != "h4") | .outcome] | all(. == "migrated")' <<<"$out" >/dev/null &&
	jqe '[.steps[] | select(.to == "h4") | .outcome] | all(. == "failed")' <<<"$out" >/dev/null && [ $rc -eq 5 ]
ok $? "the moves to real hosts succeed; the stand-in refuses its VM (exit 5)"
where() { # where VM: the real hosts it runs on
	local h
	for h in h1 h2 h3; do
		[ "$(hsmig "$dir" "$h" --json vm show "$1" 2>/dev/null | jq -r .state)" = running ] && echo "$h"
	done | tr '\n' ' '
}
for v in db1 web1 batch1; do
	to=$(jq -r --arg v "$v" '.steps[] | select(.vm == $v) | .to' <<<"$out")
	[ "$to" = h4 ] && to=h1
	[ "$(where "$v")" = "$to " ] || { echo "# $v runs on $(where "$v"), not $to"; false; } || break
done
ok $? "each VM runs on exactly one host: db1 on $(where db1), web1 on $(where web1), batch1 on $(where batch1)"
hsmig "$dir" h1 --json audit show --last 0 | jqe -s --argjson p "$plan1" \
	'[.[] | select(.action == "host.evacuate" and .outcome == "started" and (.target | startswith("vm:")))] | length == 3' >/dev/null
ok $? "h1 audited each step it started"

done_testing
