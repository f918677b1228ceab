#!/usr/bin/env bash
# README's "Install on real hosts", as a new user would follow it: the
# package installed on two fresh Debian 12 hosts (trees of the package's
# dependencies, each run as a container's root in a network namespace of
# its own, joined by a link), a CA, each host's key made on the host and
# its certificate signed from a request, the configuration from the
# examples, the IVT, and a first migration of a VM between them, every
# command the installed smigd's and smig's.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$here/../harness/lib.sh"
. "$here/../harness/tap.sh"
. "$here/../harness/debtree.sh"

dir=$(mktemp -d /tmp/smig-install.XXXXXX)
ns=smigi$$
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
	sleep 1
	for i in 1 2; do
		ip netns pids "$ns-h$i" 2>/dev/null | xargs -r kill -KILL 2>/dev/null
		ip netns del "$ns-h$i" 2>/dev/null
	done
	cgroups_clean
	[ -n "${SMIG_KEEP:-}" ] || rm -rf "$dir"
}
trap cleanup EXIT
plan 8

deb=$(ls "$root"/build/deb/smig_*.deb 2>/dev/null | head -1)
if [ -z "$deb" ] || [ -n "$(find "$root/src" "$root/debian" -newer "$deb" -type f | head -1)" ]; then
	deb=$("$root/scripts/deb.sh" 2>"$dir/deb.err") || { tail "$dir/deb.err"; echo "Bail out! make deb failed"; exit 1; }
fi
base=$(deb_base "$deb") || { echo "Bail out! no base tree (mmdebstrap failed)"; exit 1; }

# two hosts: h1 10.78.0.1, h2 10.78.0.2
for i in 1 2; do
	deb_tree "$base" "$dir/t$i" && ip netns add "$ns-h$i" && ip -n "$ns-h$i" link set lo up ||
		{ echo "Bail out! cannot make host h$i"; exit 1; }
done
ip -n "$ns-h1" link add eth0 type veth peer name eth0 netns "$ns-h2" &&
	for i in 1 2; do
		ip -n "$ns-h$i" addr add "10.78.0.$i/24" dev eth0 && ip -n "$ns-h$i" link set eth0 up
	done || { echo "Bail out! no link between the hosts"; exit 1; }
on() { local i=$1; shift; tree_run "$dir/t$i" "$ns-h$i" "$@"; }
t() { echo "$dir/t$1"; }

# 1. the package on both hosts
for i in 1 2; do
	cp "$deb" "$(t $i)/tmp/" && on $i dpkg -i "/tmp/$(basename "$deb")" >"$dir/dpkg-h$i.log" 2>&1 || break
done
ok $? "the package installs on both hosts"

# 2. the CA (here on h1); each host's key made on the host, from a request
on 1 smig pki init /root/smig-ca >"$dir/pki.log" 2>&1 &&
	for i in 1 2; do
		on $i smig pki csr h$i --ip 10.78.0.$i >>"$dir/pki.log" 2>&1 &&
			cp "$(t $i)/etc/smig/pki/h$i.csr" "$(t 1)/root/" &&
			on 1 smig pki sign /root/smig-ca /root/h$i.csr --out /root/h$i.crt >>"$dir/pki.log" 2>&1 &&
			cp "$(t 1)/root/h$i.crt" "$(t 1)/root/smig-ca/ca.crt" "$(t $i)/etc/smig/pki/" || exit 1
	done
ok $? "CA made, each host's key made on the host and its request signed: $(grep -c fingerprint "$dir/pki.log") certificates; $(tail -1 "$dir/pki.log")"
[ ! -e "$(t 2)/etc/smig/pki/ca.key" ] && [ "$(stat -c %a "$(t 2)/etc/smig/pki/h2.key")" = 600 ] &&
	! grep -rlq 'PRIVATE KEY' "$(t 1)/root/h2.csr" "$(t 1)/root/h2.crt"
ok $? "h2's private key never left h2 (0600 there), and the CA's key is only on the CA's host"

