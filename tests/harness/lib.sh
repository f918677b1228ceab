# lib.sh - shell helpers for tests and the demo: make a loopback cluster of
# smigd hosts (PKI, host table, one config per host), start and stop them.
# Source it; it defines functions only.

SMIG_ROOT=${SMIG_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
SMIG_BUILD=${SMIG_BUILD:-$SMIG_ROOT/build}
SMIG=$SMIG_BUILD/src/smig/smig
SMIGD=$SMIG_BUILD/src/smigd/smigd

# netns_test NAME: a test's cluster of network namespaces (tests/harness/cluster):
# $cluster is the harness, SMIG_CLUSTER_DIR (exported) and $dir a fresh
# /tmp/smig-NAME.XXXXXX, and the cluster comes down when the test exits.
netns_test() {
	cluster=$SMIG_ROOT/tests/harness/cluster
	SMIG_CLUSTER_DIR=$(mktemp -d "/tmp/smig-$1.XXXXXX")
	export SMIG_CLUSTER_DIR
	dir=$SMIG_CLUSTER_DIR
	# SMIG_KEEP: the hosts' logs and the VMs' consoles outlive the run, in DIR.kept
	trap 'if [ -n "${SMIG_KEEP:-}" ]; then mkdir -p "$dir.kept" && cp -r "$dir"/*.log "$dir"/*.out \
		"$dir"/state-h*/consoles "$dir.kept/" 2>/dev/null; (cd "$dir" && cp --parents \
		state-h*/vms/*/*.log "$dir.kept/" 2>/dev/null); fi; rm -f "/tmp/smig-ports.$$"
		"$cluster" down >/dev/null 2>&1' EXIT
}

# free_port [N]: prints a TCP port P such that nothing listens on P..P+N-1
# (N defaults to 1) and no earlier free_port of this test handed any of them
# out: a port chosen for a daemon that is not yet started stays its own
# (each choice is noted in /tmp/smig-ports.PID of the test's shell).
free_port() {
	local n=${1:-1} p i ok taken=/tmp/smig-ports.$$
	while :; do
		p=$((10000 + RANDOM % 20000)) # below the ephemeral range (32768+)
		ok=1
		for ((i = p; i < p + n; i++)); do
			if grep -qx "$i" "$taken" 2>/dev/null || ss -Htln "sport = :$i" 2>/dev/null | grep -q .; then
				ok=0
				break
			fi
		done
		[ $ok = 1 ] || continue
		seq "$p" $((p + n - 1)) >>"$taken"
		echo "$p"
		return
	done
}

# images_pool DIR: the test guests as volumes of DIR/images, the pool every
# test host calls "images" (hard links where the file system allows, else
# copies: a volume must be a regular file, never a symlink).
images_pool() {
	local dir=$1 f
	mkdir -p "$dir/images" "$dir/shared" && chmod 0700 "$dir/images" "$dir/shared"
	for f in "$SMIG_BUILD/guest/smig-guest.elf" "$SMIG_BUILD/guest/linux/vmlinuz" \
		"$SMIG_BUILD/guest/linux/initrd.img"; do
		[ -f "$f" ] || continue
		ln -f "$f" "$dir/images/" 2>/dev/null || cp -f "$f" "$dir/images/" || return 1
	done
}

# guest_boot VOLUME CMDLINE: the spec's boot member for a guest of the images pool.
guest_boot() {
	printf '"boot": {"kernel": {"pool": "images", "volume": "%s"}, "cmdline": "%s"}' "$1" "$2"
}

# cluster_make DIR N [PREFIX]: hosts h1..hN, each with its own certificate,
# config DIR/hK.json, policy DIR/hK.policy.json (root is admin; every host
# of the cluster may push VMs), a stand-in firmware file DIR/hK.fw that
# each host measures, the integrity validation table DIR/ivt.json with
# every host's current measurement as its golden set (all trusted), and
# state, and the pools "images" (DIR/images: the test guests), "shared"
# (DIR/shared, shared by all hosts) and "local" (DIR/local-hK, this host's
# own), and the firmware "ovmf" (Debian's 4 MiB OVMF). SMIG_NETWORKS (JSON) is every host's networks catalogue (default
# none). SMIG_ATTEST_S sets the attestation interval (default 10 s).
# Host K's VMs get uids from 16777216 + K * 4096 (a range of 4096), so
# hosts on one machine never share a VM uid.
# Loopback hosts share 127.0.0.1, so the IDS never bans it there (a ban
# would cut the whole cluster off); with PREFIX each host has its own
# address and the IDS runs as configured. With
# SMIG_HOST_TPM=1 each host also gets a swtpm as its host TPM (state in
# DIR/tpm-hK, TCP port in DIR/hK.tpmport), PCR 16 extended as measured boot
# would, and quotes over PCR 16 in its evidence. Without PREFIX all listen on 127.0.0.1 on
# free ports; with PREFIX (e.g. 10.77.0.) host K listens on PREFIX.K:7450.
cluster_make() {
	local dir=$1 n=$2 prefix=${3:-} addr i port fp nets=${SMIG_NETWORKS:-}
	[ -n "$nets" ] || nets='{}'
	mkdir -p "$dir"
	# the VMs' processes run as uids of their own and pass through DIR to their directories
	chmod 0711 "$dir"
	images_pool "$dir" || return 1
	"$SMIG" pki init "$dir/pki" >/dev/null || return 1
	{
		echo '{"hosts": ['
		for i in $(seq 1 "$n"); do
			if [ -n "$prefix" ]; then
				addr=$prefix$i
				port=7450
			else
				addr=127.0.0.1
				port=$(free_port)
			fi
			"$SMIG" pki issue "$dir/pki" "h$i" --ip "$addr" >/dev/null || return 1
			echo "$port" >"$dir/h$i.port"
			echo "$addr" >"$dir/h$i.addr"
			fp=$("$SMIG" pki fingerprint "$dir/pki/h$i.crt")
			printf '  {"name": "h%d", "address": "%s:%d", "fingerprint": "%s"}%s\n' \
				"$i" "$addr" "$port" "$fp" "$([ "$i" -lt "$n" ] && echo ,)"
		done
		echo ']}'
	} >"$dir/hosts.json"
	for i in $(seq 1 "$n"); do
		cat >"$dir/h$i.policy.json" <<JSON
{
  "roles": {"admin": ["*"], "migrate-in": ["vm.migrate"]},
  "bindings": [
    {"name": "root-is-admin", "users": ["root"], "role": "admin"},
    {"name": "cluster-peers", "peers": ["h*"], "role": "migrate-in"}
  ]
}
JSON
		cat >"$dir/h$i.json" <<JSON
{
  "host": "h$i",
  "listen": "$(cat "$dir/h$i.addr"):$(cat "$dir/h$i.port")",
  "control": {"socket": "h$i.sock"},
  "state_dir": "state-h$i",
  "tls": {"ca": "pki/ca.crt", "cert": "pki/h$i.crt", "key": "pki/h$i.key"},
  "hosts_file": "hosts.json",
  "policy": "h$i.policy.json",
  "firewall": {"never_ban": [$([ -z "$prefix" ] && echo '"127.0.0.1"')]},
  "attestation": {"ivt": "ivt.json", "interval_s": ${SMIG_ATTEST_S:-10},
                  "components": [{"name": "firmware", "path": "h$i.fw"}]},
  "log": {"level": "${SMIG_LOG_LEVEL:-info}"},
  "limits": {"handshake_timeout_ms": ${SMIG_HANDSHAKE_MS:-3000}, "stall_timeout_ms": ${SMIG_STALL_MS:-30000}, "guest_watch_ms": ${SMIG_GUEST_WATCH_MS:-2000}},
  "qemu": {"accel": "${SMIG_ACCEL:-tcg}"},$([ -n "${SMIG_STORE_JSON:-}" ] && printf '\n  "store": %s,' "$SMIG_STORE_JSON")
  "pools": {"images": {"path": "images"}, "shared": {"path": "shared", "shared": true},
            "local": {"path": "local-h$i"}},
  "networks": $nets,
  "firmware": {"ovmf": {"code": "/usr/share/OVMF/OVMF_CODE_4M.fd", "vars": "/usr/share/OVMF/OVMF_VARS_4M.fd"}},
  "confinement": {"vm_uid_first": $((16777216 + i * 4096)), "vm_uid_count": 4096}
}
JSON
		mkdir -p "$dir/local-h$i" && chmod 0700 "$dir/local-h$i"
		head -c 4096 /dev/urandom >"$dir/h$i.fw"
		if [ -n "${SMIG_HOST_TPM:-}" ]; then
			host_tpm "$dir" "h$i" || return 1
		fi
	done
	ivt_make "$dir" "$n"
}

# host_tpm DIR HOST: a swtpm as HOST's TPM, PCR 16 extended with a stand-in
# boot measurement, and HOST's config pointed at it.
host_tpm() {
	local dir=$1 h=$2 port
	port=$(free_port 2) # the TPM's port, and its control port after it
	mkdir -p "$dir/tpm-$h"
	swtpm socket --tpm2 --tpmstate dir="$dir/tpm-$h" --daemon \
		--server type=tcp,port="$port",bindaddr=127.0.0.1 \
		--ctrl type=tcp,port=$((port + 1)),bindaddr=127.0.0.1 \
		--flags not-need-init,startup-clear --pid file="$dir/tpm-$h/pid" || return 1
	echo "$port" >"$dir/$h.tpmport"
	wait_for 5 tpm2_pcrextend -T "swtpm:host=127.0.0.1,port=$port" \
		"16:sha256=$(echo "boot $h" | sha256sum | cut -d' ' -f1)" || return 1
	jq --arg t "swtpm:host=127.0.0.1,port=$port" '.attestation.tpm = {tcti: $t, pcrs: [16]}' \
		"$dir/$h.json" >"$dir/$h.json.tmp" && mv "$dir/$h.json.tmp" "$dir/$h.json"
}

# host_ek_cert DIR HOST CA [DER]: writes into HOST's swtpm (host_tpm; not
# held by a running smigd) an EK certificate as a TPM maker would, at NV
# 0x01c0000a: for the TPM's own ECC P-256 EK (template L-2), issued by
# swtpm's local CA whose root and intermediate live in DIR/CA (made on first
# use; DIR/CA/roots.pem holds both) - or the given DER file as it is.
host_ek_cert() {
	local dir=$1 h=$2 ca=$3 der=${4:-} x y
	local t="swtpm:host=127.0.0.1,port=$(cat "$dir/$h.tpmport")" work=$dir/ek-$h
	mkdir -p "$dir/$ca" "$work"
	if [ -z "$der" ]; then
		printf 'statedir = %s\nsigningkey = %s/signkey.pem\nissuercert = %s/issuercert.pem\ncertserial = %s/certserial\n' \
			"$dir/$ca" "$dir/$ca" "$dir/$ca" "$dir/$ca" >"$dir/$ca/localca.conf"
		printf -- '--platform-manufacturer Debian\n--platform-version 2.1\n--platform-model QEMU\n' >"$dir/$ca/localca.options"
		tpm2_createek -T "$t" -c "$work/ek.ctx" -G ecc -u "$work/ek.tpm2b" -f tss >/dev/null &&
			tpm2_flushcontext -T "$t" -t || return 1
		x=$(tpm2_print -t TPM2B_PUBLIC "$work/ek.tpm2b" | awk '$1 == "x:" {print $2}')
		y=$(tpm2_print -t TPM2B_PUBLIC "$work/ek.tpm2b" | awk '$1 == "y:" {print $2}')
		swtpm_localca --type ek --ek "x=$x,y=$y,id=secp256r1" --dir "$work" --tpm2 \
			--tpm-spec-family 2.0 --tpm-spec-level 0 --tpm-spec-revision 164 \
			--tpm-manufacturer id:00001014 --tpm-model swtpm --tpm-version id:20191023 \
			--configfile "$dir/$ca/localca.conf" --optsfile "$dir/$ca/localca.options" \
			--logfile "$work/localca.log" || return 1
		der=$work/ek.cert
		cat "$dir/$ca/swtpm-localca-rootca-cert.pem" "$dir/$ca/issuercert.pem" >"$dir/$ca/roots.pem"
	fi
	tpm2_nvundefine -T "$t" -C p 0x01c0000a >/dev/null 2>&1
	tpm2_nvdefine -T "$t" -C p -s "$(stat -c %s "$der")" \
		-a "ppwrite|writedefine|ppread|ownerread|authread|no_da|platformcreate" 0x01c0000a >/dev/null &&
		tpm2_nvwrite -T "$t" -C p -i "$der" 0x01c0000a
}

# ivt_make DIR N: the IVT of hosts h1..hN from what each measures now (a
# host's TPM enrolled as smigd --measure proved it: its AK opened a
# credential made for its EK).
ivt_make() {
	local dir=$1 n=$2 i
	for i in $(seq 1 "$n"); do
		"$SMIGD" --config "$dir/h$i.json" --measure 2>/dev/null || return 1
	done | jq -s '{hosts: (map({(.host): ({fingerprint, trust: "trusted",
		golden: [{name: "cluster-up", components}]} + if .tpm then {tpm: {ek: .tpm.ek, ak: .tpm.ak}} else {} end)}) | add)}' \
		>"$dir/ivt.json.tmp" &&
		mv "$dir/ivt.json.tmp" "$dir/ivt.json"
}

