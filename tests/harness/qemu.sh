# qemu.sh - start the test guest under plain QEMU (no smigd) and talk QMP
# to it from shell. Used by the guest's own tests and by the benchmarks'
# QEMU-native baselines. Source lib.sh first.

SMIG_GUEST=${SMIG_GUEST:-$SMIG_BUILD/guest/smig-guest.elf}

# SMIG_QEMU_ACCEL picks the accelerator (default single-threaded TCG, as
# smigd runs it: on the project's machines /dev/kvm exists but runs this guest
# far slower than TCG, and multi-threaded TCG can miss dirty pages). Under
# TCG the guest gets 8 KiB less than MEM_MIB, as smigd gives it: QEMU 7.2's
# dirty-bitmap sync loses writes for RAM sizes that are multiples of 256 KiB
# (src/lib/qemu_argv.c, bench/tcg-repro.sh), so the baselines would lose
# writes that smig's runs cannot.

# swtpm_start DIR: a TPM 2.0 emulator with its control socket DIR/swtpm.sock.
swtpm_start() {
	local d=$1
	mkdir -p "$d/tpm"
	swtpm socket --tpm2 --tpmstate "dir=$d/tpm" --ctrl "type=unixio,path=$d/swtpm.sock" \
		--pid "file=$d/swtpm.pid" --log "file=$d/swtpm.log" --daemon ||
		return 1
	wait_for 5 test -S "$d/swtpm.sock"
}

# qemu_start DIR MEM_MIB "GUEST ARGS" [--incoming] [--vtpm] [--object=SPEC]...
# [--initrd=PATH]: QEMU with QMP on DIR/qmp.sock and the serial console in
# DIR/serial.log; each --object=SPEC becomes -object SPEC (the TLS
# baseline's credentials); the kernel is $SMIG_GUEST.
qemu_start() {
	local d=$1 mem=$2 append=$3
	shift 3
	local extra=()
	mkdir -p "$d"
	for a in "$@"; do
		case $a in
		--incoming) extra+=(-incoming defer) ;;
		--object=*) extra+=(-object "${a#--object=}") ;;
		--initrd=*) extra+=(-initrd "${a#--initrd=}") ;;
		--vtpm)
			swtpm_start "$d" || return 1
			extra+=(-chardev "socket,id=chrtpm,path=$d/swtpm.sock"
				-tpmdev emulator,id=tpm0,chardev=chrtpm -device tpm-tis,tpmdev=tpm0)
			;;
		esac
	done
	local accel=${SMIG_QEMU_ACCEL:-tcg,thread=single,tb-size=128} m=$mem
	case $accel in tcg*) m="$((mem * 1024 - 8))k" ;; esac
	qemu-system-x86_64 -accel "$accel" -m "$m" -nodefaults -display none \
		-kernel "$SMIG_GUEST" -append "$append" -serial "file:$d/serial.log" \
		-qmp "unix:$d/qmp.sock,server=on,wait=off" -pidfile "$d/qemu.pid" -daemonize \
		"${extra[@]}" >"$d/qemu.log" 2>&1 || return 1
	wait_for 5 test -S "$d/qmp.sock"
}

# qmp DIR JSON...: runs QMP commands (after capability negotiation); prints
# the replies, one per line, events left out.
qmp() {
	local d=$1
	shift
	{
		echo '{"execute":"qmp_capabilities"}'
		printf '%s\n' "$@"
		sleep 0.2
	} | socat -t 2 - "UNIX-CONNECT:$d/qmp.sock" | grep -v '"event"' | tail -n "$#"
}

# qemu_stop DIR: quit QEMU and its swtpm.
qemu_stop() {
	local d=$1 p
	for p in qemu swtpm; do
		[ -f "$d/$p.pid" ] || continue
		kill "$(cat "$d/$p.pid" 2>/dev/null)" 2>/dev/null || true
		rm -f "$d/$p.pid"
	done
}

# serial_last_hb FILE: the counter of the last heartbeat line in FILE.
serial_last_hb() {
	grep -a '^HB ' "$1" | tail -1 | awk '{print $2}'
}
