#!/usr/bin/env bash
# Neighbours act, with real daemons on three loopback hosts, each with a
# swtpm as host TPM; h1's PCR 10 and IMA list hold its hypervisor stack,
# which the IVT's allowlist accepts. A file run on h1 that the allowlist
# does not have (an IMA entry and its PCR 10 extend) is invisible to h1's
# own check; h2 and h3 see it at their next attestation, mark h1 untrusted,
# tell each other and h1 (signed verdicts), and h1, told, evacuates its
# 256 MiB guest to them. The times from the tamper to both neighbours'
# verdicts and to the guest running elsewhere are printed. Afterwards h1's
# pushes are refused unless they are evacuations.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../harness/lib.sh"
. "$here/../harness/tap.sh"
mklog=$SMIG_BUILD/tests/harness/smig-mklog
check_guest=$here/../harness/guest-check

dir=$(mktemp -d /tmp/smig-nb.XXXXXX)
trap 'cluster_clean "$dir"' EXIT
SMIG_ATTEST_S=1 SMIG_HOST_TPM=1 cluster_make "$dir" 3 || { echo "Bail out! cluster_make"; exit 1; }
tcti="swtpm:host=127.0.0.1,port=$(cat "$dir/h1.tpmport")"
extend() { local line; while read -r line; do tpm2_pcrextend -T "$tcti" "$line" || return 1; done; }
sha() { echo "$1" | sha256sum | cut -d' ' -f1; }
files=("/usr/bin/qemu-system-x86_64=$(sha256sum "$(command -v qemu-system-x86_64)" | cut -d' ' -f1)"
	"/usr/bin/swtpm=$(sha256sum "$(command -v swtpm)" | cut -d' ' -f1)")
agg=$(sha boot-aggregate)
"$mklog" ima "$dir/h1.ima" "$agg" "${files[@]}" | extend || { echo "Bail out! IMA list"; exit 1; }
jq --arg i "$dir/h1.ima" '.attestation.tpm += {pcrs: [10, 16], ima_log: $i}' "$dir/h1.json" \
	>"$dir/h1.json.tmp" && mv "$dir/h1.json.tmp" "$dir/h1.json"
ivt_make "$dir" 3 || { echo "Bail out! ivt_make"; exit 1; }
args=()
for f in "${files[@]}"; do args+=(--arg "${f%%=*}" "${f#*=}"); done
jq "${args[@]}" '.hosts.h1 += {allowlist: {files: ($ARGS.named | map_values([.]))}}' \
	"$dir/ivt.json" >"$dir/ivt.json.tmp" && mv "$dir/ivt.json.tmp" "$dir/ivt.json"

plan 13

smigd_start "$dir" h1 && smigd_start "$dir" h2 && smigd_start "$dir" h3
ok $? "h1, h2 and h3 start"
verdict() { hsmig "$dir" "$1" --json hosts | jq -r --arg h "$2" '.hosts[] | select(.name == $h) | .attestation.verdict'; }
all_trusted() { [ "$(verdict h2 h1)" = trusted ] && [ "$(verdict h3 h1)" = trusted ] && [ "$(verdict h1 h2)" = trusted ]; }
wait_for 15 all_trusted
ok $? "h2 and h3 hold h1 trusted: its IMA list replays and is allowed"

cat >"$dir/vm1.json" <<JSON
{"name": "vm1", "memory_mib": 256, $(guest_boot smig-guest.elf "mem=64 dirty=200 hb=100")}
JSON
hsmig "$dir" h1 vm define "$dir/vm1.json" >/dev/null && hsmig "$dir" h1 vm start vm1 >/dev/null &&
	wait_for 30 grep -q ' HB 5 ' "$dir/state-h1/consoles/vm1.log"
ok $? "vm1 (256 MiB) runs on h1"

