#!/usr/bin/env bash
# Trust rooted in the TPM, with real daemons on three loopback hosts: h1
# and h2 each with a swtpm as host TPM, h3 without one. h2's TPM is not
# enrolled at first. A host's own word (golden values signed with its host
# key) earns at most "unverified", which never meets min_trust trusted -
# not even golden values re-signed with a stolen host key. smig ivt enrol
# proves that h2's attestation key lives in the TPM whose endorsement key
# it presents (a credential only that TPM opens) and enrols both; h2 is
# trusted from then on, and a stolen key without the TPM is refused. h2
# moved to another TPM is refused, naming both EKs, and enrolment takes it
# only with --new-tpm; a host presenting one TPM's EK with another's AK
# fails the credential and is not enrolled.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../harness/lib.sh"
. "$here/../harness/tap.sh"
fakepeer=$SMIG_BUILD/tests/harness/smig-fakepeer

dir=$(mktemp -d /tmp/smig-tpm.XXXXXX)
trap 'cluster_clean "$dir"; pkill -KILL -f "tpmstate dir=$dir" 2>/dev/null' EXIT
SMIG_ATTEST_S=2 SMIG_HOST_TPM=1 cluster_make "$dir" 3 || { echo "Bail out! cluster_make"; exit 1; }
# h3 has no TPM; h2's TPM is not enrolled yet
jq 'del(.attestation.tpm)' "$dir/h3.json" >"$dir/h3.json.tmp" && mv "$dir/h3.json.tmp" "$dir/h3.json"
ivt_make "$dir" 3 || { echo "Bail out! ivt_make"; exit 1; }
jq 'del(.hosts.h2.tpm)' "$dir/ivt.json" >"$dir/ivt.json.tmp" && mv "$dir/ivt.json.tmp" "$dir/ivt.json"
# what h2's TPM says of its EK, read on h2 itself (before smigd holds the TPM)
ekfp=$("$SMIGD" --config "$dir/h2.json" --measure 2>/dev/null | jq -r .tpm.ek_fingerprint)

plan 18

jqe '(.hosts.h1.tpm.ek | length == 128) and (.hosts.h2.tpm == null) and (.hosts.h3.tpm == null)' "$dir/ivt.json" >/dev/null
ok $? "the IVT enrols h1's TPM (smigd --measure proved its AK), not h2's or h3's"
smigd_start "$dir" h1 && smigd_start "$dir" h2 && smigd_start "$dir" h3
ok $? "h1, h2 and h3 start"

att() { # att ON HOST FIELD: ON's attestation FIELD on HOST
	hsmig "$dir" "$1" --json hosts | jq -r --arg h "$2" --arg f "$3" '.hosts[] | select(.name == $h) | .attestation[$f]'
}
is() { [ "$(att "$1" "$2" verdict)" = "$3" ]; }
wait_for 15 is h1 h3 unverified && wait_for 5 is h1 h2 unverified
ok $? "h1 holds h3 (no TPM) and h2 (TPM not enrolled) unverified, never trusted"
att h1 h3 reason | grep -q "matches golden set cluster-up, but by its own word only: no quote by a TPM attestation key enrolled for h3"
ok $? "the reason says why: $(att h1 h3 reason)"
[ "$(hsmig "$dir" h3 --json status | jq -r .attestation.verdict)" = unverified ] &&
	[ "$(hsmig "$dir" h1 --json status | jq -r .attestation.verdict)" = trusted ]
ok $? "by their own checks h3 is unverified and h1, whose TPM is enrolled, trusted"

# --- unverified never meets min_trust trusted ----------------------------------------
cat >"$dir/vm1.json" <<JSON
{"name": "vm1", "memory_mib": 48, $(guest_boot smig-guest.elf "mem=8 hb=100"),
 "security": {"min_trust": "trusted"}}
JSON
hsmig "$dir" h1 vm define "$dir/vm1.json" >/dev/null && hsmig "$dir" h1 vm start vm1 >/dev/null &&
	wait_for 20 grep -q ' HB 3 ' "$dir/state-h1/consoles/vm1.log"
ok $? "vm1 (min_trust trusted) runs on h1"
out=$(hsmig "$dir" h1 migrate vm1 --to h3 2>&1)
rc=$?
[ $rc -eq 3 ] && grep -q "target h3 has trust verdict unverified; the vm needs at least trusted (matches golden set" <<<"$out" &&
	[ "$(hsmig "$dir" h1 --json vm show vm1 | jq -r .state)" = running ]
ok $? "the policy refuses to send vm1 to h3 (exit $rc): $out"

