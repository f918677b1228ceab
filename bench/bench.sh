#!/usr/bin/env bash
# make bench: the same test guest migrated by (a) QEMU's plain TCP
# migration, (b) QEMU's native TLS migration (tls-creds-x509) and (c) smig,
# alternating a, b, c, a, b, c ... on four cases; then the same with N
# parallel channels (QEMU multifd: plain-mfN, tls-mfN, smig-mfN, N = 2 and
# 4) on the cases of --mf-cases:
#   idle  a 400 MiB random-filled working set, nothing dirtied;
#   busy  a 128 MiB working set rewritten fast enough to need several passes;
#   vtpm  the demo guest: 64 MiB, dirtying, with a vTPM;
#   linux the Debian kernel with the memcheck init: 512 MiB, 192 MiB
#         rewritten at 20,000 pages/s, every page verified.
# Every variant starts the destination QEMU inside the measured time (smig
# does that on the destination host), asks for the same downtime limit and
# sets no bandwidth cap. After each run the guest on the destination must
# still beat and have found no bad page, or the run counts as failed.
# Then the encrypted channel alone against `openssl speed` on one core.
#
# usage: bench/bench.sh [--runs N] [--cases "idle busy vtpm"] [--out DIR]
#                       [--downtime-ms N] [--relay-mib N] [--mf-cases "idle busy"]
#                       [--channels "2 4"] [--quick]
# --quick: 3 runs, the busy case only, channels 2 only, a shorter relay test.
# smig's own runs also report the peak RSS of smigd's processes during the
# migration (VmHWM, reset before each run) and its CPU seconds per GiB moved.
# Writes DIR/results.jsonl (one line per run), DIR/relay.json,
# DIR/report.md (medians and ratios) and DIR/throughput.png.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export SMIG_BUILD=${SMIG_BUILD:-$root/build}
. "$root/tests/harness/lib.sh"
. "$root/tests/harness/qemu.sh"

runs=5
cases="idle busy vtpm linux"
mf_cases="idle busy"
channels="2 4"
out=$root/build/bench-results
downtime=50
relay_mib=4096
while [ $# -gt 0 ]; do
	case $1 in
	--runs) runs=$2 ;;
	--cases) cases=$2 ;;
	--mf-cases) mf_cases=$2 ;;
	--channels) channels=$2 ;;
	--out) out=$2 ;;
	--downtime-ms) downtime=$2 ;;
	--relay-mib) relay_mib=$2 ;;
	--quick) runs=3 cases=busy mf_cases=busy channels=2 relay_mib=1024; shift; continue ;;
	*) echo "usage: bench.sh [--runs N] [--cases LIST] [--mf-cases LIST] [--channels \"2 4\"] [--out DIR] [--downtime-ms N] [--relay-mib N] [--quick]" >&2
	   exit 2 ;;
	esac
	shift 2
done
BENCHQ=$SMIG_BUILD/bench/smig-bench-qemu
RELAY=$SMIG_BUILD/bench/smig-bench-relay
work=$(mktemp -d /tmp/smig-bench.XXXXXX)
chmod 0711 "$work" # smig's VMs run as uids of their own below the cluster in it
cl=$work/cluster
mkdir -p "$out"
: >"$out/results.jsonl"
hz=$(getconf CLK_TCK)

cleanup() {
	cluster_clean "$cl" 2>/dev/null
	pkill -KILL -f "$work/" 2>/dev/null
	[ -n "${SMIG_KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT

# case_spec CASE: "memory_mib|kernel command line|vtpm|linux": the
# freestanding test guest, or (linux) the Debian kernel booting the
# memcheck init (guest/linux), which verifies every page as the test guest does
case_spec() {
	case $1 in
	idle) echo "448|mem=400 seed=7 hb=250|false|" ;;
	busy) echo "160|mem=128 dirty=30000 seed=7 hb=250|false|" ;;
	vtpm) echo "96|mem=64 dirty=2000 seed=7 hb=100|true|" ;;
	linux) echo "512|console=ttyS0 quiet panic=-1 memcheck.mib=192 memcheck.rate=20000|false|linux" ;;
	*) echo "bench: unknown case $1" >&2; return 1 ;;
	esac
}
LINUX_KERNEL=$SMIG_BUILD/guest/linux/vmlinuz
LINUX_INITRD=$SMIG_BUILD/guest/linux/initrd.img