# jqe ARGS...: jq -e that also fails when jq produced nothing (jq 1.6 exits
# 0 on empty input, so a failed smig call piped into jq -e would pass).
jqe() {
	local out
	out=$(jq -e "$@") || return 1
	[ -n "$out" ] && [ "$out" != false ] && [ "$out" != null ]
}

# wait_for SECONDS CMD...: retries CMD every 50 ms until it succeeds.
wait_for() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@" >/dev/null 2>&1; do
		[ "$SECONDS" -ge "$deadline" ] && return 1
		sleep 0.05
	done
}

# smigd_start DIR HOST: starts smigd in the foreground (background job),
# logging to DIR/HOST.log, and waits for its control socket. If the
# cluster's network namespace of HOST exists, smigd runs inside it: only
# its network namespace (nsenter), not ip netns exec's mount namespace,
# whose fresh /sys has no cgroup file systems for the VMs' cgroups.
smigd_start() {
	local dir=$1 h=$2
	local ns=()
	[ -s "$dir/netns" ] && ip netns list 2>/dev/null | grep -qw "$(cat "$dir/netns")-$h" &&
		ns=(nsenter "--net=/run/netns/$(cat "$dir/netns")-$h")
	"${ns[@]}" "$SMIGD" --config "$dir/$h.json" --foreground >>"$dir/$h.log" 2>&1 &
	echo $! >"$dir/$h.pid"
	disown $! # a daemon killed by a test is not news for the test's output
	wait_for 10 "$SMIG" --socket "$dir/$h.sock" status
}

