#!/usr/bin/env bash
# Access control and audit with real daemons, real QEMU and the test guest:
# a user's request is decided on the caller's SO_PEERCRED identity; a
# migration denied by the source's policy or by the destination's (may
# host h1 push this VM here?) leaves the VM running where it was and is
# audited on both hosts with the deciding rule; SIGHUP swaps the policy
# without dropping sessions and a bad file keeps the old one; the audit
# log verifies, survives a restart, and an edited or cut copy is caught.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../harness/lib.sh"
. "$here/../harness/tap.sh"

dir=$(mktemp -d /tmp/smig-pol.XXXXXX)
trap 'kill $follow_pid 2>/dev/null; cluster_clean "$dir"' EXIT
follow_pid=
cluster_make "$dir" 2 || { echo "Bail out! cluster_make"; exit 1; }
guest=$SMIG_BUILD/guest/smig-guest.elf
chmod 0755 "$dir" # nobody reaches h1's socket (group nogroup) through it
jq '.control.group = "nogroup"' "$dir/h1.json" >"$dir/h1.tmp" && mv "$dir/h1.tmp" "$dir/h1.json"
ivt_make "$dir" 2 || { echo "Bail out! ivt_make"; exit 1; } # the config is measured

cat >"$dir/h1.policy.json" <<'JSON'
{
  "roles": {"admin": ["*"], "viewer": ["vm.view", "host.view"],
            "migrate-in": ["vm.migrate"]},
  "bindings": [
    {"name": "root-is-admin", "users": ["root"], "role": "admin"},
    {"name": "no-deny-vms-to-h2", "effect": "deny", "users": ["root"],
     "actions": ["vm.migrate"], "vms": ["deny-*"], "targets": ["h2"]},
    {"name": "nogroup-views-web", "groups": ["nogroup"], "role": "viewer",
     "vms": ["web-*"]},
    {"name": "nogroup-moves-hex-named", "groups": ["nogroup"], "actions": ["vm.migrate"],
     "vms": ["[0-9a-f]*"]},
    {"name": "cluster-peers", "peers": ["h*"], "role": "migrate-in"}
  ]
}
JSON
h2_policy() { # h2_policy WITH_DENY
	{
		echo '{"roles": {"admin": ["*"], "migrate-in": ["vm.migrate"]},'
		echo ' "bindings": ['
		echo '  {"name": "root-is-admin", "users": ["root"], "role": "admin"},'
		[ "$1" = yes ] && echo '  {"name": "no-secret-in", "effect": "deny", "peers": ["*"],
   "actions": ["vm.migrate"], "vm_labels": {"class": "secret"}},'
		echo '  {"name": "cluster-peers", "peers": ["h*"], "role": "migrate-in"}]}'
	} >"$dir/h2.policy.json"
}
h2_policy yes

plan 38

smigd_start "$dir" h1 && smigd_start "$dir" h2
ok $? "h1 and h2 start with their policies"

# --- smig policy lint -------------------------------------------------------
out=$(hsmig "$dir" h1 policy lint "$dir/h1.policy.json")
ok $? "policy lint accepts a good file ($out)"
cat >"$dir/bad.json" <<'JSON'
{"roles": {"ops": ["vm.start"]},
 "bindings": [
  {"name": "a", "users": ["x"], "role": "nope"},
  {"name": "b", "role": "ops"},
  {"name": "c", "users": ["x"], "actions": ["vm.fly"]}
 ]}
JSON
out=$(hsmig "$dir" h1 policy lint "$dir/bad.json" 2>&1)
rc=$?
[ $rc -eq 1 ] && grep -q "bad.json:3:.*no role named \"nope\"" <<<"$out" &&
	grep -q "bad.json:4:.*names no subject" <<<"$out" && grep -q "bad.json:5:" <<<"$out"
ok $? "policy lint names each problem with its line (exit $rc)"
diag "$out"

# --- the test guests on h1 ---------------------------------------------------
define() { # define NAME LABELS START
	cat >"$dir/$1.json" <<JSON
{"name": "$1", "memory_mib": 32, $(guest_boot smig-guest.elf "mem=8 dirty=50 hb=100"),
 "labels": $2}
JSON
	hsmig "$dir" h1 vm define "$dir/$1.json" >/dev/null || return 1
	[ "$3" = yes ] || return 0
	hsmig "$dir" h1 vm start "$1" >/dev/null &&
		wait_for 20 grep -q ' HB 3 ' "$dir/state-h1/consoles/$1.log"
}
define web-1 '{"tier": "web"}' no && define deny-1 '{}' yes && define sec-1 '{"class": "secret"}' yes
ok $? "web-1 defined; deny-1 and sec-1 running on h1"

