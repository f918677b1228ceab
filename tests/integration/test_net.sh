#!/usr/bin/env bash
# NICs that survive: a Linux guest with a virtio-net NIC on the network
# "lan" (each host's bridge brlan, one segment across hosts) serves TCP
# echo; a client on a third machine streams through it while the VM moves
# h1 -> h2 -> h1. The connection must stay up with every byte echoed in
# order, the MAC must stay the VM's, and each host must hold the VM's tap
# only while it runs the VM. Protection that moves with the VM: a second
# guest with a NIC filter sends spoofed datagrams (another source address,
# another MAC) next to honest ones; the filter drops the spoofed ones on h1
# and, after the move, on h2; an unfiltered guest shows they would pass. A
# destination that cannot apply the filter is refused at COMMIT.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../harness/lib.sh"
. "$here/../harness/tap.sh"
netns_test net
echoclient=$SMIG_BUILD/tests/harness/smig-echoclient

plan 19

"$cluster" up --hosts 2 >/dev/null
ok $? "two hosts and a client, each host's brlan on one segment with the client"
on() { local h=$1; shift; "$cluster" exec "$h" "$SMIG" "$@"; }
out=$("$cluster" linux h1 web --ip 10.77.0.100 --spoof 10.77.0.250:9998)
ok $? "$out"
mac=$(jq -r '.nics[0].mac' "$dir/state-h1/vms/web/spec.json")
grep -q "NET .* 10.77.0.100/24 $mac" "$dir/state-h1/consoles/web.log"
ok $? "define gave the NIC a MAC for life ($mac); the guest sees it"
taps() { ip -n "$("$cluster" ns "$1")" -o link show master brlan 2>/dev/null | awk -F': ' '{print $2}' | grep -c '^smig'; }
[ "$(taps h1)" = 1 ] && [ "$(taps h2)" = 0 ]
ok $? "h1 made the VM's tap and put it on brlan; h2 has none"

"$cluster" client "$echoclient" 10.77.0.100:7 --rate 32 --until "$dir/stop" >"$dir/echo.out" 2>&1 &
client=$!
wait_for 20 grep -q 'echoed=[1-9]' "$dir/echo.out"
ok $? "the client on 10.77.0.250 streams through the guest's echo service"
on h1 migrate web --to h2 >"$dir/m1.out" 2>&1 && sleep 2 && on h2 migrate web --to h1 >"$dir/m2.out" 2>&1
ok $? "web moves h1 -> h2 -> h1 with the stream running: $(tail -1 "$dir/m1.out") / $(tail -1 "$dir/m2.out")"
sleep 2
touch "$dir/stop"
wait $client
rc=$?
res=$(tail -1 "$dir/echo.out")
gap=$(sed -n 's/.*max_gap_ms=\([0-9]*\).*/\1/p' <<<"$res")
[ $rc -eq 0 ] && [ "${gap:-99999}" -lt 5000 ]
ok $? "the connection survived both moves, every byte echoed in order: $res"
diag "$(grep -c '^t=' "$dir/echo.out") seconds of streaming; longest quiet spell ${gap:-?} ms"
[ "$(taps h1)" = 1 ] && [ "$(taps h2)" = 0 ]
ok $? "after the round trip the tap is on h1 again and gone from h2"
pid=$(on h1 --json vm show web | jq -r .pid)
tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "virtio-net-pci,netdev=net0,id=nic0,mac=$mac"
ok $? "the VM kept its MAC through both moves"
out=$("$cluster" check web)
ok $? "the guest's own checks over both hosts: $out"

# --- NIC filters --------------------------------------------------------------------------
for p in 9998 9999; do
	"$cluster" client socat -u UDP4-RECV:$p OPEN:"$dir/udp$p",creat,append >/dev/null 2>&1 &