# alive PID: the process runs (a zombie does not: its parent, init once the
# harness let it go, may take seconds to reap it)
alive() {
	local st
	st=$(cut -d')' -f2 "/proc/$1/stat" 2>/dev/null) || return 1
	[ "${st:1:1}" != Z ]
}

# smigd_stop DIR HOST: SIGTERM, then wait for the process to go.
smigd_stop() {
	local dir=$1 h=$2 pid
	pid=$(cat "$dir/$h.pid" 2>/dev/null) || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 1 100); do
		alive "$pid" || break
		sleep 0.05
	done
	kill -KILL "$pid" 2>/dev/null || true
	rm -f "$dir/$h.pid"
}

# cluster_stop DIR: stops every host started in DIR.
cluster_stop() {
	local dir=$1 f
	for f in "$dir"/*.pid; do
		[ -e "$f" ] || continue
		smigd_stop "$dir" "$(basename "$f" .pid)"
	done
}

# cgroups_clean: removes the test hosts' VM cgroups nothing runs in any more
# (a killed smigd leaves them behind); rmdir never takes one in use.
cgroups_clean() {
	find /sys/fs/cgroup -mindepth 2 -maxdepth 9 -depth -type d \( -name 'vm-*' -path '*/smig.h*' -o \
		-name 'smig.h*' \) -exec rmdir {} + 2>/dev/null
	return 0
}

