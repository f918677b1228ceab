#!/usr/bin/env bash
# EK certificates at enrolment, with real daemons on three loopback hosts,
# each with a swtpm as host TPM. A TPM maker (swtpm's local CA, "vendor")
# writes a certificate of h2's EK into its NV as makers do (0x01c0000a);
# h1 trusts that maker's CAs (attestation.ek_roots). smig ivt enrol h2
# checks the certificate names h2's EK and chains to the maker, and
# records it in the IVT. h3's TPM without a certificate, with one from
# another CA ("rogue"), and with h2's certificate copied into it are each
# refused, naming why. Without ek_roots (on h2) a TPM without one is
# enrolled on the enrolment's word, and the output says so.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../harness/lib.sh"
. "$here/../harness/tap.sh"

dir=$(mktemp -d /tmp/smig-ekcert.XXXXXX)
trap 'cluster_clean "$dir"; pkill -KILL -f "tpmstate dir=$dir" 2>/dev/null' EXIT
SMIG_ATTEST_S=2 SMIG_HOST_TPM=1 cluster_make "$dir" 3 || { echo "Bail out! cluster_make"; exit 1; }
host_ek_cert "$dir" h2 vendor || { echo "Bail out! EK certificate for h2"; exit 1; }
jq --arg r "$dir/vendor/roots.pem" '.attestation.ek_roots = $r' "$dir/h1.json" >"$dir/h1.json.tmp" &&
	mv "$dir/h1.json.tmp" "$dir/h1.json"
ivt_make "$dir" 3 || { echo "Bail out! ivt_make"; exit 1; }
jq 'del(.hosts.h2.tpm) | del(.hosts.h3.tpm)' "$dir/ivt.json" >"$dir/ivt.json.tmp" && mv "$dir/ivt.json.tmp" "$dir/ivt.json"

plan 8

"$SMIGD" --config "$dir/h2.json" --measure | jqe '.tpm.ek_cert | length > 100' >/dev/null &&
	! "$SMIGD" --config "$dir/h3.json" --measure | jqe '.tpm.ek_cert' >/dev/null
ok $? "smigd --measure reads h2's EK certificate from its TPM's NV; h3's TPM has none"
smigd_start "$dir" h1 && smigd_start "$dir" h2 && smigd_start "$dir" h3 &&
	grep -q 'event=ek_roots_loaded file=.*/vendor/roots.pem certificates=2' "$dir/h1.log" &&
	grep -q 'event=tpm_ready .*ek_cert=yes' "$dir/h2.log"
ok $? "h1, h2 and h3 start; h1 took the maker's root and intermediate as EK roots"

out=$(hsmig "$dir" h1 ivt enrol h2 --golden ek-ok)
rc=$?
cert=$(jq -r .hosts.h2.tpm.ek_cert "$dir/ivt.json")
[ $rc -eq 0 ] && grep -q "EK certificate: /CN=unknown, issued by /CN=swtpm-localca; chains to attestation.ek_roots" <<<"$out" &&
	[ "$cert" = "$(od -An -tx1 -v "$dir/ek-h2/ek.cert" | tr -d ' \n')" ]
ok $? "h2's EK certificate chains to the maker: enrolled, and the IVT keeps it: $(tr '\n' ' ' <<<"$out")"

out=$(hsmig "$dir" h1 ivt enrol h3 --golden no-cert 2>&1)
rc=$?
[ $rc -ne 0 ] && grep -q "h3's TPM holds no EK certificate (NV 0x01c0000a), and attestation.ek_roots ($dir/vendor/roots.pem) asks for one" <<<"$out" &&
	! jqe '.hosts.h3.tpm' "$dir/ivt.json" >/dev/null
ok $? "h3's TPM without an EK certificate is refused (exit $rc): $out"

# the same TPM, with a certificate from another CA
smigd_stop "$dir" h3
host_ek_cert "$dir" h3 rogue && smigd_start "$dir" h3
out=$(hsmig "$dir" h1 ivt enrol h3 --golden rogue 2>&1)
rc=$?
[ $rc -ne 0 ] && grep -q "h3's EK certificate (/CN=unknown, issued by /CN=swtpm-localca): the EK certificate does not chain to attestation.ek_roots: unable to get local issuer certificate" <<<"$out" &&
	! jqe '.hosts.h3.tpm' "$dir/ivt.json" >/dev/null
ok $? "an EK certificate from another CA is refused (exit $rc): $out"

# h2's genuine certificate, copied into h3's TPM
smigd_stop "$dir" h3
host_ek_cert "$dir" h3 vendor "$dir/ek-h2/ek.cert" && smigd_start "$dir" h3
out=$(hsmig "$dir" h1 ivt enrol h3 --golden copied 2>&1)
rc=$?
[ $rc -ne 0 ] && grep -q "the EK certificate is for another key than the EK the TPM presents" <<<"$out" &&
	! jqe '.hosts.h3.tpm' "$dir/ivt.json" >/dev/null
ok $? "another TPM's genuine certificate is refused (exit $rc): $out"
grep -q 'event=enrol_refused host=h3' "$dir/h1.log"
ok $? "each refusal is logged (enrol_refused)"

# without ek_roots: a TPM without a certificate, on the enrolment's word
smigd_stop "$dir" h3
tpm2_nvundefine -T "swtpm:host=127.0.0.1,port=$(cat "$dir/h3.tpmport")" -C p 0x01c0000a >/dev/null && smigd_start "$dir" h3
out=$(hsmig "$dir" h2 ivt enrol h3 --golden plain)
[ $? -eq 0 ] && grep -q "EK certificate: none in the TPM; its EK taken on this enrolment's word (no attestation.ek_roots)" <<<"$out" &&
	jqe '.hosts.h3.tpm.ek and (.hosts.h3.tpm.ek_cert == null)' "$dir/ivt.json" >/dev/null
ok $? "h2 (no ek_roots) enrols h3's TPM without a certificate, and says so: $(tr '\n' ' ' <<<"$out")"

done_testing