state() { # state HOST VM: the VM's state there, or "absent"
	local out
	out=$(hsmig "$dir" "$1" --json vm show "$2" 2>/dev/null) && jq -r .state <<<"$out" || echo absent
}
beating() { # beating VM: its heartbeat on h1 goes on
	local n
	n=$(grep -c ' HB ' "$dir/state-h1/consoles/$1.log")
	wait_for 10 bash -c "[ \$(grep -c ' HB ' '$dir/state-h1/consoles/$1.log') -gt $((n + 2)) ]"
}
# audited HOST JQ-FILTER: some record of HOST's log matches
audited() {
	hsmig "$dir" "$1" --json audit show --last 0 | jqe -s "map(select($2)) | length > 0" >/dev/null
}

# --- smig policy check -------------------------------------------------------
out=$(hsmig "$dir" h1 policy check --user root --action vm.migrate --vm deny-1 --to h2)
rc=$?
[ $rc -eq 3 ] && grep -q "^deny (rule no-deny-vms-to-h2)" <<<"$out"
ok $? "policy check: root may not migrate deny-1 to h2, rule named (exit $rc)"
out=$(hsmig "$dir" h1 policy check --user root --action vm.migrate --vm sec-1 --to h2)
ok $? "policy check: root may migrate sec-1 to h2 by root-is-admin ($(head -1 <<<"$out"))"
out=$(hsmig "$dir" h1 policy check --user nobody --action vm.view --vm web-1)
[ $? -eq 0 ] && grep -q "nogroup-views-web" <<<"$out"
ok $? "policy check: nobody may view web-1 through group nogroup"
hsmig "$dir" h1 policy check --user nobody --action vm.stop --vm web-1 >/dev/null
ok $([ $? -eq 3 ]; echo $?) "policy check: nobody may not stop web-1 (default deny)"
out=$(hsmig "$dir" h2 --json policy check --peer mallory --action vm.migrate)
[ "$(jq -r '.decision + " " + .rule' <<<"$out")" = "deny default-deny" ]
ok $? "policy check on h2: an unknown peer may not push VMs"
# an action that is no permission: an answer that says so, and the connection
# keeps serving (it once read an uninitialised error buffer and overflowed)
out=$(hsmig "$dir" h1 policy check --user root --action vm.fly 2>&1)
rc=$?
[ $rc -ne 0 ] && grep -q '"vm.fly" is not a permission (known: .*vm.migrate' <<<"$out" &&
	! grep -q control_overflow "$dir/h1.log" && hsmig "$dir" h1 status >/dev/null
ok $? "policy check of an action that is no permission: refused by name (exit $rc), no overflow: $(cut -c1-120 <<<"$out")"

# --- a local user, by SO_PEERCRED --------------------------------------------
as_nobody() { setpriv --reuid=nobody --regid=nogroup --init-groups "$SMIG" --socket "$dir/h1.sock" "$@"; }
out=$(as_nobody --json vm list)
[ "$(jq -r '[.vms[].name] | join(",")' <<<"$out")" = "web-1" ]
ok $? "nobody's vm list shows only what it may view ($(jq -c '[.vms[].name]' <<<"$out"))"
out=$(as_nobody vm stop deny-1 2>&1)
rc=$?
[ $rc -eq 3 ] && grep -q "rule default-deny" <<<"$out" && [ "$(state h1 deny-1)" = running ]
ok $? "nobody may not stop deny-1: exit $rc, the VM runs on"
audited h1 '.actor == "user:nobody(65534)" and .action == "vm.stop" and .decision == "deny" and .rule == "default-deny"'
ok $? "h1 audited nobody's refused stop with the caller's identity and rule"

# nobody may migrate VMs whose names look like hex, and view web-1; root moves
# web-1 slowly. A cancel that names the job by its id is decided for the VM
# the id names, whatever target the request claims; a watch is a view.
hsmig "$dir" h1 vm start web-1 >/dev/null && wait_for 20 grep -q ' HB 3 ' "$dir/state-h1/consoles/web-1.log"
hsmig "$dir" h1 migrate web-1 --to h2 --max-bandwidth 1 >"$dir/web.out" 2>&1 &
mpid=$!
wait_for 15 grep -q 'event=migration_prepared vm=web-1 ' "$dir/h1.log"
id=$(grep -o 'event=migration_prepared vm=web-1 to=h2 id=[0-9a-f]*' "$dir/h1.log" | tail -1 | sed 's/.*id=//')
out=$(printf '{"id":1,"cmd":"migrate","args":{"vm":"%s","cancel":true,"to":"h2"}}\n' "${id:0:16}" |
	setpriv --reuid=nobody --regid=nogroup --init-groups socat -t 5 - "UNIX-CONNECT:$dir/h1.sock")
