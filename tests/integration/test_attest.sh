#!/usr/bin/env bash
# Attestation with real daemons on four loopback hosts, each with a swtpm
# as its host TPM, their IVT made from what each measured at start (all
# trusted, each TPM's EK and AK enrolled): evidence replayed from another
# session is refused, and so is a TPM quote for another nonce even when the
# evidence around it is re-signed with the stolen host key; a PCR extended
# off-policy on h4's TPM makes h4 untrusted; a tampered measured file on h2
# makes h1 refuse to migrate there, naming the component and both values;
# tampering on h1 makes h1 evacuate its VM to the only trusted host left,
# h3, and the guest's own checks stay clean. The time from tamper to the VM
# running on h3 is printed.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../harness/lib.sh"
. "$here/../harness/tap.sh"
check_guest=$here/../harness/guest-check
fakepeer=$SMIG_BUILD/tests/harness/smig-fakepeer

dir=$(mktemp -d /tmp/smig-att.XXXXXX)
trap 'cluster_clean "$dir"' EXIT
SMIG_ATTEST_S=2 SMIG_HOST_TPM=1 cluster_make "$dir" 4 || { echo "Bail out! cluster_make"; exit 1; }
guest=$SMIG_BUILD/guest/smig-guest.elf

plan 22

jqe '[.hosts[] | select(.tpm.ek and .tpm.ak and .golden[0].components.pcr16)] | length == 4' "$dir/ivt.json" >/dev/null
ok $? "the IVT enrols each host's TPM (EK and proven AK) and its PCR 16"
smigd_start "$dir" h1 && smigd_start "$dir" h2 && smigd_start "$dir" h3 && smigd_start "$dir" h4
ok $? "h1, h2, h3 and h4 start, each with its host TPM"

verdict() { # verdict ON HOST: ON's verdict on HOST
	hsmig "$dir" "$1" --json hosts | jq -r --arg h "$2" '.hosts[] | select(.name == $h) | .attestation.verdict'
}
trusted_all() { [ "$(verdict h1 h2)" = trusted ] && [ "$(verdict h1 h3)" = trusted ] &&
	[ "$(verdict h1 h4)" = trusted ] && [ "$(verdict h1 h1)" = trusted ]; }
wait_for 15 trusted_all
ok $? "h1 holds every host trusted after its first attestation round"
out=$(hsmig "$dir" h1 ping h3)
ok $? "smig ping reports the peer's verdict: $out"

# --- replayed evidence ----------------------------------------------------------
fake() { # fake MODE AS TARGET [ARGS]
	"$fakepeer" "$1" --ca "$dir/pki/ca.crt" --cert "$dir/pki/$2.crt" --key "$dir/pki/$2.key" \
		--name "$2" --to "127.0.0.1:$(cat "$dir/$3.port")" "${@:4}"
}
fake capture h3 h2 >"$dir/h2.evidence"
jqe '.host == "h2" and (.sig | length == 128)' "$dir/h2.evidence" >/dev/null
ok $? "evidence of h2 captured in a session with h3"
fake present h2 h1 --evidence "$dir/h2.evidence"
wait_for 5 grep -q 'event=peer_attested host=h2 verdict=untrusted trust=none reason="evidence answers another nonce (replayed)"' "$dir/h1.log"
ok $? "replayed in a session with h1 it is refused: another nonce"
fake present h2 h1 --evidence "$dir/h2.evidence" --rebind yes
wait_for 5 grep -q 'event=peer_attested host=h2 verdict=untrusted trust=none reason="evidence signature is not h2.s"' "$dir/h1.log"
ok $? "with this session's nonce and exporter value put in, its signature fails"

# --- the host TPM --------------------------------------------------------------------
fake capture h3 h4 >"$dir/h4.evidence"
jqe '(.tpm.quote | length > 0) and ([.components[] | select(.name == "pcr16")] | length == 1)' "$dir/h4.evidence" >/dev/null
ok $? "h4's evidence carries PCR 16 and a TPM quote"
fake present h4 h1 --evidence "$dir/h4.evidence" --resign yes
wait_for 5 grep -q 'event=peer_attested host=h4 verdict=untrusted trust=none reason="TPM quote answers another nonce or session (replayed)"' "$dir/h1.log"
ok $? "re-bound and re-signed with h4's own key, its old quote still answers another nonce"
pcr_before=$(jq -r '.hosts.h4.golden[0].components.pcr16' "$dir/ivt.json")
tpm2_pcrextend -T "swtpm:host=127.0.0.1,port=$(cat "$dir/h4.tpmport")" \
	"16:sha256=$(echo rootkit | sha256sum | cut -d' ' -f1)"
reason4() { hsmig "$dir" h1 --json hosts | jq -r '.hosts[] | select(.name == "h4") | .attestation.reason'; }
pcr_refused() { reason4 | grep -q "component pcr16: sha256 [0-9a-f]*, golden set cluster-up has $pcr_before"; }
wait_for 10 pcr_refused
ok $? "PCR 16 extended off-policy on h4's TPM: h1 holds h4 untrusted ($(reason4))"

