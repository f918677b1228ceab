#!/usr/bin/env bash
# The metrics endpoint (metrics.listen): smigd serves Prometheus' text
# format through libmicrohttpd; scraped with curl during a migration it
# shows the migration active, with its bytes and what is left, and after it
# the outcome counted on both sides, with its time and the guest's pause in
# histograms; a cancelled migration is counted as cancelled; peers' trust
# and the certificates' ends are there; every page passes Prometheus' own
# `promtool check metrics`; anything but GET /metrics is refused; and the
# Grafana dashboard of contrib/ asks only for metrics smigd serves. And the
# history of migrations (smig migrate list/show): phases, outcome and why,
# on both sides, across a restart of smigd, bounded to the last 500.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../harness/lib.sh"
. "$here/../harness/tap.sh"
promtool=${SMIG_PROMTOOL:-/var/cache/smig/promtool/promtool}

dir=$(mktemp -d /tmp/smig-metrics.XXXXXX)
trap 'cluster_clean "$dir"' EXIT
cluster_make "$dir" 2 || { echo "Bail out! cluster_make"; exit 1; }
[ -x "$promtool" ] || { echo "Bail out! no promtool at $promtool: run scripts/install-deps.sh"; exit 1; }
for i in 1 2; do
	port=$(free_port)
	echo "$port" >"$dir/h$i.mport"
	jq --arg l "127.0.0.1:$port" '.metrics = {listen: $l}' "$dir/h$i.json" >"$dir/h$i.json.new" &&
		mv "$dir/h$i.json.new" "$dir/h$i.json"
done
ivt_make "$dir" 2 # the configs are measured: their golden sets as they are now

plan 17

smigd_start "$dir" h1 && smigd_start "$dir" h2 &&
	grep -q "event=metrics_listening addr=127.0.0.1 port=$(cat "$dir/h1.mport")" "$dir/h1.log"
ok $? "h1 and h2 start, each serving its metrics"

scrape() { curl -sf --max-time 5 "http://127.0.0.1:$(cat "$dir/$1.mport")/metrics"; }
val() { # HOST METRIC-WITH-LABELS: its value, or nothing
	scrape "$1" | awk -v m="$2" '$1 == m { print $2 }'
}
page=$(scrape h1)
lint=$("$promtool" check metrics <<<"$page" 2>&1)
[ $? -eq 0 ] && grep -q '^smig_build_info{version="' <<<"$page" && grep -q '^# TYPE smig_migrations_total counter' <<<"$page"
ok $? "GET /metrics answers the text format and promtool check metrics passes it${lint:+: $lint}"

# no host TPM here: each host's word is its own, unverified (1)
unverified() { [ "$(val h1 'smig_peer_trust_level{host="h2"}')" = 1 ]; }
wait_for 20 unverified && [ -n "$(val h1 'smig_peer_attestation_age_seconds{host="h2"}')" ] &&
	[ "$(val h1 'smig_host_trust_level')" = 1 ] &&
	[ "$(val h1 'smig_certificate_expiry_timestamp_seconds{cert="host"}')" = "$(date -d "$(openssl x509 -in "$dir/pki/h1.crt" -noout -enddate | cut -d= -f2)" +%s)" ]
ok $? "h2's trust (1, unverified: no TPM) and the age of its attestation, h1's own, and h1's certificate's end as openssl reads it: $(scrape h1 | grep -E '^smig_(peer|host_trust|certificate)' | tr '\n' ' ')"

code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$(cat "$dir/h1.mport")/")
code2=$(curl -s -o /dev/null -w '%{http_code}' -X POST --data x "http://127.0.0.1:$(cat "$dir/h1.mport")/metrics")
[ "$code" = 404 ] && [ "$code2" = 405 ]
ok $? "another path is 404 ($code), another method 405 ($code2)"