sleep 0.3
[ -n "$id" ] && [ "$(jq -r .error.code <<<"$out")" = denied ] && kill -0 "$mpid" 2>/dev/null &&
	grep -q "of the migration ${id:0:16} is not allowed" <<<"$(jq -r .error.message <<<"$out")" &&
	! grep -q 'web-1' <<<"$out" && [ "$(state h1 web-1)" = running ] &&
	audited h1 '.actor == "user:nobody(65534)" and .action == "vm.migrate" and .decision == "deny" and (.target | test("web-1"))'
ok $? "nobody's cancel of web-1's migration by its id, claiming a target, is denied for web-1, and the answer does not name web-1 (the audit does): $(jq -r .error.message <<<"$out" | cut -c1-100)"
out=$(timeout 3 setpriv --reuid=nobody --regid=nogroup --init-groups "$SMIG" --socket "$dir/h1.sock" --json migrate watch "${id:0:8}" | head -1)
jq -e --arg id "$id" '.progress.id == $id' <<<"$out" >/dev/null
ok $? "nobody may watch web-1's migration, a view: $(cut -c1-100 <<<"$out")"
out=$(for i in 1 2 3 4 5; do printf '{"id":%d,"cmd":"migrate.watch","args":{"vm":"web-1"}}\n' "$i"; done |
	timeout 5 socat -t 2 - "UNIX-CONNECT:$dir/h1.sock")
jq -se 'map(select(.error.code == "busy")) | length == 1 and .[0].id == 5' <<<"$(jq -c 'select(.error)' <<<"$out")" >/dev/null &&
	[ "$(jq -s 'map(select(.progress and .id == 4)) | length' <<<"$out")" -ge 1 ]
ok $? "one connection follows a migration at most 4 times at once; the 5th watch is told busy: $(jq -c 'select(.error) | .error.message' <<<"$out" | head -1)"
hsmig "$dir" h1 migrate cancel web-1 >/dev/null && wait "$mpid"
[ $? -eq 5 ] && [ "$(state h1 web-1)" = running ] && [ "$(state h2 web-1)" = absent ] &&
	hsmig "$dir" h1 vm stop web-1 --force >/dev/null
ok $? "root cancels it; web-1 stays on h1"

# --- migrations the source's policy refuses ------------------------------------
out=$(hsmig "$dir" h1 migrate deny-1 --to h2 2>&1)
rc=$?
[ $rc -eq 3 ] && grep -q "no-deny-vms-to-h2" <<<"$out"
ok $? "migrate deny-1 to h2: exit $rc naming the rule"
[ "$(state h1 deny-1)" = running ] && [ "$(state h2 deny-1)" = absent ] && beating deny-1
ok $? "deny-1 still runs on h1 only, heartbeat going"
audited h1 '.action == "vm.migrate" and .target == "vm:deny-1 to:h2" and .decision == "deny" and .rule == "no-deny-vms-to-h2" and .outcome == "refused"'
ok $? "h1 audited the refusal with its rule"

# --- migrations the destination's policy refuses -------------------------------
out=$(hsmig "$dir" h1 migrate sec-1 --to h2 2>&1)
rc=$?
[ $rc -eq 3 ] && grep -q "no-secret-in" <<<"$out"
ok $? "migrate sec-1 to h2: h2 refuses, exit $rc naming h2's rule"
diag "$out"
[ "$(state h1 sec-1)" = running ] && [ "$(state h2 sec-1)" = absent ] && beating sec-1
ok $? "sec-1 still runs on h1 only, heartbeat going"
audited h2 '.actor == "peer:h1" and .target == "vm:sec-1 from:h1" and .decision == "deny" and .rule == "no-secret-in"'
ok $? "h2 audited the refusal: actor peer:h1, rule no-secret-in"
audited h1 '.target == "vm:sec-1 to:h2" and .outcome == "started"' &&
	audited h1 '.target == "vm:sec-1 to:h2" and .outcome == "failed" and (.detail | test("no-secret-in"))'
ok $? "h1 audited the start and the failure with h2's rule"

# --- SIGHUP: the policy changes, sessions stay ---------------------------------
hsmig "$dir" h2 --json audit show --follow --last 1 >"$dir/follow.out" 2>/dev/null &
follow_pid=$!
wait_for 5 test -s "$dir/follow.out"
echo '{"roles": {}, "bindings": [' >"$dir/h2.policy.json"
kill -HUP "$(cat "$dir/h2.pid")"
wait_for 5 grep -q 'policy_reload_failed' "$dir/h2.log"
ok $? "a bad policy file on SIGHUP is refused and logged"
hsmig "$dir" h2 --json policy check --peer h1 --action vm.migrate | jqe '.decision == "allow"' >/dev/null &&
	wait_for 5 jqe -s 'map(select(.action == "policy.reload" and .outcome == "failed")) | length == 1' "$dir/follow.out"
