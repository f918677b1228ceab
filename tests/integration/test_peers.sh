#!/usr/bin/env bash
# Two smigd on loopback: they authenticate each other both ways, and every
# kind of bad peer is refused with a clear log line while the daemon keeps
# serving the next good one.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../harness/lib.sh"
. "$here/../harness/tap.sh"
fakepeer=$SMIG_BUILD/tests/harness/smig-fakepeer

dir=$(mktemp -d /tmp/smig-peers.XXXXXX)
trap 'cluster_clean "$dir"' EXIT
SMIG_HANDSHAKE_MS=800 cluster_make "$dir" 2 || { echo "Bail out! cluster_make"; exit 1; }
p2=$(cat "$dir/h2.port")

plan 22

smigd_start "$dir" h1
ok $? "h1 starts"
smigd_start "$dir" h2
ok $? "h2 starts"

out=$(hsmig "$dir" h1 --json ping h2)
ok $? "smig ping h2 from h1 succeeds"
[ "$(jq -r .tls_version <<<"$out")" = TLSv1.3 ] && [ "$(jq -r .cipher <<<"$out")" = TLS_AES_256_GCM_SHA384 ]
ok $? "the channel is TLS 1.3 with AES-256-GCM ($(jq -r .cipher <<<"$out"))"
hsmig "$dir" h2 ping h1 >/dev/null
ok $? "smig ping h1 from h2 succeeds"

# log_has HOST REGEX: waits up to 3 s for a line in HOST's log.
log_has() { wait_for 3 grep -qE "$2" "$dir/$1.log"; }

# s_client CERT_DIR NAME [extra openssl args]: a TLS client with a chosen identity.
s_client() {
	local cdir=$1 name=$2
	shift 2
	local id=()
	[ -n "$name" ] && id=(-cert "$cdir/$name.crt" -key "$cdir/$name.key")
	timeout 5 openssl s_client -connect "127.0.0.1:$p2" "${id[@]}" -CAfile "$dir/pki/ca.crt" \
		-quiet -no_ign_eof "$@" </dev/null >/dev/null 2>&1
}

"$SMIG" pki init "$dir/other" >/dev/null && "$SMIG" pki issue "$dir/other" evil >/dev/null
s_client "$dir/other" evil -tls1_3
log_has h2 'peer_refused .*certificate is not signed by this cluster.s CA \(tls.ca\)'
ok $? "a certificate from another CA is refused"

s_client "" "" -tls1_3
log_has h2 'peer_refused .*peer did not return a certificate'
ok $? "a client without a certificate is refused"

"$SMIG" pki issue "$dir/pki" rogue --ip 127.0.0.1 >/dev/null
s_client "$dir/pki" rogue -tls1_3
log_has h2 'peer_refused .*sha256:[0-9a-f]+ is not in the host table'
ok $? "a valid cluster certificate not in the host table is refused"

# an expired certificate, made with openssl from the cluster CA
openssl req -new -newkey ed25519 -nodes -keyout "$dir/old.key" -subj /CN=old \
	-out "$dir/old.csr" 2>/dev/null
printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n' >"$dir/old.ext"
openssl x509 -req -in "$dir/old.csr" -CA "$dir/pki/ca.crt" -CAkey "$dir/pki/ca.key" \
	-set_serial 77 -not_before 20200101000000Z -not_after 20200102000000Z \
	-extfile "$dir/old.ext" -out "$dir/old.crt" 2>/dev/null ||
	openssl x509 -req -in "$dir/old.csr" -CA "$dir/pki/ca.crt" -CAkey "$dir/pki/ca.key" \
		-set_serial 77 -days -1 -extfile "$dir/old.ext" -out "$dir/old.crt" 2>/dev/null
s_client "$dir" old -tls1_3
log_has h2 'peer_refused .*certificate has expired: issue it a new one'
ok $? "an expired certificate is refused"

s_client "$dir/pki" h1 -tls1_2
log_has h2 'peer_refused .*unsupported protocol'
ok $? "a TLS 1.2 client is refused"

s_client "$dir/pki" h1 -tls1_3 -ciphersuites TLS_AES_128_GCM_SHA256
log_has h2 'peer_refused .*no shared cipher'
ok $? "a client without our cipher suites is refused"

# raw_send BYTES_CMD: a plain TCP client in a subshell, so that a reset
# connection never takes this script with it.
raw_send() { (exec 3<>"/dev/tcp/127.0.0.1/$p2" && "$@" >&3) 2>/dev/null; }

raw_send printf 'GET / HTTP/1.1\r\nHost: x\r\n\r\n'
log_has h2 'peer_refused .*http request'
ok $? "a plain TCP (HTTP) client is refused"

raw_send head -c 4096 /dev/urandom
n_refused=$(grep -c peer_refused "$dir/h2.log")
[ "$n_refused" -ge 8 ]
ok $? "random garbage is refused ($n_refused refusals logged)"

raw_send sleep 2 &
silent=$!
log_has h2 'peer_refused .*timed out in state handshake'
ok $? "a silent connection is dropped at the handshake timeout"
wait "$silent"

kill -0 "$(cat "$dir/h2.pid")" && hsmig "$dir" h1 ping h2 >/dev/null && hsmig "$dir" h2 ping h1 >/dev/null
ok $? "after all of that both daemons still serve good peers both ways"

