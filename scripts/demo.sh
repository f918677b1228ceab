#!/usr/bin/env bash
# make demo: two smigd hosts on loopback with a freshly made cluster PKI
# authenticate each other over mutual TLS 1.3; an impostor is refused.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/tests/harness/lib.sh"

dir=${SMIG_DEMO_DIR:-/tmp/smig-demo}
cluster_stop "$dir" 2>/dev/null || true
rm -rf "$dir"
trap 'cluster_stop "$dir"' EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

say "1. a cluster CA and one certificate per host (smig pki)"
cluster_make "$dir" 2
ls -l "$dir/pki"

say "2. the host table every host shares: name, address, pinned fingerprint"
cat "$dir/hosts.json"

say "3. start smigd on h1 and h2"
smigd_start "$dir" h1
smigd_start "$dir" h2
run "$SMIG" --socket "$dir/h1.sock" status
run "$SMIG" --socket "$dir/h2.sock" status

say "4. mutual authentication both ways (TLS 1.3, client certificates, pinned fingerprints)"
run "$SMIG" --socket "$dir/h1.sock" ping h2
run "$SMIG" --socket "$dir/h2.sock" ping h1
run "$SMIG" --socket "$dir/h1.sock" hosts

say "5. an impostor with a certificate from another CA is refused"
"$SMIG" pki init "$dir/evil" >/dev/null
"$SMIG" pki issue "$dir/evil" mallory >/dev/null
timeout 5 openssl s_client -connect "127.0.0.1:$(cat "$dir/h2.port")" \
	-cert "$dir/evil/mallory.crt" -key "$dir/evil/mallory.key" -quiet </dev/null >/dev/null 2>&1 || true
wait_for 3 grep -q peer_refused "$dir/h2.log"
grep peer_refused "$dir/h2.log" | tail -1

say "summary"
h1h2=$("$SMIG" --socket "$dir/h1.sock" --json ping h2)
h2h1=$("$SMIG" --socket "$dir/h2.sock" --json ping h1)
printf 'h1 -> h2: %s, %s, handshake %.2f ms, rtt %.3f ms\n' \
	"$(jq -r .tls_version <<<"$h1h2")" "$(jq -r .cipher <<<"$h1h2")" \
	"$(jq -r .handshake_ms <<<"$h1h2")" "$(jq -r .rtt_ms <<<"$h1h2")"
printf 'h2 -> h1: %s, %s, handshake %.2f ms, rtt %.3f ms\n' \
	"$(jq -r .tls_version <<<"$h2h1")" "$(jq -r .cipher <<<"$h2h1")" \
	"$(jq -r .handshake_ms <<<"$h2h1")" "$(jq -r .rtt_ms <<<"$h2h1")"
echo "impostors refused by h2: $(grep -c peer_refused "$dir/h2.log")"
echo "files and logs: $dir"
