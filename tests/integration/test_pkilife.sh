#!/usr/bin/env bash
# A host certificate's life: h2 makes its own key and request, the CA
# signs it; the host table lists the old and the new certificate while h2
# moves (next_fingerprint); h2's smigd takes the new pair on SIGHUP, and
# a later one when it sees the files change, without a restart, and h1
# talks to it with the new one; a pair that does not fit is refused and
# the old one serves on; once the table lists only the new certificate
# the old one is refused; a certificate near its end shows in smig status
# and as cert_expiring in both hosts' logs; the audit log verifies across
# the key change, also after a restart.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../harness/lib.sh"
. "$here/../harness/tap.sh"

dir=$(mktemp -d /tmp/smig-pkilife.XXXXXX)
trap 'cluster_clean "$dir"' EXIT
cluster_make "$dir" 2 || { echo "Bail out! cluster_make"; exit 1; }
pki=$dir/pki

plan 22

smigd_start "$dir" h1 && smigd_start "$dir" h2 && hsmig "$dir" h1 ping h2 >/dev/null
ok $? "h1 and h2 start and h1 reaches h2"
pid2=$(hsmig "$dir" h2 --json status | jq -r .pid)
f1=$("$SMIG" pki fingerprint "$pki/h2.crt")
cp "$pki/h2.crt" "$dir/old.crt" && cp "$pki/h2.key" "$dir/old.key"

# log_has HOST REGEX: waits up to 5 s for a line in HOST's log.
log_has() { wait_for 5 grep -qE "$2" "$dir/$1.log"; }
# count HOST REGEX: how many lines of HOST's log match.
count() { grep -cE "$2" "$dir/$1.log"; }
# hup HOST: SIGHUP, then wait until the worker has taken the reload.
hup() {
	local n
	n=$(count "$1" 'event=reload_done')
	kill -HUP "$(cat "$dir/$1.pid")"
	wait_for 5 bash -c "[ \$(grep -c 'event=reload_done' '$dir/$1.log') -gt $n ]"
}
# table F2 [F3]: h2's fingerprint and next_fingerprint in the host table.
table() {
	jq --arg fp "$1" --arg next "${2:-}" \
		'(.hosts[] | select(.name == "h2")) |= (.fingerprint = $fp | del(.next_fingerprint) |
			if $next != "" then .next_fingerprint = $next else . end)' \
		"$dir/hosts.json" >"$dir/hosts.tmp" && mv "$dir/hosts.tmp" "$dir/hosts.json"
}

# --- on h2: its own key and a request; on the CA's host: the certificate
out=$("$SMIG" pki csr "$pki/next" h2 --ip 127.0.0.1) &&
	[ "$(stat -c %a "$pki/next/h2.key")" = 600 ] && [ -s "$pki/next/h2.csr" ] &&
	req=$(sed -n 's/^request \(sha256:[0-9a-f]*\)$/\1/p' <<<"$out") && [ -n "$req" ]
ok $? "smig pki csr makes h2's key (0600) and a request ($req)"
out=$("$SMIG" --json pki sign "$pki" "$pki/next/h2.csr") &&
	f2=$(jq -r .fingerprint <<<"$out") &&
	[ "$(jq -r .request <<<"$out")" = "$req" ] && [ -s "$pki/next/h2.crt" ] &&
	[ "$("$SMIG" pki fingerprint "$pki/next/h2.crt")" = "$f2" ] &&
	exts=$(openssl x509 -in "$pki/next/h2.crt" -noout -ext subjectAltName,extendedKeyUsage | tr -d ' \n') &&
	grep -q 'DNS:h2,IPAddress:127.0.0.1' <<<"$exts" &&
	grep -q 'TLSWebServerAuthentication,TLSWebClientAuthentication' <<<"$exts"
ok $? "smig pki sign on the CA: the same request digest, SAN and both TLS uses copied, the fingerprint printed"
printf 'not a request\n' >"$dir/junk.csr"
msg=$("$SMIG" pki sign "$pki" "$dir/junk.csr" 2>&1)
[ $? -eq 1 ] && grep -q 'not a PEM certificate request' <<<"$msg" && [ ! -e "$dir/junk.crt" ]
ok $? "a file that is no request is refused, nothing written ($msg)"