# ticks PID: CPU time (user + system) of PID in clock ticks, builtins only
ticks() {
	local l a
	read -r l 2>/dev/null <"/proc/$1/stat" || { echo 0; return; }
	read -r -a a <<<"${l##*) }"
	echo $((a[11] + a[12]))
}

# watch DIR "NAME=PIDFILE ...": every 50 ms keeps the last CPU ticks of
# each process in DIR/cpu.NAME (a process that exits keeps its last value),
# until DIR/stop exists. Pid files that appear late are picked up. Bash
# builtins only: the watcher must not compete with what it watches.
watch() {
	local d=$1 spec=$2 kv pid t nap
	exec {nap}<> <(:)
	while [ ! -e "$d/stop" ]; do
		for kv in $spec; do
			[ -s "${kv#*=}" ] || continue
			pid=$(<"${kv#*=}")
			t=$(ticks "$pid")
			[ "$t" -gt 0 ] && echo "$t" >"$d/cpu.${kv%%=*}"
		done
		read -r -t 0.05 -u "$nap"
	done
	exec {nap}<&-
}
now_us() { echo "${EPOCHREALTIME/./}"; }
cpu_s() { awk -v t="$(cat "$1" 2>/dev/null || echo 0)" -v b="${2:-0}" -v hz="$hz" \
	'BEGIN { printf "%.2f", (t - b) / hz }'; }

# jq: throughput measured alike for all three, stream bytes over the time
# from the end of set-up to the VM running on the destination
JQ_DEFS='def stream_mbps: if .bytes and .total_ms > .setup_ms then
	. + {stream_mbps: (.bytes * 8 / (.total_ms - .setup_ms) / 1000)} else . end;'

# the QEMU TLS baseline's credentials: a CA, a server and a client
# certificate (P-256), in the file names QEMU's tls-creds-x509 looks for
qemu_tls_pki() {
	local d=$work/qtls
	mkdir -p "$d/server" "$d/client"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
		-subj /CN=bench-ca -keyout "$d/ca.key" -out "$d/ca.pem" \
		-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2>/dev/null || return 1
	for role in server client; do
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$role" \
			-keyout "$d/$role/$role-key.pem" -out "$d/$role.csr" 2>/dev/null &&
			openssl x509 -req -in "$d/$role.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" \
				-CAcreateserial -days 2 -out "$d/$role/$role-cert.pem" -extfile <(
				printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=%sAuth\n' "$role"
				printf 'keyUsage=digitalSignature,keyEncipherment\n') 2>/dev/null || return 1
		cp "$d/ca.pem" "$d/$role/ca-cert.pem"
	done
}
# TLS 1.3 with AES-256-GCM, as smig's channel negotiates here
QEMU_TLS_PRIO="NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-256-GCM"

# guest_alive SERIAL_SRC SERIAL_DST: the guest carried on where it stopped
# (next heartbeat on the destination, no FAIL line, no errors counted; a
# Linux guest's console ends its lines with CR LF)
guest_alive() {
	local last first
	wait_for 10 grep -q '^HB ' "$2" || return 1
	sleep 1
	last=$(serial_last_hb "$1" | tr -d '\r')
	first=$(grep -a '^HB ' "$2" | head -1 | awk '{print $2}' | tr -d '\r')
	! grep -aq FAIL "$1" "$2" && [ "$first" -eq $((last + 1)) ] &&
		[ "$(grep -a '^HB ' "$2" | tail -1 | awk '{print $4}' | tr -d '\r')" = 0 ]
}

