#!/usr/bin/env bash
# The man pages and the bash completion. Each page this build made renders
# without a warning from groff and with a NAME line whatis can read;
# smigd.json(5) documents every key the config, catalogue and host-table
# parsers accept, smig-vmspec(5) every key of a VM spec and smig-policy(5)
# every key of a policy, each as an entry of its own (the keys are read
# from the parsers' field tables, so a key added without its entry fails
# here); smig(1) has an entry for every command of docs/cli.md. The
# completion script loads, offers every command and subcommand of
# docs/cli.md, and asks a running smigd for the names of its VMs and hosts
# through the socket the command line names.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../harness/lib.sh"
. "$here/../harness/tap.sh"

mandir=$SMIG_BUILD/docs/man
completion=$SMIG_ROOT/dist/bash-completion/smig
pages=(smig.1 smigd.8 smigd.json.5 smig-vmspec.5 smig-policy.5)
dir=$(mktemp -d /tmp/smig-docs.XXXXXX)
trap 'cluster_clean "$dir"' EXIT

plan 17

# oneline TEXT: TEXT's lines as one, for a TAP line
oneline() { tr '\n' ' ' <<<"$1" | sed 's/ *$//'; }

# --- the man pages ---

# render PAGE WIDTH: the page as text, as man shows it
render() {
	MANWIDTH=$2 man -E UTF-8 -l "$1" 2>/dev/null | col -bx
}

for p in "${pages[@]}"; do
	f=$mandir/$p
	warn=
	if [ -s "$f" ]; then
		warn=$(MANWIDTH=80 man --warnings=all -E UTF-8 -l "$f" 2>&1 >/dev/null)
		warn+=$(groff -ww -z -man -Tutf8 "$f" 2>&1)
		warn=$(oneline "$warn")
		name=$(lexgrog "$f" 2>&1)
	fi
	[ -s "$f" ] && [ -z "$warn" ] && grep -q "\"${p%.*} - " <<<"$name" &&
		[ "$(render "$f" 80 | grep -c .)" -gt 20 ]
	ok $? "$p is built, renders without warnings and has its NAME line${warn:+: $warn}"
done

