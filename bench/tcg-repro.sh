#!/usr/bin/env bash
# tcg-repro.sh: QEMU alone, no smig process. Migrates a busy guest that
# verifies its own memory between two QEMUs on this host, started with the
# options smigd gives QEMU, and tells whether the guest survived. Used to
# find which QEMU configuration loses guest writes (docs/benchmarks.md,
# "Guest integrity under TCG").
#
#   bench/tcg-repro.sh [--runs N] [--cancels K] [--load none|hog|guest]
#                      [--accel SPEC] [--downtime-ms MS] [--guest linux|smig]
#                      [--opts LIST] [--mem MIB] [--smp N] [--out DIR]
#
# --cancels K   K outgoing migrations cancelled (migrate_cancel while
#               active) before the one that completes (default 0)
# --load        what else runs on the cores: nothing, a CPU hog per core,
#               or a second busy guest (default none)
# --accel       QEMU's -accel (default tcg,thread=single, as smigd had it)
# --stop-first  pause the source before the completing migration (a
#               stop-and-copy: no dirty tracking is involved)
# --auto-converge  QEMU's auto-converge capability (throttles the vCPU of a
#               guest that dirties memory faster than the link carries it)
# --opts        comma list of smigd's options to apply: sandbox (seccomp
#               -sandbox on,...), sock (serial on a socket chardev drained
#               by a reader, else -serial file:), S (-S on the source and
#               cont after start; the destination always waits for cont)
#               (default sandbox,sock,S)
# Each run prints one line "run I ... verdict OK|FAIL detail"; the last line
# is "runs N ok N failed N".
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build=${SMIG_BUILD:-$root/build}
runs=5 cancels=0 load=none smp=1 accel=tcg,thread=single downtime=300 guest=linux
opts=sandbox,sock,S mem=512 out= stopfirst=false autoconv=false
while [ $# -gt 0 ]; do
	case $1 in
	--runs) runs=$2; shift 2 ;;
	--cancels) cancels=$2; shift 2 ;;
	--load) load=$2; shift 2 ;;
	--accel) accel=$2; shift 2 ;;
	--downtime-ms) downtime=$2; shift 2 ;;
	--guest) guest=$2; shift 2 ;;
	--opts) opts=$2; shift 2 ;;
	--mem) mem=$2; shift 2 ;;
	--smp) smp=$2; shift 2 ;;
	--stop-first) stopfirst=true; shift ;;
	--auto-converge) autoconv=true; shift ;;
	--out) out=$2; shift 2 ;;
	*) echo "tcg-repro.sh: unknown argument $1 (see the header of $0)" >&2; exit 2 ;;
	esac
done
work=${out:-$(mktemp -d /tmp/smig-tcg-repro.XXXXXX)}
mkdir -p "$work"
has() { case ",$opts," in *",$1,"*) return 0 ;; esac; return 1; }

case $guest in
linux)
	kernel=(-kernel "$build/guest/linux/vmlinuz" -initrd "$build/guest/linux/initrd.img"
		-append "console=ttyS0 quiet panic=-1 panic_on_oops=1 memcheck.mib=192 memcheck.rate=20000")
	ready_re=' READY' ;;
smig)
	kernel=(-kernel "$build/guest/smig-guest.elf" -append "mem=192 dirty=20000")
	ready_re=' READY' ;;
*) echo "tcg-repro.sh: --guest linux|smig" >&2; exit 2 ;;
esac
for f in "${kernel[1]}"; do
	[ -f "$f" ] || { echo "tcg-repro.sh: $f missing; run make build" >&2; exit 2; }
done

pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	pkill -f "$work/" 2>/dev/null
	wait 2>/dev/null
}
trap cleanup EXIT

# qmp SOCK JSON...: the replies of the commands, one per line
qmp() {
	local s=$1
	shift
	{
		echo '{"execute":"qmp_capabilities"}'
		printf '%s\n' "$@"
		sleep 0.3
	} | socat -t 3 - "UNIX-CONNECT:$s" 2>/dev/null | grep -v '"event"' | tail -n "$#"
}

