#!/usr/bin/env bash
# Text from peers and local users never reaches smigd's log raw: a control
# request whose command name carries a newline and a forged log line, a
# VM spec whose name does, and a peer's PREPARE whose VM name does (an
# authenticated peer with a real cluster certificate). Each must leave the
# log with no line it did not write, and with the text escaped in place.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../harness/lib.sh"
. "$here/../harness/tap.sh"

dir=$(mktemp -d /tmp/smig-logtext.XXXXXX)
trap 'cluster_clean "$dir"' EXIT
cluster_make "$dir" 2 || { echo "Bail out! cluster_make"; exit 1; }
CTL=$SMIG_BUILD/tests/harness/smig-ctl
fakepeer=$SMIG_BUILD/tests/harness/smig-fakepeer

plan 6

smigd_start "$dir" h1 && smigd_start "$dir" h2
ok $? "h1 and h2 start"

# forged TAG: text that would, written raw, put a line of its own in the log
# (a command name is at most 32 characters: the forged line is short)
forged() { printf 'x\nevent=%s action=none' "$1"; }
# clean HOST TAG: no line of HOST's log begins with the forged text, and the
# text is there, escaped, inside a line smigd wrote
clean() {
	local log=$dir/$1.log
	! grep -q "^event=$2" "$log" && grep -q "x\\\\nevent=$2 action=none" "$log"
}

# --- a local user's request ---------------------------------------------------------------
"$CTL" "$dir/h1.sock" "$(jq -nc --arg c "$(forged FORGED_CMD)" '{id: 1, cmd: $c}')" >"$dir/cmd.out"
grep -q '"ok": *false' "$dir/cmd.out"
ok $? "a request for an unknown command with a newline in its name is refused: $(head -c 120 "$dir/cmd.out")"
wait_for 5 clean h1 FORGED_CMD
ok $? "h1's log shows the command name escaped, no forged line ($(grep -m1 'FORGED_CMD' "$dir/h1.log" | cut -c1-140))"

# --- a spec's name, from the CLI ----------------------------------------------------------
printf '{"name": %s, "memory_mib": 32, %s}\n' "$(jq -n --arg n "$(forged FORGED_SPEC)" '$n')" \
	"$(guest_boot smig-guest.elf x)" >"$dir/bad.json"
"$CTL" "$dir/h1.sock" "$(jq -nc --slurpfile s "$dir/bad.json" '{id: 2, cmd: "vm.define", args: {spec: $s[0]}}')" >"$dir/define.out"
grep -q '"ok": *false' "$dir/define.out"
ok $? "a spec whose name holds a newline is refused: $(head -c 160 "$dir/define.out")"

# --- a peer's PREPARE ----------------------------------------------------------------------
# (the VM name's alphabet is checked: the forged text rides in a key the
# spec does not know, which the refusal names)
jq -c --arg k "$(forged FORGED_PEER)" '.name = "web" | .[$k] = 1' "$dir/bad.json" >"$dir/peer.json"
"$fakepeer" prepare --ca "$dir/pki/ca.crt" --cert "$dir/pki/h1.crt" --key "$dir/pki/h1.key" \
	--name h1 --to "127.0.0.1:$(cat "$dir/h2.port")" --ivt "$dir/ivt.json" \
	--spec "$dir/peer.json" >"$dir/prepare.out" 2>&1
grep -q "refused" "$dir/prepare.out"
ok $? "h2 refuses the peer's PREPARE: $(head -c 160 "$dir/prepare.out")"
wait_for 5 clean h2 FORGED_PEER
ok $? "h2's log shows the peer's key escaped, no forged line ($(grep -m1 'FORGED_PEER' "$dir/h2.log" | cut -c1-160))"

done_testing