# cluster_clean DIR: stops every host and VM made in DIR and removes DIR,
# unless SMIG_KEEP is set (to look at the logs afterwards).
cluster_clean() {
	local dir=$1
	cluster_stop "$dir"
	pkill -KILL -f "$dir/" 2>/dev/null
	pkill -KILL -f "tpmstate dir=$dir" 2>/dev/null
	cgroups_clean
	rm -f "/tmp/smig-ports.$$"
	[ -n "${SMIG_KEEP:-}" ] || rm -rf "$dir"
}

# vm_where DIR NAME: the hosts of DIR (h1, h2, ...) on which VM NAME is
# running, space-separated
vm_where() {
	local dir=$1 name=$2 s h out=""
	for s in "$dir"/h*.sock; do
		[ -S "$s" ] || continue
		h=$(basename "$s" .sock)
		hsmig "$dir" "$h" --json vm list 2>/dev/null |
			jqe --arg n "$name" '.vms[] | select(.name == $n and .state == "running")' \
				>/dev/null && out="$out $h"
	done
	echo "${out# }"
}

# hsmig DIR HOST ARGS...: runs the smig CLI against HOST's daemon.
hsmig() {
	local dir=$1 h=$2
	shift 2
	"$SMIG" --socket "$dir/$h.sock" "$@"
}

# a real etcd cluster for the fleet store's tests
. "$(dirname "${BASH_SOURCE[0]}")/etcd.sh"