# --- a stolen host key without the TPM --------------------------------------------------
fake() { # fake MODE AS TARGET [ARGS]
	"$fakepeer" "$1" --ca "$dir/pki/ca.crt" --cert "$dir/pki/$2.crt" --key "$dir/pki/$2.key" \
		--name "$2" --to "127.0.0.1:$(cat "$dir/$3.port")" "${@:4}"
}
fake capture h2 h3 >"$dir/h3.evidence"
fake present h3 h1 --evidence "$dir/h3.evidence" --rebind yes --resign yes
wait_for 5 grep -q 'event=peer_attested host=h3 verdict=unverified trust=unverified' "$dir/h1.log"
ok $? "h3's golden values re-signed with its stolen key: unverified, not trusted"

# --- enrolment proves h2's AK lives in its TPM --------------------------------------
out=$(hsmig "$dir" h1 ivt enrol h2 --golden tpm-up)
rc=$?
[ $rc -eq 0 ] && grep -q "TPM: EK $ekfp, AK sha256:[0-9a-f]* (credential activated)" <<<"$out" &&
	jqe '.hosts.h2.tpm.ek and .hosts.h2.tpm.ak' "$dir/ivt.json" >/dev/null
ok $? "smig ivt enrol h2 activates a credential in h2's TPM and enrols its EK: $(tr "\n" " " <<<"$out")"
grep -q 'event=enrol_challenge host=h1' "$dir/h2.log"
ok $? "h2's warden opened the credential h1 made for its AK"
out=$(hsmig "$dir" h1 ivt enrol h1 --golden self)
grep -q "TPM: EK sha256:[0-9a-f]*, AK sha256:[0-9a-f]* (credential activated)" <<<"$out"
ok $? "h1 enrols itself the same way, its own warden opening the credential: $(tr "\n" " " <<<"$out")"
wait_for 10 is h1 h2 trusted
ok $? "h1 holds h2 trusted from its next round"
fake capture h3 h2 >"$dir/h2.evidence"
jq 'del(.tpm) | .components |= map(select(.name | startswith("pcr") | not))' "$dir/h2.evidence" >"$dir/h2.notpm"
fake present h2 h1 --evidence "$dir/h2.notpm" --rebind yes --resign yes
wait_for 5 grep -q 'event=peer_attested host=h2 verdict=untrusted trust=none reason="no TPM quote, though the IVT enrolled a TPM for h2"' "$dir/h1.log"
ok $? "h2's golden values re-signed with its stolen key but without its TPM: refused"

# --- another TPM -------------------------------------------------------------------------
smigd_stop "$dir" h2
tpm_a=$(jq -r .attestation.tpm.tcti "$dir/h2.json")
echo '{}' >"$dir/h2b.json" # host_tpm points a config at the TPM it starts
host_tpm "$dir" h2b || { echo "Bail out! second TPM"; exit 1; }
tpm_b="swtpm:host=127.0.0.1,port=$(cat "$dir/h2b.tpmport")"
jq --arg t "$tpm_b" '.attestation.tpm.tcti = $t' "$dir/h2.json" >"$dir/h2.json.tmp" && mv "$dir/h2.json.tmp" "$dir/h2.json"
smigd_start "$dir" h2
refused_tpm() { att h1 h2 reason | grep -q "h2 presents another TPM (EK sha256:[0-9a-f]*) than the one enrolled (EK $ekfp)"; }
wait_for 10 refused_tpm
ok $? "h2 on another TPM: h1 refuses it, naming both EKs ($(att h1 h2 reason))"
out=$(hsmig "$dir" h1 ivt enrol h2 --golden tpm-b 2>&1)
[ $? -ne 0 ] && grep -q "if its TPM was replaced, enrol it with --new-tpm" <<<"$out"
ok $? "enrolment without --new-tpm is refused: $out"
out=$(hsmig "$dir" h1 ivt enrol h2 --golden tpm-b --new-tpm) && wait_for 10 is h1 h2 trusted
ok $? "with --new-tpm the new TPM is enrolled and h2 trusted again"

# --- one TPM's EK with another TPM's AK ---------------------------------------------
ivt_before=$(jq -c .hosts.h2.tpm "$dir/ivt.json")
smigd_stop "$dir" h2
SMIG_TEST_FOREIGN_EK=$tpm_a smigd_start "$dir" h2
out=$(hsmig "$dir" h1 ivt enrol h2 --golden liar --new-tpm 2>&1)
rc=$?
[ $rc -ne 0 ] && grep -q "cannot activate the enrolment credential" <<<"$out" &&
	[ "$(jq -c .hosts.h2.tpm "$dir/ivt.json")" = "$ivt_before" ]
ok $? "EK of TPM A with the AK of TPM B: the credential does not open, nothing enrolled (exit $rc): $out"
is h1 h2 untrusted
ok $? "and h1 holds it untrusted: $(att h1 h2 reason)"

done_testing