# record VARIANT CASE RUN GUEST_OK RESULT DIR QEMU_T0 [SMIGD1_T0 SMIGD2_T0
# WORKER1_T0 WORKER2_T0]: one line of results.jsonl: the variant's result
# with the guest's verdict, the CPU seconds the watcher saw in DIR since the
# given ticks (smigd, its warden and its worker together: none for QEMU's
# own migrations), and the throughput; DIR's samples for the plot
record() {
	local v=$1 c=$2 n=$3 ok=$4 res=$5 d=$6 s1=0 s2=0
	[ $# -gt 7 ] && s1=$(awk -v a="$(cpu_s "$d/cpu.h1" "$8")" -v b="$(cpu_s "$d/cpu.w1" "${10}")" \
		'BEGIN { printf "%.2f", a + b }') s2=$(awk -v a="$(cpu_s "$d/cpu.h2" "$9")" \
		-v b="$(cpu_s "$d/cpu.w2" "${11}")" 'BEGIN { printf "%.2f", a + b }')
	jq -c --arg v "$v" --arg c "$c" --argjson n "$n" --argjson ok "$ok" \
		--argjson qc "$(cpu_s "$d/cpu.src" "$7")" --argjson qd "$(cpu_s "$d/cpu.dst")" \
		--argjson s1 "$s1" --argjson s2 "$s2" \
		"$JQ_DEFS"'{case: $c, variant: $v, run: $n, guest_ok: $ok, qemu_cpu_s: ($qc + $qd),
		  qemu_src_cpu_s: $qc, qemu_dst_cpu_s: $qd, smigd_cpu_s: ($s1 + $s2),
		  smigd_src_cpu_s: $s1, smigd_dst_cpu_s: $s2} + . | stream_mbps' \
		<<<"$res" >>"$out/results.jsonl"
	cp "$d/samples" "$out/samples-$v-$c-$n" 2>/dev/null
}

# mf VARIANT: its parallel channels (plain-mf4: 4), 0 for one stream
mf() { case $1 in *-mf*) echo "${1##*-mf}" ;; *) echo 0 ;; esac; }

# run_qemu VARIANT CASE RUN: one of QEMU's own migrations
run_qemu() {
	local v=$1 c=$2 n=$3 mem args vtpm d src dst port t0 b res ok=true
	local linux
	IFS='|' read -r mem args vtpm linux <<<"$(case_spec "$c")"
	d=$work/$v-$c-$n src=$work/$v-$c-$n/src dst=$work/$v-$c-$n/dst
	mkdir -p "$d"
	local sx=() dx=() tx=()
	[ -n "$linux" ] && sx+=(--initrd="$LINUX_INITRD") && dx+=(--initrd="$LINUX_INITRD")
	[ "$vtpm" = true ] && sx+=(--vtpm) && dx+=(--vtpm)
	if [ "${v%-mf*}" = tls ]; then
		sx+=("--object=tls-creds-x509,id=tls0,dir=$work/qtls/client,endpoint=client,priority=$QEMU_TLS_PRIO")
		dx+=("--object=tls-creds-x509,id=tls0,dir=$work/qtls/server,endpoint=server,verify-peer=on,priority=$QEMU_TLS_PRIO")
		tx=(--tls-hostname 127.0.0.1)
	fi
	local kernel=$SMIG_GUEST
	[ -n "$linux" ] && kernel=$LINUX_KERNEL
	SMIG_GUEST=$kernel qemu_start "$src" "$mem" "$args" "${sx[@]}" || return 1
	wait_for 120 grep -aq '^HB 2 ' "$src/serial.log" || { qemu_stop "$src"; return 1; }
	port=$(free_port)
	b=$(ticks "$(cat "$src/qemu.pid")")
	t0=$(now_us)
	watch "$d" "src=$src/qemu.pid dst=$dst/qemu.pid" &
	SMIG_GUEST=$kernel qemu_start "$dst" "$mem" "$args" --incoming "${dx[@]}" &&
		res=$("$BENCHQ" --src "$src/qmp.sock" --dst "$dst/qmp.sock" --uri "tcp:127.0.0.1:$port" \
			"${tx[@]}" --downtime-ms "$downtime" --multifd "$(mf "$v")" \
			--samples "$d/samples" --t0-ns "${t0}000") ||
		{ res='{"status": "failed"}'; ok=false; }
	touch "$d/stop"
	wait
	[ "$ok" = true ] && { guest_alive "$src/serial.log" "$dst/serial.log" || ok=false; }
	record "$v" "$c" "$n" "$ok" "$res" "$d" "$b"
	qemu_stop "$src"
	qemu_stop "$dst"
}