# 3. configuration from the examples; the host table with both fingerprints
fp1=$(on 1 smig pki fingerprint /etc/smig/pki/h1.crt) && fp2=$(on 2 smig pki fingerprint /etc/smig/pki/h2.crt)
for i in 1 2; do
	c=$(t $i)/etc/smig
	jq -n --arg a "$fp1" --arg b "$fp2" '{hosts: [
		{name: "h1", address: "10.78.0.1:7450", fingerprint: $a},
		{name: "h2", address: "10.78.0.2:7450", fingerprint: $b}]}' >"$c/hosts.json"
	cp "$(t $i)/usr/share/doc/smig/examples/policy.json" "$c/"
	jq --arg h h$i --arg a 10.78.0.$i '.host = $h | .listen = "\($a):7450" |
		.tls.cert = "/etc/smig/pki/\($h).crt" | .tls.key = "/etc/smig/pki/\($h).key" |
		.attestation = {ivt: "/etc/smig/ivt.json"} | del(.networks) |
		.pools = {images: {path: "/var/lib/smig/images"}} | .capacity = {memory_mib: 1024, vcpus: 4}' \
		"$(t $i)/usr/share/doc/smig/examples/smigd.json" >"$c/smigd.json"
	mkdir -m 0750 -p "$(t $i)/var/lib/smig/images"
	cp "$SMIG_BUILD/guest/smig-guest.elf" "$(t $i)/var/lib/smig/images/"
done
out=$(for i in 1 2; do on $i smigd --check-config 2>&1 || exit 1; done)
ok $? "smigd --check-config passes on both hosts: $(grep -o 'configuration ok.*' <<<"$out" | head -1)"

# 4. smigd on both (systemctl enable --now smigd on a host with systemd)
for i in 1 2; do
	on $i smigd --foreground >"$dir/h$i.log" 2>&1 &
	pids+=($!)
done
wait_for 10 on 1 smig status && wait_for 10 on 2 smig status &&
	out=$(on 1 smig ping h2 2>&1)
ok $? "both serve; h1 authenticates h2: $out"

# 5. the IVT: each host's measurement a golden set, the file on both hosts
on 1 smig ivt enrol h1 >"$dir/ivt.log" 2>&1 && on 1 smig ivt enrol h2 >>"$dir/ivt.log" 2>&1 &&
	cp "$(t 1)/etc/smig/ivt.json" "$(t 2)/etc/smig/ivt.json" &&
	wait_for 30 bash -c "$(declare -f tree_run on); dir=$dir ns=$ns; on 1 smig --json hosts | grep -q '\"name\": *\"h2\"[^}]*\"verdict\": *\"unverified\"'"
ok $? "both hosts enrolled in the IVT (no host TPM: unverified); h1 admits h2: $(on 1 smig hosts | awk '$1 == "h2"' | tr -s ' ')"

# 6. a VM, and the first migration
cat >"$(t 1)/root/web1.json" <<JSON
{"name": "web1", "memory_mib": 64, "vcpus": 1, "security": {"min_trust": "unverified"},
 "boot": {"kernel": {"pool": "images", "volume": "smig-guest.elf"}, "cmdline": "mem=32 hb=100"}}
JSON
on 1 smig vm define /root/web1.json >/dev/null && on 1 smig vm start web1 >/dev/null &&
	out=$(on 1 smig migrate web1 --to h2 2>&1) &&
	[ "$(on 2 smig --json vm show web1 | jq -r .state)" = running ] &&
	! on 1 smig --json vm list | jq -e '.vms[] | select(.name == "web1" and .state == "running")' >/dev/null
ok $? "web1 moves from h1 to h2 and runs there only: $(head -1 <<<"$out")"

# 7. what an operator looks at afterwards: each host's audit log verifies
# and holds the migration, on the side it happened
for i in 1 2; do
	on $i smig --json audit verify >"$dir/verify$i.json" 2>&1 || break
	on $i smig --json audit show --last 50 >"$dir/audit$i.json" 2>&1 || break
done
jq -e '.records > 0' "$dir/verify1.json" >/dev/null && jq -e '.records > 0' "$dir/verify2.json" >/dev/null &&
	grep -q 'web1' "$dir/audit1.json" && grep -q 'web1' "$dir/audit2.json"
ok $? "both audit logs verify and name web1's move: $(jq -c '{records}' "$dir/verify1.json" 2>/dev/null) $(jq -c '{records}' "$dir/verify2.json" 2>/dev/null)"