done
out=$("$cluster" linux h1 guard --ip 10.77.0.101 --filter 7 --spoof 10.77.0.250:9999 2>&1)
ok $? "$out, its NIC filtered (10.77.0.101 only, inbound TCP to port 7)"
count() { grep -c "^$2 " "$dir/udp$1" 2>/dev/null; }
wait_for 30 bash -c "[ \$(grep -c '^legit ' $dir/udp9999) -ge 4 ]"
[ "$(count 9998 ipspoof)" -gt 0 ] && [ "$(count 9998 macspoof)" -gt 0 ]
ok $? "without a filter a guest's spoofed datagrams reach the client (web: $(count 9998 legit) honest, $(count 9998 ipspoof) from another address, $(count 9998 macspoof) from another MAC)"
[ "$(count 9999 legit)" -ge 4 ] && [ "$(count 9999 ipspoof)" = 0 ] && [ "$(count 9999 macspoof)" = 0 ]
ok $? "with its filter on h1, guard's spoofed datagrams are dropped ($(count 9999 legit) honest, $(count 9999 ipspoof) + $(count 9999 macspoof) spoofed arrived)"
"$cluster" client "$echoclient" 10.77.0.101:7 --seconds 2 >"$dir/g7.out" 2>&1
rc7=$?
"$cluster" client timeout 3 bash -c 'echo x >/dev/tcp/10.77.0.101/8' 2>/dev/null
rc8=$?
"$cluster" client timeout 3 bash -c 'echo x >/dev/tcp/10.77.0.100/8' 2>/dev/null
rcw=$?
[ $rc7 -eq 0 ] && [ $rc8 -eq 124 ] && [ $rcw -eq 1 ]
ok $? "inbound TCP to guard: port 7 allowed ($(tail -1 "$dir/g7.out")), port 8 silently dropped (exit $rc8); web's port 8 answers with a reset (exit $rcw)"

# an operator's firewall manager holds the table name smigd would use on h2
fnv() {
	local s=$1 h=2166136261 i c
	for ((i = 0; i < ${#s}; i++)); do
		printf -v c '%d' "'${s:i:1}"
		h=$(((h ^ c) * 16777619 & 0xffffffff))
	done
	printf 'smig%08x' "$h"
}
table=smig_vm_$(fnv h2/guard)
mkfifo "$dir/nft.fifo"
"$cluster" exec h2 nft -i <"$dir/nft.fifo" >/dev/null 2>&1 &
exec 7>"$dir/nft.fifo"
echo "add table bridge $table { flags owner; }" >&7
wait_for 5 "$cluster" exec h2 nft list table bridge "$table"
out=$(on h1 migrate guard --to h2 2>&1)
rc=$?
[ $rc -eq 3 ] && grep -q "h2 does not enforce its NIC filters for guard" <<<"$out" &&
	[ "$(on h1 --json vm show guard | jq -r .state)" = running ] && ! on h2 vm show guard >/dev/null 2>&1
ok $? "a destination that cannot apply the filter is refused at COMMIT (exit $rc); guard runs on h1 only: $out"
exec 7>&-
wait_for 5 bash -c "! '$cluster' exec h2 nft list table bridge $table"
before=$(count 9999 legit)
on h1 migrate guard --to h2 >"$dir/m3.out" 2>&1 &&
	"$cluster" exec h2 nft list table bridge "$table" >/dev/null &&
	! "$cluster" exec h1 nft list tables | grep -q "smig_vm_$(fnv h1/guard)"
ok $? "with the table free guard moves to h2, its filter with it (h2 has table $table, h1's is gone): $(tail -1 "$dir/m3.out")"
wait_for 20 bash -c "[ \$(grep -c '^legit ' $dir/udp9999) -ge $((before + 4)) ]" &&
	[ "$(count 9999 ipspoof)" = 0 ] && [ "$(count 9999 macspoof)" = 0 ]
ok $? "on h2 the spoofed datagrams are still dropped ($(($(count 9999 legit) - before)) honest ones since the move, no spoofed one ever)"
"$cluster" client "$echoclient" 10.77.0.101:7 --seconds 1 >/dev/null 2>&1 &&
	{ "$cluster" client timeout 3 bash -c 'echo x >/dev/tcp/10.77.0.101/8' 2>/dev/null; [ $? -eq 124 ]; }
ok $? "and on h2 inbound TCP still reaches port 7 only; port 8 is dropped"
jqe '.events.policy_denial >= 1' <<<"$(on h1 --json ids status)" >/dev/null &&
	on h1 --json audit show --last 0 | jqe -s 'map(select(.action == "vm.migrate" and (.detail // "" | test("NIC filters")))) | length >= 1' >/dev/null
ok $? "the refused commit is a security event and in h1's audit log"

done_testing