# a busy guest, moved at 6 MiB/s so that the scrapes catch it
cat >"$dir/m1.json" <<JSON
{"name": "m1", "memory_mib": 64, $(guest_boot smig-guest.elf "mem=16 dirty=200 hb=100"), "vtpm": true}
JSON
hsmig "$dir" h1 vm define "$dir/m1.json" >/dev/null && hsmig "$dir" h1 vm start m1 >/dev/null &&
	wait_for 20 grep -q ' HB 5 ' "$dir/state-h1/consoles/m1.log"
ok $? "m1 runs on h1"
hsmig "$dir" h1 migrate m1 --to h2 --max-bandwidth 6 >"$dir/mig1.out" 2>&1 &
mig=$!
wait_for 30 bash -c "curl -sf http://127.0.0.1:$(cat "$dir/h1.mport")/metrics | grep -q '^smig_migration_data_remaining_bytes{vm=\"m1\"}'"
during=$(scrape h1)
in_h2=$(val h2 'smig_migrations_active{direction="in"}')
list1=$(hsmig "$dir" h1 vm list | awk '$1 == "m1" { print $2 }')
list2=$(hsmig "$dir" h2 vm list | awk '$1 == "m1" { print $2 }')
wait $mig
rc=$?
grep -q '^smig_migrations_active{direction="out"} 1$' <<<"$during" &&
	grep -qE '^smig_migration_data_processed_bytes\{vm="m1",direction="out",peer="h2",state="[a-z-]+"\} [1-9]' <<<"$during" &&
	[ "$in_h2" = 1 ] && "$promtool" check metrics <<<"$during" >/dev/null 2>&1
ok $? "during the move h1 shows it active with its bytes and what is left, h2 one incoming: $(grep -E '^smig_migration_(data|dirty)' <<<"$during" | tr '\n' ' ')"
[ $rc -eq 0 ] && [ "$(val h1 'smig_migrations_total{direction="out",outcome="completed"}')" = 1 ] &&
	[ "$(val h1 'smig_migrations_active{direction="out"}')" = 0 ] &&
	[ "$(val h2 'smig_migrations_total{direction="in",outcome="completed"}')" = 1 ]
ok $? "after it h1 counts one completed outgoing migration and h2 one completed incoming"
[ "$list1" = "migrating>h2" ] && [ "$list2" = "arriving<h1" ]
ok $? "meanwhile a second client's vm list showed it: $list1 on h1, $list2 on h2"
[ "$(val h1 'smig_migration_duration_seconds_count')" = 1 ] && [ "$(val h1 'smig_migration_downtime_seconds_count')" = 1 ] &&
	[ "$(val h1 'smig_migration_duration_seconds_bucket{le="+Inf"}')" = 1 ] &&
	[ "$(val h1 'smig_migration_bytes_total{direction="out"}')" -gt 1000000 ] &&
	[ "$(val h1 'smig_migration_passes_total')" -ge 1 ]
ok $? "its time ($(val h1 smig_migration_duration_seconds_sum) s), the guest's pause ($(val h1 smig_migration_downtime_seconds_sum) s), bytes and passes are counted"
page=$(scrape h1)
"$promtool" check metrics <<<"$page" >/dev/null 2>&1
ok $? "the page after the migration passes promtool too"
[ "$(val h1 'smig_vms{state="running"}')" = 0 ] && [ "$(val h2 'smig_vms{state="running"}')" = 1 ]
ok $? "the VMs by state: none running on h1, one on h2"

# a cancelled one, h2 -> h1
hsmig "$dir" h2 migrate m1 --to h1 --max-bandwidth 1 >"$dir/mig2.out" 2>&1 &
mig=$!
wait_for 30 bash -c "curl -sf http://127.0.0.1:$(cat "$dir/h2.mport")/metrics | grep -q '^smig_migrations_active{direction=\"out\"} 1'" &&
	sleep 1 && hsmig "$dir" h2 migrate --cancel m1 >/dev/null