# --- a VM that needs a trusted host with a vTPM -------------------------------------
cat >"$dir/vm1.json" <<JSON
{"name": "vm1", "memory_mib": 48, $(guest_boot smig-guest.elf "mem=16 dirty=200 hb=100"),
 "vtpm": true, "security": {"min_trust": "trusted", "requires": ["vtpm"]}}
JSON
hsmig "$dir" h1 vm define "$dir/vm1.json" >/dev/null && hsmig "$dir" h1 vm start vm1 >/dev/null &&
	wait_for 20 grep -q ' HB 5 ' "$dir/state-h1/consoles/vm1.log"
ok $? "vm1 (min_trust trusted, requires vtpm) runs on h1"

# --- tamper on h2: h1 refuses to send it anything ---------------------------------
fw2=$(sha256sum "$dir/h2.fw" | cut -d' ' -f1)
echo tampered >>"$dir/h2.fw"
fw2new=$(sha256sum "$dir/h2.fw" | cut -d' ' -f1)
self_verdict_is() { [ "$(hsmig "$dir" "$1" --json status | jq -r .attestation.verdict)" = "$2" ]; }
wait_for 5 self_verdict_is h2 untrusted
ok $? "h2 notices its own change at once (inotify)"
out=$(hsmig "$dir" h1 migrate vm1 --to h2 2>&1)
rc=$?
# refused by the live gate (exit 4) or, once h1's round saw h2 fail, by the policy (exit 3)
[ $rc -eq 4 ] || [ $rc -eq 3 ] && grep -q "component firmware: sha256 $fw2new, golden set cluster-up has $fw2" <<<"$out"
ok $? "h1 refuses to migrate vm1 to h2 (exit $rc) naming the component and both values"
diag "$out"
[ "$(hsmig "$dir" h1 --json vm show vm1 | jq -r .state)" = running ] &&
	hsmig "$dir" h1 --json audit show --last 0 | jqe -s 'map(select(.action == "vm.migrate" and .decision == "deny" and (.rule == "attestation" or .rule == "constraint:min_trust") and (.detail | test("firmware")))) | length > 0' >/dev/null
ok $? "vm1 still runs on h1; the refusal is audited with its rule"
verdict_is() { [ "$(verdict "$1" "$2")" = "$3" ]; }
wait_for 10 verdict_is h1 h2 untrusted
ok $? "h1's next round marks h2 untrusted (smig hosts)"
out=$(hsmig "$dir" h1 --json evacuate --dry-run)
[ "$(jq -r '.steps[0].vm + " " + .steps[0].to' <<<"$out")" = "vm1 h3" ]
ok $? "evacuate --dry-run plans vm1 to h3, never to untrusted h2 or h4: $(jq -c .steps <<<"$out")"

# --- tamper on h1: its VM leaves for h3 ----------------------------------------------
t0=$(date +%s%N)
echo tampered >>"$dir/h1.fw"
running_on_h3() { [ "$(hsmig "$dir" h3 --json vm show vm1 2>/dev/null | jq -r .state)" = running ]; }
wait_for 30 running_on_h3
rc=$?
t1=$(date +%s%N)
ok $rc "tamper on h1: vm1 runs on h3 $(((t1 - t0) / 1000000)) ms later"
diag "tamper-to-running on h3: $(((t1 - t0) / 1000000)) ms (bound 30000)"
! hsmig "$dir" h1 vm show vm1 >/dev/null 2>&1 && ! hsmig "$dir" h2 vm show vm1 >/dev/null 2>&1 &&
	! hsmig "$dir" h4 vm show vm1 >/dev/null 2>&1
ok $? "vm1 is on h3 only"
out=$("$check_guest" vm1 --vtpm "$dir/state-h1" "$dir/state-h3")
ok $? "the guest's own checks are clean: $out"
# h1 writes the evacuation's "ok" when h3 has watched the resumed guest for
# limits.guest_watch_ms and settled it, which is after vm1 already runs on h3.
evac_audited() {
	hsmig "$dir" h1 --json audit show --last 0 | jqe -s '
	(map(select(.action == "host.integrity" and .outcome == "failed")) | length > 0) and
	(map(select(.action == "host.evacuate" and .target == "vm:vm1 to:h3" and .outcome == "ok")) | length > 0)' >/dev/null &&
		hsmig "$dir" h3 --json audit show --last 0 | jqe -s 'map(select(.actor == "peer:h1" and .outcome == "committed")) | length > 0' >/dev/null
}
wait_for 15 evac_audited
ok $? "h1 audited its failed integrity check and the evacuation; h3 the migration"

# --- enrolment: h2's new firmware becomes a golden set ---------------------------------
out=$(hsmig "$dir" h3 ivt enrol h2 --golden firmware-2)
ok $? "smig ivt enrol takes h2's current evidence as a golden set: $out"
wait_for 10 verdict_is h3 h2 trusted && wait_for 10 self_verdict_is h2 trusted &&
	hsmig "$dir" h3 ivt show | grep -q "golden set firmware-2"
ok $? "h2 is trusted again, by h3 and by itself; smig ivt show lists both golden sets"

done_testing