# start NAME [incoming]: one QEMU in $work/NAME; its console lines in
# NAME.serial, each prefixed with the host time in ms
start() {
	local d=$work/$1 a=()
	mkdir -p "$d"
	a=(-accel "$accel" -nodefaults -no-user-config -display none -m "$mem" -smp "$smp"
		-device pvpanic -action panic=pause
		-qmp "unix:$d/qmp.sock,server=on,wait=off" -pidfile "$d/pid")
	has sandbox && a+=(-sandbox on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny)
	if has sock; then
		a+=(-chardev "socket,id=ser0,path=$d/serial.sock,server=on,wait=off" -serial chardev:ser0)
	else
		a+=(-serial "file:$d/serial.raw")
	fi
	if [ "${2:-}" = incoming ]; then
		a+=(-S -incoming defer)
	elif has S; then
		a+=(-S)
	fi
	qemu-system-x86_64 "${a[@]}" "${kernel[@]}" >"$d/qemu.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 100); do [ -S "$d/qmp.sock" ] && break; sleep 0.05; done
	if has sock; then
		for _ in $(seq 100); do [ -S "$d/serial.sock" ] && break; sleep 0.05; done
		(socat -u "UNIX-CONNECT:$d/serial.sock" - 2>/dev/null |
			while IFS= read -r l; do printf '%s %s\n' "$(date +%s%3N)" "${l%$'\r'}"; done \
				>>"$work/$1.serial") >/dev/null 2>&1 &
		pids+=($!)
	else
		( tail -F "$d/serial.raw" 2>/dev/null |
			while IFS= read -r l; do printf '%s %s\n' "$(date +%s%3N)" "${l%$'\r'}"; done \
				>>"$work/$1.serial" ) >/dev/null 2>&1 &
		pids+=($!)
	fi
}

stop() {
	local d=$work/$1
	[ -f "$d/pid" ] && kill "$(cat "$d/pid")" 2>/dev/null
	rm -f "$d/pid"
}

mig_status() {
	qmp "$work/$1/qmp.sock" '{"execute":"query-migrate"}' | sed -n 's/.*"status": *"\([a-z-]*\)".*/\1/p' | head -1
}

caps='{"execute":"migrate-set-capabilities","arguments":{"capabilities":[{"capability":"events","state":true}'
$autoconv && caps+=',{"capability":"auto-converge","state":true}'
caps+=']}}'

# one_migration SRC DST cancel|complete: 0 when it ended as asked
one_migration() {
	local s=$1 d=$2 how=$3 st i
	start "$d" incoming
	qmp "$work/$d/qmp.sock" "$caps" \
		"{\"execute\":\"migrate-incoming\",\"arguments\":{\"uri\":\"unix:$work/$d/mig.sock\"}}" >/dev/null
	for _ in $(seq 100); do [ -S "$work/$d/mig.sock" ] && break; sleep 0.05; done
	[ "$how" = complete ] && $stopfirst && qmp "$work/$s/qmp.sock" '{"execute":"stop"}' >/dev/null
	qmp "$work/$s/qmp.sock" "$caps" \
		"{\"execute\":\"migrate-set-parameters\",\"arguments\":{\"downtime-limit\":$downtime}}" \
		"{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"unix:$work/$d/mig.sock\"}}" >/dev/null
	if [ "$how" = cancel ]; then
		sleep "0.$((RANDOM % 9 + 1))"
		qmp "$work/$s/qmp.sock" '{"execute":"migrate_cancel"}' >/dev/null
		for i in $(seq 200); do
			st=$(mig_status "$s")
			[ "$st" = cancelled ] || [ "$st" = completed ] || [ "$st" = failed ] && break
			sleep 0.1
		done
		stop "$d"
		[ "$st" = cancelled ] || { echo "cancel ended $st"; [ "$st" = completed ] && return 3; return 1; }
		# smigd resumes nothing here: a cancelled precopy leaves the source running
		return 0
	fi
	for i in $(seq 1200); do
		st=$(mig_status "$s")
		[ "$st" = completed ] || [ "$st" = failed ] || [ "$st" = cancelled ] && break
		sleep 0.1
	done
	[ "$st" = completed ] || { echo "migration ended $st"; return 1; }
	for i in $(seq 100); do
		[ "$(mig_status "$d")" = completed ] && break
		sleep 0.1
	done
	qmp "$work/$d/qmp.sock" '{"execute":"cont"}' >/dev/null
	stop "$s"
	return 0
}

