#!/usr/bin/env bash
# The smig CLI and smigd's start-up: exit codes, --json, the control
# protocol's answers to bad requests, config errors and key permissions.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../harness/lib.sh"
. "$here/../harness/tap.sh"

dir=$(mktemp -d /tmp/smig-cli.XXXXXX)
trap 'cluster_clean "$dir"' EXIT
cluster_make "$dir" 2 || { echo "Bail out! cluster_make"; exit 1; }

plan 21

"$SMIG" >/dev/null 2>&1
ok $([ $? -eq 2 ] && echo 0 || echo 1) "smig without a command: exit 2"
"$SMIG" frobnicate >/dev/null 2>&1
ok $([ $? -eq 2 ] && echo 0 || echo 1) "an unknown command: exit 2"
"$SMIG" ping >/dev/null 2>&1
ok $([ $? -eq 2 ] && echo 0 || echo 1) "ping without a host: exit 2"

# every command docs/cli.md lists has its own page: smig CMD --help
bad=
n=0
while read -r cmd; do
	n=$((n + 1))
	out=$("$SMIG" $cmd --help 2>&1) && [ "$(head -1 <<<"$out" | cut -d' ' -f1-$(($(wc -w <<<"$cmd") + 2)))" = "usage: smig $cmd" ] &&
		grep -q '^exit codes: 0 ok' <<<"$out" || bad="$bad [$cmd]"
done < <(sed -n 's/^| `\([a-z][a-z]*\( [a-z][a-z-]*\)*\)[ `].*/\1/p' "$here/../../docs/cli.md" | sort -u)
[ $n -ge 25 ] && [ -z "$bad" ]
ok $? "each of the $n commands in docs/cli.md answers --help with its own usage and the exit codes${bad:+; not:$bad}"
out=$("$SMIG" help vm 2>&1) && grep -q '^       smig vm undefine NAME' <<<"$out" && "$SMIG" -h >/dev/null &&
	! "$SMIG" vm frobnicate --help >/dev/null 2>&1
ok $? "smig help vm lists the vm commands; -h is --help; a command that is not one is a usage error"

msg=$("$SMIG" --socket "$dir/none.sock" status 2>&1)
[ $? -eq 1 ] && grep -q "cannot connect to smigd at $dir/none.sock" <<<"$msg"
ok $? "no daemon: exit 1 naming the socket"

smigd_start "$dir" h1
ok $? "h1 starts"
[ "$(stat -c %a "$dir/h1.sock")" = 660 ]
ok $? "the control socket is mode 0660"

SMIG_SOCKET="$dir/h1.sock" "$SMIG" --json status | jqe '.host == "h1" and .caller.uid == 0' >/dev/null
ok $? "SMIG_SOCKET is honoured and status reports the caller's credentials"

hsmig "$dir" h1 --json hosts | jqe '.hosts | length == 2' >/dev/null
ok $? "smig hosts --json lists the host table"

msg=$(hsmig "$dir" h1 ping h2 2>&1)
ok $([ $? -eq 4 ] && echo 0 || echo 1) "ping to a host that is down: exit 4 ($msg)"
hsmig "$dir" h1 hosts | grep -E '^h2 ' | grep -q 'connect'
ok $? "smig hosts remembers the last error for h2"

msg=$(hsmig "$dir" h1 --json ping nosuch)
[ $? -eq 1 ] && jqe '.error.code == "not_found"' <<<"$msg" >/dev/null
ok $? "ping to a host not in the table: exit 1, error code not_found"

msg=$(hsmig "$dir" h1 vm list --all 2>&1)
[ $? -eq 1 ] && grep -q "reads the fleet store, and this host has none (store.backend is files)" <<<"$msg"
ok $? "vm list --all on a host without a fleet store: exit 1, saying why ($msg)"

replies=$(printf '%s\n' '{"id":1,"cmd":"status","extra":1}' 'not json' '{"id":2,"cmd":"fly"}' \
	'{"id":3,"cmd":"ping","args":{"host":5}}' '{"id":4,"cmd":"status"}' |
	timeout 5 socat -t 2 - "UNIX-CONNECT:$dir/h1.sock")
