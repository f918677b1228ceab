#!/usr/bin/env bash
# What a quote must cover, with real daemons on two loopback hosts, each
# with a swtpm as host TPM. h2's TPM holds what a measured boot and IMA
# would have put there: boot events in PCRs 0, 2, 4 and 7 with the event
# log that records them (TCG crypto-agile format), and PCR 10 with an IMA
# list (binary ima-ng) of the hypervisor stack, both built by the test and
# extended into the swtpm event by event. h1 replays both with every quote:
# h2 is trusted while they match its quote, its golden values and the
# IVT's allowlist, and untrusted, naming the entry, when the IMA list shows
# a file not in the allowlist or another hash of one, when the boot log
# does not replay to the quoted PCRs, or when the IMA list lacks entries
# the TPM has.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../harness/lib.sh"
. "$here/../harness/tap.sh"
mklog=$SMIG_BUILD/tests/harness/smig-mklog

dir=$(mktemp -d /tmp/smig-tpml.XXXXXX)
trap 'cluster_clean "$dir"' EXIT
SMIG_ATTEST_S=2 SMIG_HOST_TPM=1 cluster_make "$dir" 2 || { echo "Bail out! cluster_make"; exit 1; }
tcti="swtpm:host=127.0.0.1,port=$(cat "$dir/h2.tpmport")"
extend() { # extend < "PCR:sha256=HEX" lines: into h2's TPM, in order
	local line
	while read -r line; do
		tpm2_pcrextend -T "$tcti" "$line" || return 1
	done
}
sha() { echo "$1" | sha256sum | cut -d' ' -f1; }

# --- h2's measured boot and IMA ------------------------------------------------------
boot=("0:$(sha crtm)" "2:$(sha option-roms)" "4:$(sha bootloader)" "7:$(sha secure-boot-db)")
"$mklog" boot "$dir/h2.boot" "${boot[@]}" | extend || { echo "Bail out! boot log"; exit 1; }
qemu_sum=$(sha256sum "$(command -v qemu-system-x86_64)" | cut -d' ' -f1)
swtpm_sum=$(sha256sum "$(command -v swtpm)" | cut -d' ' -f1)
smigd_sum=$(sha256sum "$SMIGD" | cut -d' ' -f1)
files=("/usr/bin/qemu-system-x86_64=$qemu_sum" "/usr/bin/swtpm=$swtpm_sum" "/usr/sbin/smigd=$smigd_sum")
agg=$(sha boot-aggregate)
"$mklog" ima "$dir/h2.ima" "$agg" "${files[@]}" | extend || { echo "Bail out! IMA list"; exit 1; }
jq --arg b "$dir/h2.boot" --arg i "$dir/h2.ima" \
	'.attestation.tpm += {pcrs: [0, 2, 4, 7, 10, 16], event_log: $b, ima_log: $i}' \
	"$dir/h2.json" >"$dir/h2.json.tmp" && mv "$dir/h2.json.tmp" "$dir/h2.json"
ivt_make "$dir" 2 || { echo "Bail out! ivt_make"; exit 1; }
allow() { # allow FILE=SHA256...: h2's allowlist in the IVT
	local f args=()
	for f in "$@"; do args+=(--arg "${f%%=*}" "${f#*=}"); done
	jq "${args[@]}" '.hosts.h2 += {boot_log: true, allowlist: {files: ($ARGS.named | map_values([.]))}}' \
		"$dir/ivt.json" >"$dir/ivt.json.tmp" && mv "$dir/ivt.json.tmp" "$dir/ivt.json"
}
allow "${files[@]}"

plan 12

jqe '.hosts.h2 | (.golden[0].components | has("pcr4") and has("pcr7") and (has("pcr10") | not)) and (.allowlist.files | length == 3) and .boot_log' "$dir/ivt.json" >/dev/null
ok $? "h2's golden set has its boot PCRs but not PCR 10, which its IMA list stands for; the IVT has its allowlist"
smigd_start "$dir" h1 && smigd_start "$dir" h2
ok $? "h1 and h2 start"