smig_cluster() {
	SMIG_LOG_LEVEL=warn cluster_make "$cl" 2 >/dev/null && smigd_start "$cl" h1 && smigd_start "$cl" h2
}

# run_smig VARIANT CASE RUN: smig migrate h1 -> h2 (smig-mfN: with N channels)
run_smig() {
	local v=$1 c=$2 n=$3 mem args vtpm linux d name b1 b2 w1 w2 bq t0 t l b res ok=true ch rss boot
	IFS='|' read -r mem args vtpm linux <<<"$(case_spec "$c")"
	d=$work/$v-$c-$n name=b-$v-$c-$n ch=$(mf "$v")
	[ "$ch" -gt 0 ] || ch=1
	mkdir -p "$d"
	boot=$(guest_boot smig-guest.elf "$args")
	[ -n "$linux" ] && boot=$(printf '"boot": {"kernel": {"pool": "images", "volume": "vmlinuz"}, "initrd": {"pool": "images", "volume": "initrd.img"}, "cmdline": "%s"}' "$args")
	printf '{"name": "%s", "memory_mib": %s, %s, "vtpm": %s}\n' \
		"$name" "$mem" "$boot" "$vtpm" >"$d/spec.json"
	hsmig "$cl" h1 vm define "$d/spec.json" >/dev/null && hsmig "$cl" h1 vm start "$name" >/dev/null &&
		wait_for 120 grep -aq ' HB 2 ' "$cl/state-h1/consoles/$name.log" || return 1
	local vq1=$cl/state-h1/vms/$name/qemu.pid vq2=$cl/state-h2/vms/$name/qemu.pid
	# smigd is two processes: the warden (the pid the harness keeps) and its
	# worker (its child), which does TLS, peers and the relay
	pgrep -P "$(cat "$cl/h1.pid")" -x smigd-worker | head -1 >"$d/w1.pid"
	pgrep -P "$(cat "$cl/h2.pid")" -x smigd-worker | head -1 >"$d/w2.pid"
	[ -s "$d/w1.pid" ] && [ -s "$d/w2.pid" ] || { echo "bench: no smigd-worker under h1 or h2" >&2; return 1; }
	# peak RSS from here: VmHWM reset (5 > clear_refs) in the wardens and workers
	for pf in "$cl/h1.pid" "$cl/h2.pid" "$d/w1.pid" "$d/w2.pid"; do
		echo 5 >"/proc/$(cat "$pf")/clear_refs" 2>/dev/null
	done
	bq=$(ticks "$(cat "$vq1")") b1=$(ticks "$(cat "$cl/h1.pid")") b2=$(ticks "$(cat "$cl/h2.pid")")
	w1=$(ticks "$(cat "$d/w1.pid")") w2=$(ticks "$(cat "$d/w2.pid")")
	t0=$(now_us)
	watch "$d" "src=$vq1 dst=$vq2 h1=$cl/h1.pid h2=$cl/h2.pid w1=$d/w1.pid w2=$d/w2.pid" &
	# progress events (every 100 ms) carry the relayed bytes: the plot's samples
	hsmig "$cl" h1 --json migrate "$name" --to h2 --downtime-ms "$downtime" --channels "$ch" |
		while IFS= read -r l; do
			t=$(now_us)
			case $l in *'"progress"'*'"bytes":'*)
				b=${l#*\"bytes\":}
				b=${b# }
				echo "$(((t - t0) / 1000)) ${b%%[!0-9]*}" >>"$d/samples" ;;
			esac
			echo "$l" >>"$d/events"
		done
	res=$(tail -1 "$d/events")
	jq -e '.status == "completed"' <<<"$res" >/dev/null 2>&1 || { res='{"status": "failed"}'; ok=false; }
	# the largest of smigd's processes (warden or worker, either host), in MiB
	rss=0
	for pf in "$cl/h1.pid" "$cl/h2.pid" "$d/w1.pid" "$d/w2.pid"; do
		l=$(awk '/^VmHWM:/ { print int($2 / 1024) }' "/proc/$(cat "$pf")/status" 2>/dev/null)
		[ "${l:-0}" -gt "$rss" ] && rss=$l
	done
	res=$(jq -c --argjson r "$rss" '. + {smigd_peak_rss_mib: $r}' <<<"$res")
	touch "$d/stop"
	wait
	if [ "$ok" = true ]; then
		sleep 1
		"$root/tests/harness/guest-check" "$name" "$([ "$vtpm" = true ] && echo --vtpm)" \
			"$cl/state-h1" "$cl/state-h2" >"$d/verdict" 2>&1 || ok=false
	fi
	record "$v" "$c" "$n" "$ok" "$res" "$d" "$bq" "$b1" "$b2" "$w1" "$w2"
	hsmig "$cl" h2 vm stop "$name" >/dev/null 2>&1
	hsmig "$cl" h2 vm undefine "$name" >/dev/null 2>&1
}

echo "bench: $runs runs of plain, tls, smig alternating; cases: $cases; with channels $channels: $mf_cases; downtime limit $downtime ms"
qemu_tls_pki || { echo "bench: cannot make the QEMU TLS certificates" >&2; exit 1; }
smig_cluster || { echo "bench: cannot start the smig hosts" >&2; exit 1; }
for c in $(printf '%s\n' $cases $mf_cases | awk '!seen[$0]++'); do
	case_spec "$c" >/dev/null || exit 2
	vs=
	case " $cases " in *" $c "*) vs="plain tls smig" ;; esac
	case " $mf_cases " in *" $c "*) for k in $channels; do vs="$vs plain-mf$k tls-mf$k smig-mf$k"; done ;; esac
	for n in $(seq 1 "$runs"); do
		for v in $vs; do
			if [ "${v%-mf*}" = smig ]; then run_smig "$v" "$c" "$n"; else run_qemu "$v" "$c" "$n"; fi ||
				echo "{\"case\": \"$c\", \"variant\": \"$v\", \"run\": $n, \"status\": \"failed\", \"guest_ok\": false}" >>"$out/results.jsonl"
			tail -1 "$out/results.jsonl" | jq -r '"  \(.case) \(.variant) #\(.run): \(.status) total \(.total_ms // 0 | floor) ms, downtime \(.downtime_ms // 0 | floor) ms, set-up \(.setup_ms // 0 | floor) ms, \(.stream_mbps // 0 | floor) Mbit/s, guest \(if .guest_ok then "ok" else "FAILED" end)"'
		done
	done