# --- the rotation window: both certificates are h2's
table "$f1" "$f2" && hup h1 && hup h2 &&
	hsmig "$dir" h1 --json hosts | jqe --arg f "$f2" '.hosts[] | select(.name == "h2") | .next_fingerprint == $f' >/dev/null
ok $? "the host table lists h2's next_fingerprint; both hosts take it"

# a pair that does not fit: the new certificate with the old key
cp "$pki/next/h2.crt" "$pki/h2.crt" && hup h2 &&
	log_has h2 'tls_reload_failed why=sighup .*does not belong to .*h2.crt.*action=kept_previous' &&
	hsmig "$dir" h1 --json ping h2 | jqe --arg f "$f1" '.fingerprint == $f' >/dev/null
ok $? "a key that is not the certificate's: the reload keeps the old pair, and it serves on"
cp "$dir/old.crt" "$pki/h2.crt"
cp "$pki/next/h2.key" "$dir/new.key" && chmod 0644 "$dir/new.key" &&
	cp "$pki/next/h2.crt" "$pki/h2.crt" && cp -p "$dir/new.key" "$pki/h2.key" && hup h2 &&
	log_has h2 'tls_reload_failed why=sighup .*accessible by group or others.*chmod 600' &&
	hsmig "$dir" h1 --json ping h2 | jqe --arg f "$f1" '.fingerprint == $f' >/dev/null
ok $? "a key group or others may read: refused on reload, the old pair serves on"
cp "$dir/old.crt" "$pki/h2.crt" && cp -p "$dir/old.key" "$pki/h2.key"
"$SMIG" pki csr "$dir/stray2" h2 >/dev/null && "$SMIG" pki sign "$pki" "$dir/stray2/h2.csr" >/dev/null &&
	cp "$dir/stray2/h2.crt" "$pki/h2.crt" && cp -p "$dir/stray2/h2.key" "$pki/h2.key" && hup h2 &&
	log_has h2 "tls_reload_failed why=sighup .*is not h2's in the host table: list it as h2's next_fingerprint"
ok $? "a good pair of the CA that the host table does not list for h2: refused on reload"
cp "$dir/old.crt" "$pki/h2.crt" && cp -p "$dir/old.key" "$pki/h2.key"

# --- the new pair in place, systemctl reload
n_ok=$(count h1 'peer_attested host=h2 verdict=unverified')
mv "$pki/next/h2.key" "$pki/h2.key" && mv "$pki/next/h2.crt" "$pki/h2.crt" && hup h2 &&
	log_has h2 "tls_reloaded why=sighup fingerprint=$f2 previous=$f1" &&
	log_has h2 "tls_installed fingerprint=$f2"
ok $? "SIGHUP: the warden takes the new pair and the worker installs it"
st=$(hsmig "$dir" h2 --json status)
jqe --arg f "$f2" --argjson p "$pid2" '.fingerprint == $f and .certificate.fingerprint == $f and .pid == $p' <<<"$st" >/dev/null &&
	[ "$(count h2 'event=worker_started')" -eq 1 ]
ok $? "h2's status shows the new certificate, same worker, no restart"
out=$(hsmig "$dir" h1 --json ping h2) &&
	jqe --arg f "$f2" '.fingerprint == $f and .attestation.verdict == "unverified"' <<<"$out" >/dev/null
ok $? "h1 reaches h2 with the new certificate and trusts it (the IVT still names the old one, the table both)"
hsmig "$dir" h2 --json ping h1 | jqe '.attestation.verdict == "unverified"' >/dev/null &&
	wait_for 5 bash -c "[ \$(grep -cE 'peer_attested host=h2 verdict=unverified' '$dir/h1.log') -gt $n_ok ]"
ok $? "h2 reaches h1; h1 checks h2's evidence, signed by the new key"
out=$(hsmig "$dir" h2 audit verify 2>&1) &&
	hsmig "$dir" h2 --json audit show --last 0 | jqe -s 'map(select(.action == "audit.rekey")) | length == 1' >/dev/null