att() { hsmig "$dir" h1 --json hosts | jq -r --arg f "$1" '.hosts[] | select(.name == "h2") | .attestation[$f]'; }
is() { [ "$(att verdict)" = "$1" ]; }
says() { att reason | grep -qF "$1"; }
wait_for 15 is trusted
ok $? "h1 holds h2 trusted: its boot log and IMA list replay to its quote ($(att reason))"
fakepeer=$SMIG_BUILD/tests/harness/smig-fakepeer
"$fakepeer" capture --ca "$dir/pki/ca.crt" --cert "$dir/pki/h1.crt" --key "$dir/pki/h1.key" \
	--name h1 --to "127.0.0.1:$(cat "$dir/h2.port")" >"$dir/h2.evidence"
jqe --argjson b "$(stat -c %s "$dir/h2.boot")" --argjson i "$(stat -c %s "$dir/h2.ima")" \
	'.logs.boot.size == $b and .logs.ima.size == $i and (.tpm.quote | length > 0)' "$dir/h2.evidence" >/dev/null
ok $? "h2's evidence names both logs by size and digest (signed), beside its quote: $(jq -c .logs "$dir/h2.evidence")"

# --- the boot log does not replay -------------------------------------------------------
cp "$dir/h2.boot" "$dir/h2.boot.good"
"$mklog" boot "$dir/h2.boot" "${boot[0]}" "${boot[1]}" "4:$(sha other-bootloader)" "${boot[3]}" >/dev/null
wait_for 10 says "PCR 4"
ok $? "a boot log with another bootloader than the TPM measured: untrusted ($(att reason))"
is untrusted
ok $? "... and h2 is untrusted"
cp "$dir/h2.boot.good" "$dir/h2.boot"
wait_for 10 is trusted
ok $? "the true log back: trusted again"

# --- a file the allowlist does not have --------------------------------------------------
evil=$(sha rootkit)
"$mklog" ima "$dir/h2.ima" "$agg" "${files[@]}" "/usr/bin/rootkit=$evil" | tail -1 | extend
wait_for 10 says "IMA entry 5: /usr/bin/rootkit (sha256 $evil) is not in the allowlist"
ok $? "IMA measured /usr/bin/rootkit: untrusted, naming the entry ($(att reason))"
allow "${files[@]}" "/usr/bin/rootkit=$evil"
wait_for 10 is trusted
ok $? "once the allowlist has it (the operator's choice), trusted again"

# --- another hash of an allowed file ---------------------------------------------------
other=$(sha patched-qemu)
"$mklog" ima "$dir/h2.ima" "$agg" "${files[@]}" "/usr/bin/rootkit=$evil" "/usr/bin/qemu-system-x86_64=$other" | tail -1 | extend
wait_for 10 says "IMA entry 6: /usr/bin/qemu-system-x86_64: sha256 $other"
ok $? "QEMU measured with another hash: untrusted ($(att reason))"

# --- a list that leaves out what the TPM has -----------------------------------------
"$mklog" ima "$dir/h2.ima" "$agg" "${files[@]}" "/usr/bin/rootkit=$evil" >/dev/null
wait_for 10 says "does not replay to the quoted PCR 10"
ok $? "the IMA list without its last entry: untrusted ($(att reason))"

# --- no logs at all, with an IVT that expects them ---------------------------------------
smigd_stop "$dir" h2
jq '.attestation.tpm |= del(.event_log)' "$dir/h2.json" >"$dir/h2.json.tmp" && mv "$dir/h2.json.tmp" "$dir/h2.json"
smigd_start "$dir" h2
wait_for 10 says "no boot event log, though h2 was enrolled with one"
ok $? "h2 without its boot log: untrusted ($(att reason))"

done_testing
