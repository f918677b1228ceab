#!/usr/bin/env bash
# matrix.sh [--steps "S..."] [--faults "F..."] [--out DIR]: the fault matrix
# (make faults). For every step of a migration h1 -> h2 (a stop point: the
# smigd that logs the step's event stops there) and every fault, a fresh
# test guest with a vTPM (it verifies every page of its working set) is
# migrated, the fault is injected at that step, the stopped smigd is
# continued (or restarted, when the fault killed it), and the cell records
# where the VM runs afterwards and whether the guest's own checks are
# clean. The invariant: exactly one running copy, or exactly one paused copy
# whose `smig vm show` names the command that resolves it; never two, never
# none, except where the fault killed the only copy's QEMU (expected lost).
# Prints TAP (a cell that breaks the invariant is "not ok") and writes
# DIR/matrix.md (default build/faults).
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../harness/lib.sh"
. "$here/../harness/tap.sh"

# step name, stop point (event), host that stops there
steps_all="connect attest prepare stream final-pass commit-req ready commit commit-recv committed"
declare -A ev=([connect]=migration_start [attest]=peer_authenticated [prepare]=migration_incoming
	[stream]=migration_streaming [final-pass]=source_stopped [commit-req]=migration_commit_request
	[ready]=migration_ready [commit]=migration_commit_marked [commit-recv]=migration_commit_recorded
	[committed]=migration_committed)
declare -A at=([connect]=h1 [attest]=h1 [prepare]=h2 [stream]=h1 [final-pass]=h1 [commit-req]=h1
	[ready]=h2 [commit]=h1 [commit-recv]=h2 [committed]=h2)
faults_all="kill-src-smigd kill-dst-smigd kill-src-qemu kill-dst-qemu kill-src-swtpm link-down loss-30 delay-200 dst-disk-full clock-jump"
steps=$steps_all faults=$faults_all out=$SMIG_ROOT/build/faults
while [ $# -gt 0 ]; do
	case $1 in
	--steps) steps=$2; shift 2 ;;
	--faults) faults=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	*) echo "matrix.sh: unknown option $1" >&2; exit 2 ;;
	esac
done
mkdir -p "$out"
netns_test faults-matrix
export SMIG_STALL_MS=3000
"$cluster" up --hosts 2 >/dev/null || { echo "Bail out! cluster up"; exit 1; }
. "$here/../harness/faults.sh"

# the destination's state on a small file system of its own, to fill
smigd_stop "$dir" h2
mkdir -p "$dir/h2-state.orig"
cp -a "$dir/state-h2/." "$dir/h2-state.orig/"
mount -t tmpfs -o size=48m smig-faults "$dir/state-h2" && cp -a "$dir/h2-state.orig/." "$dir/state-h2/"
smigd_start "$dir" h2
# SMIG_KEEP: the hosts' logs and the guests' consoles outlive the run, in DIR.kept
trap '[ -n "${SMIG_KEEP:-}" ] && mkdir -p "$dir.kept" && cp -r "$dir"/*.log "$dir"/*.check \
	"$dir"/state-h*/consoles "$dir.kept/" 2>/dev/null; umount -l "$dir/state-h2" 2>/dev/null
	"$cluster" down >/dev/null 2>&1' EXIT

ncells=0
for s in $steps; do for f in $faults; do ncells=$((ncells + 1)); done; done
plan "$ncells"

# inject FAULT NAME: the fault, while the stop point's smigd is stopped
inject() {
	case $1 in
	kill-src-smigd) crash h1 ;;
	kill-dst-smigd) crash h2 ;;
	kill-src-qemu) [ -f "$dir/state-h1/vms/$2/qemu.pid" ] && kill -KILL "$(cat "$dir/state-h1/vms/$2/qemu.pid")" ;;
	kill-dst-qemu) [ -f "$dir/state-h2/vms/$2/qemu.pid" ] && kill -KILL "$(cat "$dir/state-h2/vms/$2/qemu.pid")" ;;
	kill-src-swtpm) [ -f "$dir/state-h1/vms/$2/swtpm.pid" ] && kill -KILL "$(cat "$dir/state-h1/vms/$2/swtpm.pid")" ;;
	link-down) "$cluster" link h1 down ;;
	loss-30)
		# no sch_netem in every kernel: 30 % of h1's packets dropped by nftables
		"$cluster" exec h1 nft -f - <<-'NFT'
			table inet smigfault {
				chain in { type filter hook input priority -10; numgen random mod 100 < 30 drop; }
				chain out { type filter hook output priority -10; numgen random mod 100 < 30 drop; }
			}
		NFT
		;;
	delay-200)
		# no sch_netem: what h1 sends arrives at h2 200 ms late. Queued on
		# h2's side: held in h1's own stack, the packets would count against
		# its sockets (TCP small queues) and throttle TCP far below a slow link.
		"$cluster" exec h2 "$SMIG_BUILD/tests/harness/smig-delay" 7 200 >"$dir/delay.log" 2>&1 &
		echo $! >"$dir/delay.pid"
		wait_for 5 grep -q queue "$dir/delay.log"
		"$cluster" exec h2 iptables -t mangle -A PREROUTING -s "$(cat "$dir/h1.addr")" \
			-j NFQUEUE --queue-num 7
		;;
	dst-disk-full) dd if=/dev/zero of="$dir/state-h2/fill" bs=1M 2>/dev/null ;;
	clock-jump) date -s "+1 hour" >/dev/null ;;
	esac
}
# heal FAULT: what comes back after the fault (a link, a daemon, free space)
heal() {
	case $1 in
	kill-src-smigd) smigd_start "$dir" h1 ;;
	kill-dst-smigd) smigd_start "$dir" h2 ;;
	link-down) sleep 6; "$cluster" link h1 up ;;
	loss-30) sleep 20; "$cluster" exec h1 nft delete table inet smigfault ;;
	delay-200)
		sleep 20
		"$cluster" exec h2 iptables -t mangle -F PREROUTING
		kill "$(cat "$dir/delay.pid")"
		;;
	dst-disk-full) sleep 6; rm -f "$dir/state-h2/fill" ;;
	clock-jump) sleep 6; date -s "-1 hour" >/dev/null ;;
	esac
}
# expected_lost STEP FAULT: the fault kills the only copy's QEMU
expected_lost() {
	case $2 in
	kill-src-qemu) case $1 in connect | attest | prepare | stream | final-pass) return 0 ;; esac ;;
	kill-dst-qemu) [ "$1" = committed ] && return 0 ;;
	esac
	return 1
}
# settled NAME: nothing about NAME is still migrating or resolving on any host
settled() {
	local h
	for h in h1 h2; do
		on "$h" --json vm show "$1" 2>/dev/null | jqe '.migration' >/dev/null && return 1
	done
	return 0
}