# the verdict of a guest's console over both hosts
verdict() {
	local f=$work/$1.serial
	awk '
	/BOOT/ { boots++ }
	/ FAIL / { fails++; if (!ff) ff = $0 }
	/(BUG:|Oops|Kernel panic|general protection|stack-protector|Call Trace)/ { kern++; if (!kf) kf = $0 }
	$2 == "HB" { if (hbs && $3 <= last) { order++; if (!fo) fo = last " then " $3 }
		last = $3; errors = $5; hbs++ }
	END {
		bad = ""
		if (boots != 1) bad = bad " boots=" boots
		if (order) bad = bad " heartbeat-backwards(" fo ")"
		if (fails) bad = bad " fail-lines=" fails
		if (errors) bad = bad " errors=" errors
		if (kern) bad = bad " kernel(" substr(kf, index(kf, " ") + 1, 60) ")"
		printf "%s hb=%d last=%d%s\n", bad == "" ? "OK" : "FAIL", hbs, last, bad
	}' "$f"
}

hog_pids=()
load_start() {
	case $load in
	none) ;;
	hog)
		for _ in 1 2; do (while :; do :; done) & hog_pids+=($!); done ;;
	guest)
		local a=(-accel "$accel" -nodefaults -display none -m "$mem" -serial null "${kernel[@]}")
		qemu-system-x86_64 "${a[@]}" >/dev/null 2>&1 &
		hog_pids+=($!) ;;
	esac
}
load_stop() {
	local p
	for p in "${hog_pids[@]}"; do kill "$p" 2>/dev/null; done
	hog_pids=()
}

ok=0 bad=0
for r in $(seq 1 "$runs"); do
	rm -rf "${work:?}"/g* "$work"/c[0-9]* "$work"/*.serial
	t0=$SECONDS
	load_start
	start g0
	has S && qmp "$work/g0/qmp.sock" '{"execute":"cont"}' >/dev/null
	for _ in $(seq 600); do grep -qa "$ready_re" "$work/g0.serial" 2>/dev/null && break; sleep 0.1; done
	sleep 3
	src=g0 n=0 detail=
	for c in $(seq 1 "$cancels"); do
		if ! detail=$(one_migration "$src" "c$c" cancel); then
			break
		fi
		sleep 1
	done
	if [ -z "$detail" ]; then
		n=$((n + 1))
		if detail=$(one_migration "$src" g1 complete); then
			sleep 10
			sort -s -k1,1n "$work/g0.serial" "$work/g1.serial" >"$work/gall.serial" 2>/dev/null
			detail=$(verdict gall)
		else
			detail="FAIL $detail"
		fi
	else
		detail="FAIL $detail"
	fi
	stop g0; stop g1
	load_stop
	case $detail in OK*) ok=$((ok + 1)) ;; *) bad=$((bad + 1)); mkdir -p "$work/failed"; cp "$work/gall.serial" "$work/failed/run-$r.serial" 2>/dev/null ;; esac
	echo "run $r guest=$guest accel=$accel load=$load cancels=$cancels downtime=$downtime opts=$opts smp=$smp stop_first=$stopfirst auto_converge=$autoconv mem=$mem secs=$((SECONDS - t0)) verdict $detail"
	pkill -f "$work/" 2>/dev/null
	sleep 1
done
echo "runs $runs ok $ok failed $bad"
