#!/usr/bin/env bash
# The firewall and the reactive IDS, with hosts in their own network
# namespaces; h3's namespace (a host-table address) plays the attacker
# against h2: certificates from another CA until banned, the ban enforced
# by an nftables set in h2's namespace, the ban's expiry, doubling,
# persistence across a restart and unban; a legitimate peer is served all
# along; silent (slowloris) connections and a flood of 1,000
# connection attempts do not stop a migration or smigd, and its memory
# stays bounded; a destination that answers out of the protocol's order
# has the migration aborted with the VM running on its source, and so has
# a stream longer than the VM's memory allows.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../harness/lib.sh"
. "$here/../harness/tap.sh"
netns_test ids

plan 20

"$cluster" up --hosts 3 >/dev/null
ok $? "three hosts up in their own namespaces"
# short bans so that expiry and doubling fit in a test; the kernel-level drop
# where this kernel has nf_tables
nft=false
"$cluster" exec h2 nft list tables >/dev/null 2>&1 && nft=true
jq --argjson nft $nft '.firewall = {nftables: $nft,
                 rules: [{kind: "tls_failure", count: 3, window_s: 30, ban_s: 3},
                         {kind: "unknown_peer", count: 3, window_s: 30, ban_s: 3}]}' \
	"$dir/h2.json" >"$dir/h2.tmp" && mv "$dir/h2.tmp" "$dir/h2.json"
ivt_make "$dir" 3 # h2's config is measured: its golden set changes with it
smigd_stop "$dir" h2 && smigd_start "$dir" h2
kill -HUP "$(cat "$dir/h1.pid")" "$(cat "$dir/h3.pid")"
on() { local h=$1; shift; "$cluster" exec "$h" "$SMIG" "$@"; }
h2ip=10.77.0.2
h3ip=10.77.0.3

"$SMIG" pki init "$dir/rogue" >/dev/null && "$SMIG" pki issue "$dir/rogue" h3 --ip $h3ip >/dev/null
bad() { # a TLS client with a certificate of another CA, from h3's address
	"$cluster" exec h3 timeout 5 openssl s_client -connect $h2ip:7450 -tls1_3 \
		-cert "$dir/rogue/h3.crt" -key "$dir/rogue/h3.key" </dev/null >/dev/null 2>&1
}
banned() { on h2 --json ids status | jqe --arg a "$1" '[.bans[] | select(.addr == $a)] | length == 1'; }
on h2 --json events --follow --last 0 >"$dir/follow.out" 2>/dev/null &
follower=$!
for _ in 1 2 3; do bad; done
wait_for 5 banned $h3ip
ok $? "three handshakes with a foreign certificate from $h3ip: banned"
wait_for 5 jqe -s '[.[] | .progress // . | select(.kind == "ban")] | length == 1' "$dir/follow.out"
ok $? "smig events --follow saw the ban as it happened"
kill $follower 2>/dev/null
on h2 --json events --last 0 | jqe -s --arg a $h3ip \
	'(map(select(.kind == "tls_failure" and .addr == $a)) | length >= 3) and
	 (map(select(.kind == "ban" and .addr == $a)) | length == 1)'
ok $? "smig events shows the TLS failures and the ban"
refused() { on h2 --json ids status | jq .events.conn_refused; }
if $nft; then
	"$cluster" exec h2 nft list set inet smig banned4 | grep -q "$h3ip" && r0=$(refused) &&
		! "$cluster" exec h3 timeout 2 bash -c "exec 3<>/dev/tcp/$h2ip/7450" 2>/dev/null &&
		[ "$(refused)" = "$r0" ]
	ok $? "while banned its packets are dropped in the kernel (nftables set inet smig banned4)"
else
	on h3 ping h2 >/dev/null 2>&1
	ok $([ $? -eq 4 ]; echo $?) "while banned even h3's own smigd is refused before TLS (no nf_tables here)"
fi
on h1 ping h2 >/dev/null
ok $? "h1, a legitimate peer, is served meanwhile"
wait_for 10 on h3 ping h2
ok $? "the ban expires: h3 reaches h2 again"
for _ in 1 2 3; do bad; done
wait_for 5 banned $h3ip &&
	[ "$(on h2 --json ids status | jq --arg a $h3ip '.bans[] | select(.addr == $a) | .strikes')" = 2 ]
ok $? "banned again, for twice as long (ban #2)"
smigd_stop "$dir" h2 && smigd_start "$dir" h2 && banned $h3ip &&
	{ ! $nft || "$cluster" exec h2 nft list set inet smig banned4 | grep -q "$h3ip"; }
ok $? "the ban survives a restart of smigd (state/bans.json, and back in the nftables set)"
on h2 ids unban $h3ip >/dev/null && on h3 ping h2 >/dev/null
ok $? "smig ids unban lifts it"

