#!/usr/bin/env bash
# A host TPM that stops answering never holds up smigd, with real daemons
# on two loopback hosts, each with a swtpm as host TPM: h1's TPM is
# frozen (SIGSTOP) for several seconds. Meanwhile h1's warden goes on
# serving - an audited command and a VM start answer at once - while its
# TPM process waits, and a verifier that floods it with sessions asking for
# quotes has at most 4 wait.  After attestation.tpm.timeout_s it is taken as hung:
# the process is restarted, h1's evidence comes without a quote, and h2
# holds h1 untrusted (h1, in maintenance, stays put). Once the TPM answers again, h1 quotes and h2 trusts it again.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../harness/lib.sh"
. "$here/../harness/tap.sh"
fakepeer=$SMIG_BUILD/tests/harness/smig-fakepeer

dir=$(mktemp -d /tmp/smig-tpmhang.XXXXXX)
tpm_pid=
trap '[ -n "$tpm_pid" ] && kill -CONT "$tpm_pid" 2>/dev/null; [ -n "${KEEP:-}" ] && cp "$dir"/h*.log /tmp/ 2>/dev/null; cluster_clean "$dir"; pkill -KILL -f "tpmstate dir=$dir" 2>/dev/null' EXIT
SMIG_ATTEST_S=1 SMIG_HOST_TPM=1 cluster_make "$dir" 2 || { echo "Bail out! cluster_make"; exit 1; }
jq '.attestation.tpm.timeout_s = 3' "$dir/h1.json" >"$dir/h1.json.tmp" && mv "$dir/h1.json.tmp" "$dir/h1.json"
ivt_make "$dir" 2 || { echo "Bail out! ivt_make"; exit 1; }
tpm_pid=$(cat "$dir/tpm-h1/pid")

plan 10

smigd_start "$dir" h1 && smigd_start "$dir" h2
ok $? "h1 and h2 start"
verdict() { hsmig "$dir" h2 --json hosts | jq -r '.hosts[] | select(.name == "h1") | .attestation.verdict'; }
reason() { hsmig "$dir" h2 --json hosts | jq -r '.hosts[] | select(.name == "h1") | .attestation.reason'; }
wait_for 15 bash -c "[ \"\$($SMIG --socket $dir/h2.sock --json hosts | jq -r '.hosts[] | select(.name == \"h1\") | .attestation.verdict')\" = trusted ]"
ok $? "h2 holds h1 trusted (a quote by its enrolled AK)"
tpm_proc=$(pgrep -x -P "$(cat "$dir/h1.pid")" smigd-tpm)
[ -n "$tpm_proc" ]
ok $? "h1's TPM is held by a process of its own under the warden (pid ${tpm_proc:-none})"

cat >"$dir/vm1.json" <<JSON
{"name": "vm1", "memory_mib": 48, $(guest_boot smig-guest.elf "mem=8 hb=100")}
JSON
kill -STOP "$tpm_pid"
sleep 1.2 # the TPM process waits on the frozen TPM by now (PCRs every second)
t0=$(date +%s%N)
out=$(hsmig "$dir" h1 maintenance on h1 2>&1) &&
	hsmig "$dir" h1 vm define "$dir/vm1.json" >/dev/null && hsmig "$dir" h1 vm start vm1 >/dev/null
rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
[ $rc -eq 0 ] && [ $ms -lt 2500 ] && grep -q "maintenance" <<<"$out"
ok $? "TPM frozen: maintenance on (audited by the warden), vm define and vm start answer in $ms ms"
"$fakepeer" quote-flood --ca "$dir/pki/ca.crt" --cert "$dir/pki/h2.crt" --key "$dir/pki/h2.key" \
	--name h2 --to "127.0.0.1:$(cat "$dir/h1.port")" --count 8 >"$dir/flood.out" 2>&1
grep -q 'sent 8 of 8' "$dir/flood.out" && wait_for 3 grep -q 'event=peer_declined host=h2 .*reason="cannot answer ATTEST_REQ: h2 has 4 requests waiting for the TPM already"' "$dir/h1.log"
ok $? "h2's key asks for 8 quotes and leaves: h1 has at most 4 of its requests wait for the TPM, refuses the rest ($(grep -c 'event=peer_declined' "$dir/h1.log") declined, none a protocol violation: $(grep -c 'event=protocol_violation' "$dir/h1.log"))"
wait_for 20 grep -q ' HB 3 ' "$dir/state-h1/consoles/vm1.log"
ok $? "vm1 runs on h1 while its TPM is frozen"
wait_for 10 grep -q 'event=tpm_process_lost .*reason="the TPM (swtpm:host=127.0.0.1,port=[0-9]*) answered nothing in 3 s (attestation.tpm.timeout_s)"' "$dir/h1.log"
ok $? "after 3 s the TPM is taken as hung: $(grep -o 'event=tpm_process_lost.*' "$dir/h1.log" | head -1)"
wait_for 10 bash -c "[ \"\$($SMIG --socket $dir/h2.sock --json hosts | jq -r '.hosts[] | select(.name == \"h1\") | .attestation.verdict')\" = untrusted ]" &&
	reason | grep -q "no TPM quote, though the IVT enrolled a TPM for h1"
ok $? "h1 cannot quote: h2 no longer trusts it ($(verdict): $(reason))"

kill -CONT "$tpm_pid"
wait_for 40 bash -c "[ \"\$($SMIG --socket $dir/h2.sock --json hosts | jq -r '.hosts[] | select(.name == \"h1\") | .attestation.verdict')\" = trusted ]" &&
	wait_for 5 bash -c "[ \"\$($SMIG --socket $dir/h1.sock --json status | jq -r .attestation.verdict)\" = trusted ]" &&
	[ "$(grep -c 'event=tpm_ready' "$dir/h1.log")" -ge 2 ]
ok $? "the TPM answers again: a new TPM process opens it, h1 passes its own check and h2 holds it trusted again"
hsmig "$dir" h1 maintenance off h1 >/dev/null && sleep 2 &&
	[ "$(hsmig "$dir" h1 --json vm show vm1 | jq -r .state)" = running ]
ok $? "maintenance off: vm1 still runs on h1"

done_testing