# --- a file the allowlist does not have runs on h1 -----------------------------------
evil=$(sha rootkit)
t0=$(date +%s%N)
"$mklog" ima "$dir/h1.ima" "$agg" "${files[@]}" "/usr/bin/rootkit=$evil" | tail -1 | extend
untrusted_by() { [ "$(verdict "$1" h1)" = untrusted ]; }
wait_for 10 untrusted_by h2 && t_h2=$(date +%s%N) && wait_for 10 untrusted_by h3 && t_h3=$(date +%s%N)
ok $? "h2 and h3 mark h1 untrusted $(((t_h2 - t0) / 1000000)) and $(((t_h3 - t0) / 1000000)) ms after the tamper"
diag "tamper to untrusted: h2 $(((t_h2 - t0) / 1000000)) ms, h3 $(((t_h3 - t0) / 1000000)) ms (target 2000)"
elsewhere() {
	local h
	for h in h2 h3; do
		[ "$(hsmig "$dir" "$h" --json vm show vm1 2>/dev/null | jq -r .state)" = running ] && return 0
	done
	return 1
}
wait_for 30 elsewhere
rc=$?
t_vm=$(date +%s%N)
ok $rc "h1, told by its neighbours, evacuates: vm1 runs elsewhere $(((t_vm - t0) / 1000000)) ms after the tamper"
diag "tamper to vm1 running elsewhere: $(((t_vm - t0) / 1000000)) ms (target 5000, 256 MiB guest, TCG)"
[ "$(hsmig "$dir" h1 --json status | jq -r .attestation.verdict)" = trusted ] &&
	grep -q 'event=evacuate_start host=h1 vms=1 reason="h[23] holds this host untrusted: IMA entry 4: /usr/bin/rootkit' "$dir/h1.log"
ok $? "h1's own check saw nothing; it moved on its neighbours' word"
hsmig "$dir" h2 --json hosts | jqe '.hosts[] | select(.name == "h1") | .reports | map(select(.by == "h3" and .verdict == "untrusted" and (.reason | test("rootkit")))) | length == 1' >/dev/null &&
	hsmig "$dir" h2 hosts | grep -q 'said untrusted by h3'
ok $? "smig hosts on h2 shows that h3 said so, and why"
hsmig "$dir" h1 --json audit show --last 0 | jqe -s 'map(select(.action == "host.integrity" and .outcome == "reported" and (.actor | startswith("peer:h")))) | length >= 1' >/dev/null
ok $? "h1 audited the neighbours' reports"
out=$("$check_guest" vm1 "$dir/state-h1" "$dir/state-h2" "$dir/state-h3" 2>&1)
ok $? "the guest's own checks are clean: $out"

# --- h1's pushes: only evacuations -------------------------------------------------------
cat >"$dir/vm2.json" <<JSON
{"name": "vm2", "memory_mib": 48, $(guest_boot smig-guest.elf "mem=8 hb=100")}
JSON
hsmig "$dir" h1 vm define "$dir/vm2.json" >/dev/null && hsmig "$dir" h1 vm start vm2 >/dev/null
out=$(hsmig "$dir" h1 migrate vm2 --to h2 2>&1)
[ $? -ne 0 ] && grep -q "h1 is untrusted (.*): only its evacuation is taken" <<<"$out" &&
	[ "$(hsmig "$dir" h1 --json vm show vm2 | jq -r .state)" = running ]
ok $? "h2 refuses a plain migration from h1, vm2 stays on h1: $out"

# --- the word of an untrusted host, and the IDS ------------------------------------
! grep -q 'kind=attestation_failure .*host=h1 ' "$dir/h2.log"
ok $? "h1, authentic but untrusted, counts toward no ban on h2 (its evacuation must get through)"
fakepeer=$SMIG_BUILD/tests/harness/smig-fakepeer
fake() { # fake MODE AS TARGET [ARGS]
	"$fakepeer" "$1" --ca "$dir/pki/ca.crt" --cert "$dir/pki/$2.crt" --key "$dir/pki/$2.key" \
		--name "$2" --to "127.0.0.1:$(cat "$dir/$3.port")" "${@:4}"
}
fake capture h3 h1 >"$dir/h1.evidence"
fake present h1 h2 --evidence "$dir/h1.evidence" --rebind yes --resign yes --verdict h3
wait_for 5 grep -q 'event=verdict_ignored by=h1 about=h3 reason="h1 is untrusted here"' "$dir/h2.log" &&
	[ "$(verdict h2 h3)" = trusted ]
ok $? "a VERDICT from h1, which h2 holds untrusted, moves nothing: h2 still holds h3 trusted"
fake present h1 h2 --evidence "$dir/h1.evidence" --rebind yes --resign yes --verdict h3,2
wait_for 5 grep -q 'protocol_violation host=h1 .*reason="VERDICT twice in one session"' "$dir/h2.log"
ok $? "a second VERDICT in one session is a protocol violation"

done_testing