# --- slow and silent connections do not stop a migration ------------------------------
# from here on bans stay in smigd, so that the flood below reaches it
jq '.firewall.nftables = false' "$dir/h2.json" >"$dir/h2.tmp" && mv "$dir/h2.tmp" "$dir/h2.json"
ivt_make "$dir" 3
smigd_stop "$dir" h2 && smigd_start "$dir" h2
kill -HUP "$(cat "$dir/h1.pid")" "$(cat "$dir/h3.pid")"
"$cluster" guest h1 g --mem 16 --dirty 500 >/dev/null
"$cluster" exec h3 bash -c "for i in \$(seq 40); do exec {fd}<>/dev/tcp/$h2ip/7450 || true; done; sleep 6" \
	>/dev/null 2>&1 &
slow=$!
sleep 0.5
res=$(on h1 --json migrate g --to h2 | tail -1)
[ "$(jq -r .status <<<"$res")" = completed ]
ok $? "40 silent connections from $h3ip: a migration h1 -> h2 still completes"
on h2 --json events --last 0 | jqe -s 'map(select(.kind == "conn_refused" and (.detail | test("unauthenticated")))) | length > 0'
ok $? "connections beyond 8 unauthenticated ones from one address are refused at accept"
kill $slow 2>/dev/null
wait $slow 2>/dev/null
out=$("$cluster" check g)
ok $? "the guest's own checks are clean: $out"

# --- a flood --------------------------------------------------------------------------
pid=$(cat "$dir/h2.pid")
rss() { awk '/^VmRSS/ {print $2}' "/proc/$pid/status"; }
before=$(rss)
t0=$(date +%s%N)
timeout 30 "$cluster" exec h3 bash -c \
	"for i in \$(seq 1000); do exec 3<>/dev/tcp/$h2ip/7450 && exec 3>&-; done" >/dev/null 2>&1
t1=$(date +%s%N)
after=$(rss)
s0=$(date +%s%N)
on h2 status >/dev/null
s1=$(date +%s%N)
[ $(((s1 - s0) / 1000000)) -lt 2000 ] && [ $((after - before)) -lt 30000 ]
ok $? "1,000 connection attempts in $(((t1 - t0) / 1000000)) ms: status answers in $(((s1 - s0) / 1000000)) ms, RSS $before -> $after KiB"
on h2 --json ids status | jqe '.events.conn_refused > 100' &&
	on h2 --json migrate g --to h1 | tail -1 | jqe '.status == "completed"'
ok $? "most were refused at accept (rate limit, bans); h2 still migrates g to h1"

# --- a destination that breaks the protocol's order -------------------------------------
smigd_stop "$dir" h2
"$cluster" exec h2 timeout 60 "$SMIG_BUILD/tests/harness/smig-fakepeer" serve \
	--ca "$dir/pki/ca.crt" --cert "$dir/pki/h2.crt" --key "$dir/pki/h2.key" --name h2 \
	--listen $h2ip:7450 --ivt "$dir/ivt.json" &
fake=$!
sleep 0.5
out=$(on h1 migrate g --to h2 2>&1)
rc=$?
[ $rc -eq 5 ] && grep -q "unexpected MIG_READY from h2 while preparing" <<<"$out" &&
	[ "$(on h1 --json vm show g | jq -r .state)" = running ]
ok $? "h2 answers PREPARE with READY: aborted (exit $rc), g runs on h1"
diag "$out"
on h1 --json events --last 0 | jqe -s 'map(select(.kind == "protocol_violation" and .host == "h2")) | length > 0'
ok $? "h1 raised a protocol_violation event naming h2"
wait $fake
sleep 1.5
out=$("$cluster" check g)
ok $? "the guest's own checks are clean: $out"

# --- a stream longer than the VM's memory allows -------------------------------------------
jq '.limits.stream_passes = 1' "$dir/h2.json" >"$dir/h2.tmp" && mv "$dir/h2.tmp" "$dir/h2.json"
ivt_make "$dir" 3
smigd_start "$dir" h2
kill -HUP "$(cat "$dir/h1.pid")" "$(cat "$dir/h3.pid")"
"$cluster" guest h1 busy --mem 32 --dirty max >/dev/null
out=$(on h1 migrate busy --to h2 --max-bandwidth 20 2>&1)
rc=$?
[ $rc -eq 5 ] && grep -q "stream larger than the VM allows" <<<"$out" &&
	[ "$(on h1 --json vm show busy | jq -r .state)" = running ] && ! on h2 vm show busy >/dev/null 2>&1
ok $? "a stream that never converges passes one memory's worth: aborted (exit $rc), the VM runs on h1"
diag "$out"
on h2 --json events --last 0 | jqe -s 'map(select(.kind == "stream_anomaly" and .host == "h1")) | length == 1'
ok $? "h2 raised a stream_anomaly event naming h1"

done_testing