[ "$(jq -s 'map(select(.ok == false and .error.code == "bad_request")) | length' <<<"$replies")" = 4 ] &&
	[ "$(jq -s '.[4].ok and .[4].id == 4' <<<"$replies")" = true ]
ok $? "bad control requests get bad_request answers and the connection keeps serving"

printf '{\n  "host": "h1",\n  "listn": "127.0.0.1"\n}\n' >"$dir/bad.json"
msg=$("$SMIGD" --config "$dir/bad.json" --check-config 2>&1)
# (the log escapes the quotes inside its quoted reason)
[ $? -eq 1 ] && grep -qF 'bad.json:3:3: unknown key \"listn\"' <<<"$msg"
ok $? "smigd refuses a bad config naming file:line:column"

"$SMIGD" --config "$dir/h2.json" --check-config >/dev/null
ok $? "smigd --check-config accepts a good config"

chmod 0644 "$dir/pki/h2.key"
msg=$("$SMIGD" --config "$dir/h2.json" --foreground 2>&1)
[ $? -eq 1 ] && grep -q "accessible by group or others" <<<"$msg" &&
	msg=$("$SMIGD" --config "$dir/h2.json" --check-config 2>&1)
[ $? -eq 1 ] && grep -q "accessible by group or others.*chmod 0\?600" <<<"$msg"
ok $? "smigd refuses a private key readable by others, and --check-config says so first"
chmod 0600 "$dir/pki/h2.key"

# the control socket in a directory that does not exist yet (/run/smig after a boot)
ping_h2() { hsmig "$dir" h1 ping h2 >/dev/null 2>&1; } # once h1 has read the new IVT
jq --arg s "$dir/run/smig/h2.sock" '.control.socket = $s' "$dir/h2.json" >"$dir/h2.tmp" &&
	mv "$dir/h2.tmp" "$dir/h2.json" && ln -s "$dir/run/smig/h2.sock" "$dir/h2.sock" &&
	ivt_make "$dir" 2 # the config is a measured component: its golden value changes with it
"$SMIGD" --config "$dir/h2.json" --check-config >/dev/null && [ ! -e "$dir/run" ] &&
	smigd_start "$dir" h2 && [ -S "$dir/run/smig/h2.sock" ] &&
	[ "$(stat -c '%a %U' "$dir/run/smig")" = "755 root" ] && wait_for 15 ping_h2
ok $? "smigd makes its socket's directory (0755, root's) when it is missing; once h2 is up, ping succeeds"

# the example files, moved from /etc/smig, /var/lib/smig, /run/smig and /srv to a directory here
ex=$dir/ex
mkdir -p "$ex/nfs" && chmod 0711 "$ex" && cp "$here/../../examples/"*.json "$ex/" &&
	sed -i -e "s|/etc/smig|$ex|g; s|/var/lib/smig|$ex/state|g; s|/run/smig|$ex/run|g" \
		-e "s|/srv/nfs/smig|$ex/nfs|g" "$ex/smigd.json" &&
	"$SMIG" pki init "$ex/pki" >/dev/null && "$SMIG" pki issue "$ex/pki" h1 --ip 192.0.2.1 >/dev/null &&
	jq --arg fp "$("$SMIG" pki fingerprint "$ex/pki/h1.crt")" '.hosts[0].fingerprint = $fp' \
		"$ex/hosts.json" >"$ex/hosts.tmp" && mv "$ex/hosts.tmp" "$ex/hosts.json" &&
	out=$("$SMIGD" --config "$ex/smigd.json" --check-config 2>&1) &&
	"$SMIG" policy lint "$ex/policy.json" >/dev/null
ok $? "examples/: the config, host table and policy pass --check-config and policy lint once keys exist: $(tail -1 <<<"$out" | cut -c1-120)"

v=$("$SMIG" --version) && grep -qE '^smig [0-9]+\.[0-9]+\.[0-9]+$' <<<"$v" &&
	[ "$("$SMIG" version)" = "$v" ] && "$SMIGD" --version | grep -qE '^smigd [0-9]+\.[0-9]+\.[0-9]+$'
ok $? "smig --version and smigd --version print the version, exit 0 ($v)"

done_testing
