#!/usr/bin/env bash
# The Debian package: make deb builds it with dpkg-buildpackage and lintian
# reports no errors; installed with dpkg into a fresh Debian 12 tree (its
# dependencies and systemd only: tests/harness/debtree.sh) and run there in
# namespaces of its own, the package makes the system user the worker runs as, leaves
# /etc/smig/pki to root, ships a unit that verifies, and smigd and smig run.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$here/../harness/tap.sh"
. "$here/../harness/debtree.sh"

dir=$(mktemp -d /tmp/smig-deb.XXXXXX)
trap 'rm -rf "$dir"' EXIT
plan 12

deb=$("$root/scripts/deb.sh" 2>"$dir/deb.err")
ok $? "make deb builds the package (dpkg-buildpackage -us -uc -b) and lintian reports no errors: ${deb:-$(tail -5 "$dir/deb.err")}"
[ -f "${deb:-}" ] || { echo "Bail out! no package"; exit 1; }
diag "lintian: $(grep -c '^W:' "$root/build/deb/lintian.log") warnings"

base=$(deb_base "$deb") || { echo "Bail out! no base tree (mmdebstrap failed)"; exit 1; }
tree=$dir/tree
deb_tree "$base" "$tree"
in_tree() { tree_run "$tree" "$@"; }

cp "$deb" "$tree/tmp/"
in_tree dpkg -i "/tmp/$(basename "$deb")" >"$dir/dpkg.log" 2>&1
ok $? "dpkg -i installs it into a fresh Debian 12 tree with its dependencies only$( [ $? -ne 0 ] && tail -3 "$dir/dpkg.log" | tr '\n' ' ')"

out=$(in_tree smigd --version 2>&1)
[ "$out" = "smigd $(dpkg-deb -f "$deb" Version)" ]
ok $? "smigd --version from the package: $out"

out=$(in_tree smig --help 2>&1)
[ $? -eq 0 ] && grep -q 'migrate' <<<"$out"
ok $? "smig --help from the package lists the commands"

pages=$(cd "$tree/usr/share/man" && ls man1/smig.1.gz man8/smigd.8.gz man5/smigd.json.5.gz man5/smig-vmspec.5.gz man5/smig-policy.5.gz 2>&1)
[ $? -eq 0 ] && [ -f "$tree/usr/share/bash-completion/completions/smig" ] && zcat "$tree/usr/share/man/man5/smigd.json.5.gz" | grep -q 'state_dir'
ok $? "the package installs the man pages and the bash completion: $(echo $pages)"

sum=$(cat "$tree/usr/share/smig/smigd.sha256" 2>/dev/null)
[ -n "$sum" ] && [ "$sum" = "$(sha256sum "$tree/usr/sbin/smigd" | cut -d' ' -f1)" ] &&
	[ "$(dpkg-deb --fsys-tarfile "$deb" | tar -xO ./usr/share/smig/smigd.sha256)" = "$sum" ]
ok $? "the package ships the SHA-256 of its smigd as installed, readable from the .deb before installing: ${sum:-none}"

u=$(in_tree getent passwd smig)
[ -n "$u" ] && [ "$(cut -d: -f7 <<<"$u")" = /usr/sbin/nologin ] && [ "$(cut -d: -f3 <<<"$u")" -lt 1000 ]
ok $? "the package made the system user smig that smigd's worker runs as: $u"

[ "$(stat -c '%a %U' "$tree/etc/smig/pki")" = "700 root" ] && [ "$(stat -c '%a %U' "$tree/etc/smig")" = "755 root" ]
ok $? "/etc/smig is root's and /etc/smig/pki root's alone: $(stat -c '%n %a %U' "$tree/etc/smig" "$tree/etc/smig/pki" | tr '\n' ' ')"

unit=$tree/lib/systemd/system/smigd.service
out=$(systemd-analyze verify --root="$tree" /lib/systemd/system/smigd.service 2>&1)
[ -f "$unit" ] && grep -q '^ExecStart=/usr/sbin/smigd --config /etc/smig/smigd.json' "$unit" && [ -z "$out" ]
ok $? "the installed unit runs /usr/sbin/smigd with /etc/smig/smigd.json and verifies${out:+: $out}"

# the example configuration names files a host makes itself: the check says which
out=$(in_tree smigd --config /usr/share/doc/smig/examples/smigd.json --check-config 2>&1)
rc=$?
[ $rc -ne 0 ] && grep -q '/etc/smig/' <<<"$out"
ok $? "smigd --check-config on the example, before its keys exist, fails and names what is missing: $(head -1 <<<"$out")"

# what the maintainer scripts ask of systemd, on a tree that says it runs
# systemd (/run/systemd/system), told by stand-ins of systemctl and
# deb-systemd-invoke that come first on dpkg's PATH
mkdir -p "$tree/run/systemd/system" "$tree/usr/local/sbin"
for t in systemctl deb-systemd-invoke; do
	printf '#!/bin/sh\necho "%s $*" >>/tmp/systemd.log\n' "$t" >"$tree/usr/local/sbin/$t"
	chmod 0755 "$tree/usr/local/sbin/$t"
done
in_tree dpkg -i "/tmp/$(basename "$deb")" >"$dir/dpkg2.log" 2>&1 &&
	grep -qx 'deb-systemd-invoke try-restart smigd.service' "$tree/tmp/systemd.log" &&
	! grep -q ' stop smigd' "$tree/tmp/systemd.log" && ! grep -qw start "$tree/tmp/systemd.log"
ok $? "an upgrade restarts a running smigd on the new binary (try-restart), and never starts a stopped one: $(tr '\n' ';' <"$tree/tmp/systemd.log")"
: >"$tree/tmp/systemd.log"
in_tree dpkg --purge smig >>"$dir/dpkg2.log" 2>&1 &&
	[ ! -e "$tree/usr/sbin/smigd" ] && [ ! -e "$unit" ] &&
	grep -qx 'deb-systemd-invoke stop smigd.service' "$tree/tmp/systemd.log"
ok $? "removed and purged: smigd is stopped and nothing of the package is left$( [ $? -ne 0 ] && tail -3 "$dir/dpkg2.log" | tr '\n' ' ')"