done
cluster_clean "$cl"

echo "bench: relay alone vs openssl speed (one core)"
"$SMIG" pki init "$work/rpki" >/dev/null && "$SMIG" pki issue "$work/rpki" h1 >/dev/null &&
	"$SMIG" pki issue "$work/rpki" h2 >/dev/null
relay=$("$RELAY" "$work/rpki" "$relay_mib") || relay='{}'
# the same frames over the same kind of connection without TLS: what the
# kernel's TCP and the copies alone allow
ceiling=$("$RELAY" "$work/rpki" "$relay_mib" --plain | jq '.mbytes_per_s') || ceiling=0
aes=$(openssl speed -elapsed -seconds 3 -evp aes-256-gcm -bytes 16384 2>/dev/null |
	awk '/^AES-256-GCM/ { v = $2; sub(/k$/, "", v); printf "%.1f", v / 1000 }')
jq -c --argjson aes "${aes:-0}" --argjson plain "${ceiling:-0}" '. + {openssl_aes_256_gcm_mbytes_per_s: $aes,
	without_tls_mbytes_per_s: $plain,
	ratio: (if $aes > 0 then .mbytes_per_s / $aes else null end)}' <<<"$relay" >"$out/relay.json"
cat "$out/relay.json"

"$root/bench/report.sh" "$out" && echo "bench: $out/report.md, $out/throughput.png"