ok $? "the old policy stays in force; the failed reload is audited"
h2_policy no
kill -HUP "$(cat "$dir/h2.pid")"
wait_for 5 jqe -s 'map(select(.action == "policy.reload" and .outcome == "ok")) | length == 1' "$dir/follow.out"
ok $? "a good policy is loaded on SIGHUP; an open audit session saw both reloads"
out=$(hsmig "$dir" h1 migrate sec-1 --to h2 2>&1)
ok $? "with the new policy sec-1 migrates to h2"
[ "$(state h2 sec-1)" = running ] && [ "$(state h1 sec-1)" = absent ]
ok $? "sec-1 runs on h2 only"
audited h2 '.actor == "peer:h1" and .target == "vm:sec-1 from:h1" and .decision == "allow" and .rule == "cluster-peers" and .outcome == "committed"'
ok $? "h2 audited the committed migration with the rule that let it in"
kill "$follow_pid" 2>/dev/null

# a fleet-wide cap without a fleet store (store.backend files) cannot be counted: smigd says so
jq '.limits = {"max_cluster_migrations": 2}' "$dir/h2.policy.json" >"$dir/h2.policy.new" &&
	mv "$dir/h2.policy.new" "$dir/h2.policy.json" && kill -HUP "$(cat "$dir/h2.pid")" &&
	wait_for 5 grep -q 'event=policy_cluster_cap_ignored .*max_cluster_migrations=2 .*store.backend is files' "$dir/h2.log"
ok $? "limits.max_cluster_migrations without a fleet store: smigd warns that it is not enforced"

# --- what cannot be audited is not done ---------------------------------------
head2=$dir/state-h2/audit.log.head
mv "$head2" "$dir/h2.head.saved" && mkdir -p "$head2/blocked"
hsmig "$dir" h2 vm define "$dir/web-1.json" >/dev/null # allowed; its record's head cannot be written
out=$(hsmig "$dir" h2 vm undefine web-1 2>&1)
rc=$?
[ $rc -eq 3 ] && grep -q "audit-unavailable" <<<"$out" && [ "$(state h2 web-1)" != absent ]
ok $? "with its audit log unwritable h2 refuses changes (exit $rc): $out"
rm -rf "$head2"
hsmig "$dir" h2 vm list >/dev/null && hsmig "$dir" h2 vm undefine web-1 >/dev/null
ok $? "once the log can be written again, changes are allowed again"

# --- the audit log itself ------------------------------------------------------
hsmig "$dir" h1 audit verify >/dev/null && hsmig "$dir" h2 audit verify >/dev/null
ok $? "smig audit verify: both logs intact"
smigd_stop "$dir" h1
log=$dir/state-h1/audit.log
[ "$(tail -1 "$log" | jq -r .action)" = audit.checkpoint ] &&
	hsmig "$dir" h2 audit verify "$log" --cert "$dir/pki/h1.crt" >/dev/null
ok $? "after shutdown h1's log ends with a signed checkpoint and verifies offline"
cp "$log" "$dir/edited.log" && cp "$log.head" "$dir/edited.log.head"
line=$(grep -n '"rule":"no-deny-vms-to-h2"' "$dir/edited.log" | head -1 | cut -d: -f1)
sed -i "${line}s/\"outcome\":\"refused\"/\"outcome\":\"ok\"/" "$dir/edited.log"
out=$(hsmig "$dir" h2 audit verify "$dir/edited.log" --cert "$dir/pki/h1.crt")
rc=$?
[ $rc -eq 1 ] && grep -qE "edited +edited.log:$line " <<<"$out"
ok $? "an edited record is named by its line ($line, exit $rc)"
head -n -2 "$log" >"$dir/cut.log" && cp "$log.head" "$dir/cut.log.head"
out=$(hsmig "$dir" h2 audit verify "$dir/cut.log" --cert "$dir/pki/h1.crt")
[ $? -eq 1 ] && grep -q "truncated" <<<"$out"
ok $? "a log cut after its last checkpoint is found through the signed head"
cp "$dir/edited.log" "$log"
smigd_start "$dir" h1 && grep -q 'event=audit_damaged' "$dir/h1.log" &&
	audited h1 '.action == "audit.damage" and (.detail | test("edited"))'
ok $? "smigd restarted on a damaged log says so, and records it in the chain"

done_testing