# terms PAGE: the entries of a page, one a line: an entry is a line at the
# text's indentation whose next line is indented further (its description);
# "a, b (type)" is two entries, a and b. Wide, so that no entry wraps.
terms() {
	render "$1" 250 | awk '
		{ line[NR] = $0 }
		END {
			for (i = 1; i < NR; i++) {
				if (line[i] !~ /^       [^ ]/ || line[i + 1] !~ /^           [^ ]/)
					continue
				t = substr(line[i], 8)
				sub(/ \(.*/, "", t)
				n = split(t, a, ", ")
				for (k = 1; k <= n; k++)
					print a[k]
			}
		}'
}

# fields FILE...: "FUNCTION KEY TYPE" for every key of every field table
# (static const struct smig_jfield fields[] = { { "key", SMIG_J_TYPE, ... } })
fields() {
	awk '
		/^[A-Za-z].*\(/ && !/;$/ {
			s = $0
			sub(/\(.*/, "", s)
			n = split(s, w, /[ *]+/)
			fn = w[n]
		}
		/smig_jfield fields\[\] = \{/ { in_table = 1; next }
		in_table && /^\t\};/ { in_table = 0 }
		in_table && match($0, /\{ "[^"]+", SMIG_J_[A-Z]+/) {
			s = substr($0, RSTART + 3, RLENGTH - 3)
			split(s, kv, /", /)
			print fn, kv[1], kv[2]
		}' "$@"
}

# undocumented PAGE PLACES FILE...: prints each key of FILE's field tables
# that PAGE has no entry for (nor, for an object or array, entries below
# it), and each function whose table PLACES does not place, and fails if
# there is any or if the tables had fewer than 10 keys. PLACES maps a
# function to the key paths its keys are below ("-" for the top), e.g.
# [config_log]=log. or [get_volref]="boot.kernel. boot.initrd.".
undocumented() {
	local page=$1 places=$2
	shift 2
	local -n at=$places
	local fn key type prefix k n=0 bad=0 t
	local -A doc=()
	while IFS= read -r t; do doc[$t]=1; done < <(terms "$mandir/$page")
	while read -r fn key type; do
		n=$((n + 1))
		if [ -z "${at[$fn]+set}" ]; then
			echo "$fn (key $key): no place for its table in the test"
			bad=1
			continue
		fi
		for prefix in ${at[$fn]}; do
			[ "$prefix" = - ] && prefix=
			k=$prefix$key
			[ -n "${doc[$k]+set}" ] && continue
			if [ "$type" = SMIG_J_OBJECT ] || [ "$type" = SMIG_J_ARRAY ]; then
				for t in "${!doc[@]}"; do
					[[ $t == "$k."* || $t == "${k}[]."* ]] && continue 2
				done
			fi
			echo "$k"
			bad=1
		done
	done < <(fields "$@")
	[ "$n" -ge 10 ] || { echo "only $n keys found in $*"; bad=1; }
	return $bad
}

# shellcheck disable=SC2034 # used through a nameref
declare -A config_places=(
	[config_top]=- [config_tls]=tls. [config_control]=control. [config_log]=log.
	[config_limits]=limits. [config_qemu]=qemu. [config_confinement]=confinement.
	[config_metrics]=metrics. [config_store]=store. [config_migration]=migration. [config_mig_policy]=migration.policies[].
	[config_audit]=audit. [config_attestation]=attestation.
	[config_components]=attestation.components[]. [config_tpm]=attestation.tpm.
	[config_firewall]=firewall. [config_ids_rules]=firewall.rules[].
	[parse_pools]=pools.NAME. [parse_networks]=networks.NAME.
	[parse_firmware]=firmware.NAME. [parse_capacity]=capacity.
	[hosts_top]=- [hosts_entry]=hosts[]. [revoked_entry]=revoked[].
)
out=$(cd "$SMIG_ROOT/src/lib" && undocumented smigd.json.5 config_places config.c catalog.c hosts.c)
ok $? "smigd.json(5) has an entry for every key of the config and the host table${out:+: missing $(oneline "$out")}"

# shellcheck disable=SC2034
declare -A vmspec_places=(
	[parse_root]=- [parse_firmware]=firmware. [parse_boot]=boot. [parse_disk]=disks[].
	[parse_nics]=nics[]. [parse_filter]=nics[].filter. [parse_security]=security.
	[get_volref]="firmware.nvram. boot.kernel. boot.initrd."
)
out=$(cd "$SMIG_ROOT/src/lib" && undocumented smig-vmspec.5 vmspec_places vmspec.c)
ok $? "smig-vmspec(5) has an entry for every key of a VM spec${out:+: missing $(oneline "$out")}"

# shellcheck disable=SC2034
declare -A policy_places=([policy_top]=- [binding_parse]=bindings[]. [parse_limits]=limits.)
out=$(cd "$SMIG_ROOT/src/lib" && undocumented smig-policy.5 policy_places policy.c)
ok $? "smig-policy(5) has an entry for every key of a policy${out:+: missing $(oneline "$out")}"

# docs/cli.md's table of commands: "COMMAND" or "COMMAND SUBCOMMAND", one a line
cli_commands() {
	awk '/^\| command \|/ { t = 1; next } t && !/^\|/ { exit }
		t && match($0, /^\| `[^`]*`/) {
			n = split(substr($0, RSTART + 3, RLENGTH - 4), w, " ")
			print (n > 1 && w[2] ~ /^[a-z][a-z-]*$/) ? w[1] " " w[2] : w[1]
		}' "$SMIG_ROOT/docs/cli.md" | sort -u
}
commands=$(cli_commands)
missing=$(terms "$mandir/smig.1" | sed -E 's/^(migrate) --cancel.*/\1/' | awk '
	{ print $1; if ($2 ~ /^[a-z][a-z-]*$/) print $1 " " $2 }' | sort -u | comm -13 - <(echo "$commands"))
[ "$(grep -c . <<<"$commands")" -ge 25 ] && [ -z "$missing" ]
ok $? "smig(1) has an entry for each of docs/cli.md's $(grep -c . <<<"$commands") commands${missing:+: missing $(oneline "$missing")}"

# --- the bash completion ---

loaded=$(bash --norc --noprofile -c '. "$1" && complete -p smig' _ "$completion" 2>&1) &&
	grep -qx 'complete -F _smig smig' <<<"$loaded" &&
	loaded=$(bash --norc --noprofile -c '. /usr/share/bash-completion/bash_completion &&
		. "$1" && complete -p smig' _ "$completion" 2>&1) &&
	grep -qx 'complete -F _smig smig' <<<"$loaded"
ok $? "the completion script loads without a word, alone and after bash-completion's own, and binds smig: $loaded"

# complete WORD...: what the completion offers for the last WORD, with the
# words as bash splits them ("" for an empty word), one a line
complete_words() {
	bash --norc --noprofile -c '
		. "$1"
		shift
		COMP_WORDS=("$@")
		COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
		COMP_LINE="${COMP_WORDS[*]}"
		COMP_POINT=${#COMP_LINE}
		_smig
		printf "%s\n" "${COMPREPLY[@]}"' _ "$completion" "$@" 2>&1
}

out=$(complete_words smig v)
grep -qx vm <<<"$out" && ! grep -qv '^v' <<<"$out"
ok $? "smig v<TAB> offers vm: $(oneline "$out")"

out=$(complete_words smig vm '' | sort)
[ "$out" = "$(sed -n 's/^vm //p' <<<"$commands")" ]
ok $? "smig vm <TAB> offers its subcommands, as docs/cli.md lists them: $(oneline "$out")"

missing=
for c in $(cut -d' ' -f1 <<<"$commands" | sort -u); do
	complete_words smig '' | grep -qx "$c" || missing+=" $c"
	subs=$(sed -n "s/^$c //p" <<<"$commands")
	[ -z "$subs" ] && continue
	offered=$(complete_words smig "$c" '')
	for s in $subs; do
		grep -qx "$s" <<<"$offered" || missing+=" $c $s"
	done
done
[ -z "$missing" ]
ok $? "every command and subcommand of docs/cli.md is offered${missing:+; not:$missing}"

# --- with a daemon: the names of its VMs and hosts ---

cluster_make "$dir" 1 || { echo "Bail out! cluster_make"; exit 1; }
sock=$dir/h1.sock
echo '{"name": "docs-vm1", "memory_mib": 64}' >"$dir/docs-vm1.json"
smigd_start "$dir" h1 && hsmig "$dir" h1 vm define "$dir/docs-vm1.json" >/dev/null
ok $? "h1 starts and a VM is defined"

a=$(complete_words "$SMIG" --socket "$sock" vm start '')
b=$(complete_words "$SMIG" --socket = "$sock" vm start docs-)
c=$(SMIG_SOCKET=$sock complete_words "$SMIG" vm show d)
[ "$a" = docs-vm1 ] && [ "$b" = docs-vm1 ] && [ "$c" = docs-vm1 ]
ok $? "smig vm start <TAB> offers the daemon's VM, by --socket PATH, --socket=PATH and \$SMIG_SOCKET: $a / $b / $c"

a=$(complete_words "$SMIG" --socket "$sock" ping '')
b=$(complete_words "$SMIG" --socket "$sock" migrate docs-vm1 --to '')
c=$(complete_words "$SMIG" --socket "$sock" migrate '')
[ "$a" = h1 ] && [ "$b" = "$(printf 'h1\nauto')" ] && [ "$c" = "$(printf 'docs-vm1\nlist\nshow\nwatch\ncancel')" ]
ok $? "hosts for ping, hosts and auto for migrate --to, VMs (and the history's list and show, the job's watch and cancel) for migrate: $a / $(oneline "$b") / $(oneline "$c")"

start=$(date +%s%N)
out=$(complete_words "$SMIG" --socket "$dir/nothing.sock" vm start '')
ms=$((($(date +%s%N) - start) / 1000000))
[ -z "$out" ] && [ "$ms" -lt 1500 ]
ok $? "without a daemon there is nothing to offer, and no message (${ms} ms)${out:+: $out}"

done_testing