# h1's table pins the rogue certificate for a host at h2's address
cp "$dir/hosts.json" "$dir/hosts.good"
fp_rogue=$("$SMIG" pki fingerprint "$dir/pki/rogue.crt")
jq --arg fp "$fp_rogue" --arg a "127.0.0.1:$p2" \
	'.hosts += [{"name": "imposter", "address": $a, "fingerprint": $fp}]' \
	"$dir/hosts.good" >"$dir/hosts.json"
kill -HUP "$(cat "$dir/h1.pid")"
log_has h1 'reload_done hosts=3'
msg=$(hsmig "$dir" h1 ping imposter 2>&1)
rc=$?
[ $rc -eq 4 ] && grep -q "does not match the host table" <<<"$msg"
ok $? "a server whose fingerprint differs from the pinned one: exit 4 ($msg)"

hsmig "$dir" h1 hosts | grep -q imposter
ok $? "smig hosts shows the reloaded table"

# --- revocation: the host table's list of certificates refused on every handshake ----------
jq --arg fp "$fp_rogue" '.revoked = [{"fingerprint": $fp, "reason": "key leaked"}]' \
	"$dir/hosts.json" >"$dir/hosts.rev" && cp "$dir/hosts.rev" "$dir/hosts.json"
kill -HUP "$(cat "$dir/h1.pid")"
log_has h1 'reload_failed .*revoked\[0\].fingerprint is the certificate of host imposter'
ok $? "a table that both pins and revokes a certificate is refused on reload, naming both"
fp2=$("$SMIG" pki fingerprint "$dir/pki/h2.crt")
"$SMIG" pki issue "$dir/pki" h2old --ip 127.0.0.1 >/dev/null
fp_old=$("$SMIG" pki fingerprint "$dir/pki/h2old.crt")
# h2's former certificate (its key stolen) is revoked; h2 itself still belongs
jq --arg fp "$fp_old" '.revoked = [{"fingerprint": $fp, "host": "h2", "reason": "key stolen 2026-12-01"}]' \
	"$dir/hosts.good" >"$dir/hosts.json"
kill -HUP "$(cat "$dir/h1.pid")"
log_has h1 'reload_done hosts=2 revoked=1'
p1=$(cat "$dir/h1.port")
s_client1() { timeout 5 openssl s_client -connect "127.0.0.1:$p1" -cert "$dir/pki/$1.crt" \
	-key "$dir/pki/$1.key" -CAfile "$dir/pki/ca.crt" -quiet -no_ign_eof -tls1_3 </dev/null >/dev/null 2>&1; }
s_client1 h2old
log_has h1 "peer_refused .*certificate $fp_old is revoked \(host table\): key stolen 2026-12-01" &&
	hsmig "$dir" h1 --json events --last 100 | jq -se 'map(select(.kind == "unknown_peer" and (.detail | test("revoked")))) | length >= 1' >/dev/null &&
	hsmig "$dir" h2 ping h1 >/dev/null
ok $? "a revoked certificate of the cluster's CA is refused at the handshake, as a security event; h2's current one still works"
n_auth=$(grep -c 'peer_authenticated direction=in host=h2' "$dir/h1.log")
"$fakepeer" hold --ca "$dir/pki/ca.crt" --cert "$dir/pki/h2.crt" --key "$dir/pki/h2.key" \
	--name h2 --to "127.0.0.1:$p1" --count 1 --hold-s 20 >"$dir/hold.out" 2>&1 &
holder=$!
held() { [ "$(grep -c 'peer_authenticated direction=in host=h2' "$dir/h1.log")" -gt "$n_auth" ]; }
wait_for 10 held
jq --arg fp "$fp2" '.hosts |= map(select(.name != "h2")) | .revoked = [{"fingerprint": $fp, "host": "h2", "reason": "host retired"}]' \
	"$dir/hosts.good" >"$dir/hosts.json"
kill -HUP "$(cat "$dir/h1.pid")"
log_has h1 "peer_dropped host=h2 .*certificate $fp2 is revoked \(host table\): host retired" &&
	! hsmig "$dir" h2 ping h1 >/dev/null 2>&1 &&
	log_has h1 "peer_refused .*certificate $fp2 is revoked"
ok $? "revoking a certificate on reload closes its live session there and then, and refuses it from then on"
kill "$holder" 2>/dev/null
wait "$holder" 2>/dev/null
cp "$dir/hosts.good" "$dir/hosts.json"
kill -HUP "$(cat "$dir/h1.pid")"
wait_for 5 bash -c "grep -c 'reload_done' '$dir/h1.log' | grep -qx 4"

echo '{"hosts": [' >"$dir/hosts.json"
kill -HUP "$(cat "$dir/h1.pid")"
log_has h1 'reload_failed .*hosts.json:2:1: ' && hsmig "$dir" h1 ping h2 >/dev/null
ok $? "a broken host table on SIGHUP keeps the old one and names file:line:col"

sock="$dir/h1.sock"
smigd_stop "$dir" h1
[ ! -e "$sock" ] && grep -q 'event=stopped' "$dir/h1.log"
ok $? "SIGTERM stops smigd cleanly and removes its control socket"

done_testing