ok $? "h2's audit log records the key change and verifies across it ($out)"

# --- the window closes: the table lists only the new certificate; the old one is refused
table "$f2" && ivt_make "$dir" 2 && hup h1 && hup h2 &&
	hsmig "$dir" h1 --json ping h2 | jqe --arg f "$f2" '.fingerprint == $f and .attestation.verdict == "unverified"' >/dev/null
ok $? "the table and the IVT name only the new certificate: h1 still reaches and trusts h2"
p1=$(cat "$dir/h1.port")
timeout 5 openssl s_client -connect "127.0.0.1:$p1" -cert "$dir/old.crt" -key "$dir/old.key" \
	-CAfile "$pki/ca.crt" -tls1_3 -quiet -no_ign_eof </dev/null >/dev/null 2>&1
log_has h1 "peer_refused .*certificate fingerprint $f1 is not in the host table"
ok $? "h2's old certificate is refused by h1 now"

# --- a short certificate, put in place without a reload: smigd sees the files change
rm -f "$pki/next/h2.csr" # signed and done with
"$SMIG" pki csr "$pki/next" h2 --ip 127.0.0.1 >/dev/null &&
	f3=$("$SMIG" --json pki sign "$pki" "$pki/next/h2.csr" --days 5 | jq -r .fingerprint) &&
	table "$f2" "$f3" && hup h1 && hup h2
ok $? "a third certificate, valid 5 days, signed and listed as next_fingerprint"
f3=${f3:-none}
n_warn=$(count h2 'event=cert_expiring cert=host')
mv "$pki/next/h2.key" "$pki/h2.key" && mv "$pki/next/h2.crt" "$pki/h2.crt" &&
	wait_for 15 grep -qE "tls_reloaded why=files_changed fingerprint=$f3 previous=$f2" "$dir/h2.log" &&
	log_has h2 "tls_installed fingerprint=$f3"
ok $? "without a reload, h2 sees the files change and takes the new pair"
st=$(hsmig "$dir" h2 --json status)
jqe --arg f "$f3" '.certificate.fingerprint == $f and .certificate.days_left >= 4 and
	.certificate.days_left <= 5 and .certificate.state == "expiring" and .ca.state == "ok"' <<<"$st" >/dev/null &&
	hsmig "$dir" h2 status | grep -qE '^certificate +CN=h2,O=smig cluster, until .* \([45] days left\): expiring soon'
ok $? "smig status shows the certificate's end and its days left ($(jq -c '.certificate | {days_left, state, not_after}' <<<"$st"))"
[ "$(count h2 'event=cert_expiring cert=host')" -gt "$n_warn" ] &&
	log_has h2 "event=cert_expiring cert=host host=h2 .*fingerprint=$f3 .*days_left=[45] warn_days=30"
ok $? "h2 logs cert_expiring for its own certificate"
hsmig "$dir" h1 --json ping h2 | jqe --arg f "$f3" '.fingerprint == $f' >/dev/null &&
	log_has h1 "event=cert_expiring cert=peer host=h2 .*fingerprint=$f3"
ok $? "h1 reaches h2 with it and logs cert_expiring for its peer's certificate"
n_peer=$(count h1 "event=cert_expiring cert=peer host=h2")
hsmig "$dir" h1 ping h2 >/dev/null && hsmig "$dir" h1 ping h2 >/dev/null
[ "$(count h1 "event=cert_expiring cert=peer host=h2")" -eq "$n_peer" ]
ok $? "... once a day per peer: more connections, no more lines"

# --- a restart: the key change stays verifiable, the end is said at start
n_warn=$(count h2 'event=cert_expiring cert=host')
smigd_stop "$dir" h2 && smigd_start "$dir" h2 &&
	log_has h2 'event=audit_open ' && ! grep -q 'event=audit_damaged' "$dir/h2.log" &&
	hsmig "$dir" h2 audit verify >/dev/null &&
	wait_for 5 bash -c "[ \$(grep -c 'event=cert_expiring cert=host' '$dir/h2.log') -gt $n_warn ]"
ok $? "after a restart h2's audit log verifies across both key changes, and cert_expiring is logged at start"

done_testing