printf '| step (stop point) | %s |\n|---|' "$(echo "$faults" | sed 's/ / | /g')" >"$out/matrix.md"
for _ in $faults; do printf -- '---|' >>"$out/matrix.md"; done
echo >>"$out/matrix.md"
declare -A count=([once]=0 [once-vtpm-lost]=0 [paused-once]=0 [lost]=0 [lost-expected]=0 [twice]=0 [dirty]=0)
i=0
for s in $steps; do
	row="| $s (\`${ev[$s]}\` on ${at[$s]}) |"
	for f in $faults; do
		i=$((i + 1))
		name=m$i
		stopper=${at[$s]}
		strike "$stopper" "${ev[$s]}" "$name" --mem 32 --dirty 2000 --vtpm
		if ! stopped "$stopper"; then
			ok 1 "$s x $f: the migration never reached ${ev[$s]}"
			row="$row never reached |"
			restart "$stopper"
			continue
		fi
		inject "$f" "$name"
		if [ -f "$dir/$stopper.pid" ]; then resume "$stopper"; fi
		heal "$f" &
		healer=$!
		timeout 120 tail --pid=$mig -f /dev/null
		wait $healer
		# the killed smigd comes back; then let every side finish what it started
		for h in h1 h2; do [ -f "$dir/$h.pid" ] || smigd_start "$dir" "$h"; done
		wait_for 60 settled "$name"
		sleep 3
		run=$(where "$name")
		copies=$(listed "$name")
		paused=$(grep -o 'h[12]:paused' <<<"$copies" | wc -l)
		verdict=
		if [ -z "$run" ] && [ "$paused" -eq 0 ]; then
			expected_lost "$s" "$f" && verdict=lost-expected || verdict=lost
		elif [ "$(wc -w <<<"$run")" -ge 2 ] || { [ -n "$run" ] && [ "$paused" -gt 0 ]; }; then
			verdict=twice
		elif [ -z "$run" ]; then
			h=$(grep -o 'h[12]:paused' <<<"$copies" | head -1 | cut -d: -f1)
			on "$h" --json vm show "$name" | jqe '.resolve | length > 0' >/dev/null &&
				verdict=paused-once || verdict=lost
		else
			beating "$name" "$run"
			# a killed swtpm takes the running guest's TPM with it, migration or not
			vt=--vtpm
			[ "$f" = kill-src-swtpm ] && vt=
			if "$cluster" check "$name" $vt >"$dir/$name.check" 2>&1; then
				verdict=once
			else
				verdict=dirty
			fi
			# the guest's TPM failing after its swtpm was killed is the fault's doing:
			# its memory checks must still be clean
			if [ -z "$vt" ] && grep -q ' errors=0 ' "$dir/$name.check" &&
				! cat "$dir"/state-h*/consoles/"$name".log | grep ' FAIL ' | grep -qv ' FAIL vtpm'; then
				verdict=once-vtpm-lost
			fi
		fi
		count[$verdict]=$((count[$verdict] + 1))
		case $verdict in
		once | once-vtpm-lost | paused-once | lost-expected) ok 0 "$s x $f: $verdict ${run:+on $run} ($copies)" ;;
		*) ok 1 "$s x $f: $verdict ($copies) $(head -c 160 "$dir/$name.check" 2>/dev/null)" ;;
		esac
		row="$row $verdict${run:+ ($run)} |"
		# clean slate for the next cell
		for h in h1 h2; do
			on "$h" vm stop "$name" >/dev/null 2>&1
			on "$h" vm undefine "$name" >/dev/null 2>&1
		done
		restart h1
		restart h2
	done
	echo "$row" >>"$out/matrix.md"
done
{
	echo
	echo "cells: $ncells; running once: $((count[once] + count[once-vtpm-lost])) (${count[once-vtpm-lost]} of them with the vTPM the fault killed);" \
		"paused once with a resolution: ${count[paused-once]};" \
		"lost where the fault killed the only copy: ${count[lost-expected]}; lost otherwise: ${count[lost]};" \
		"duplicated: ${count[twice]}; running once but the guest's checks failed: ${count[dirty]}"
} >>"$out/matrix.md"
diag "$(tail -1 "$out/matrix.md")"
diag "table: $out/matrix.md"
done_testing