wait $mig
wait_for 10 bash -c "[ \"\$(curl -sf http://127.0.0.1:$(cat "$dir/h2.mport")/metrics | awk '\$1 == \"smig_migrations_total{direction=\\\"out\\\",outcome=\\\"cancelled\\\"}\" { print \$2 }')\" = 1 ]" &&
	[ "$(vm_where "$dir" m1)" = h2 ] && [ "$(val h2 'smig_migrations_total{direction="out",outcome="completed"}')" = 0 ]
ok $? "a cancelled migration is counted as cancelled on its source (m1 runs on h2)"

# the dashboard in contrib/ queries only metrics smigd serves
page=$(scrape h1)
missing=$(jq -r '.panels[].targets[].expr' "$here/../../contrib/grafana-smig.json" | grep -oE 'smig_[a-z_]+' |
	sed -E 's/_bucket$//' | sort -u | while read -r m; do grep -q "^# TYPE $m " <<<"$page" || echo "$m"; done)
[ -z "$missing" ]
ok $? "every metric contrib/grafana-smig.json queries is on the page${missing:+; not: $missing}"

n=$(val h1 smig_metrics_scrapes_total)
[ "${n:-0}" -ge 5 ] && ! grep -q 'event=worker_died' "$dir/h1.log" "$dir/h2.log"
ok $? "every scrape was counted ($n) and both workers lived through them, sandboxed"

# --- the history: smig migrate list and show, across a restart, bounded
out=$(hsmig "$dir" h1 --json migrate list)
id=$(jq -r '[.migrations[] | select(.direction == "out")][0].id' <<<"$out")
jq -e '[.migrations[] | select(.direction == "out")] | length == 1 and (.[0] | .vm == "m1" and .peer == "h2" and
	.outcome == "completed" and .downtime_ms > 0 and (.phases | map(.name) | index("copying memory") != null))' <<<"$out" >/dev/null &&
	hsmig "$dir" h1 migrate show "${id:0:10}" | grep -q "switching over"
jq -e '[.migrations[] | select(.direction == "in")] | length == 1 and .[0].outcome == "failed" and
	(.[0].reason | test("cancelled by the operator"))' <<<"$out" >/dev/null
ok $? "h1's history: m1 out to h2, completed, with its phases (migrate show finds it by a prefix), and the cancelled one in from h2, failed here and why"
diag "$(hsmig "$dir" h1 migrate list)"
smigd_stop "$dir" h2 && smigd_start "$dir" h2 &&
	out=$(hsmig "$dir" h2 --json migrate list --vm m1) &&
	jq -e '.migrations | length == 2 and .[0].direction == "in" and .[0].outcome == "completed" and
		.[1].outcome == "cancelled" and (.[1].reason | test("cancelled by the operator"))' <<<"$out" >/dev/null
ok $? "h2's history after a restart of smigd: m1 in (completed), then out (cancelled, and why)"
smigd_stop "$dir" h1
hist=$dir/state-h1/worker/migrations.jsonl
real=$(cat "$hist")
for i in $(seq 1 1001); do
	printf '{"id":"old%05d","vm":"x","direction":"out","peer":"h2","outcome":"failed","started":"","ended":"","phases":[],"total_ms":1}\n' "$i"
done >"$hist"
printf '%s\n' "$real" >>"$hist"
smigd_start "$dir" h1 && wait_for 20 bash -c "[ \"\$($SMIG --socket $dir/h1.sock --json hosts | jq -r '.hosts[] | select(.name == \"h2\") | .attestation.verdict')\" = unverified ]" &&
	hsmig "$dir" h2 migrate m1 --to h1 >/dev/null &&
	out=$(hsmig "$dir" h1 --json migrate list --last 0) &&
	[ "$(wc -l <"$hist")" = 500 ] && jq -e '.migrations | length == 500 and .[0].id == "old00505" and
		(map(select(.vm == "m1")) | length == 3) and (.[-1] | .direction == "in" and .outcome == "completed")' <<<"$out" >/dev/null
ok $? "the history is bounded: 1003 records and one more make 500, the oldest dropped first ($(wc -l <"$hist") lines, first $(jq -r '.migrations[0].id' <<<"$out"))"

done_testing
