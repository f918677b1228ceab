#!/usr/bin/env bash
# The Debian package: make deb builds it with dpkg-buildpackage and lintian
# reports no errors; installed with dpkg into a fresh Debian 12 tree (its
# dependencies and systemd only, from Debian's archive by mmdebstrap, cached by the
# package's Depends in /var/cache/smig/images) and run there in namespaces
# of its own, the package makes the system user the worker runs as, leaves
# /etc/smig/pki to root, ships a unit that verifies, and smigd and smig run.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$here/../harness/tap.sh"

dir=$(mktemp -d /tmp/smig-deb.XXXXXX)
trap 'rm -rf "$dir"' EXIT
plan 9

deb=$("$root/scripts/deb.sh" 2>"$dir/deb.err")
ok $? "make deb builds the package (dpkg-buildpackage -us -uc -b) and lintian reports no errors: ${deb:-$(tail -5 "$dir/deb.err")}"
[ -f "${deb:-}" ] || { echo "Bail out! no package"; exit 1; }
diag "lintian: $(grep -c '^W:' "$root/build/deb/lintian.log") warnings"

# the base tree: what the package depends on, and nothing of smig's
cache=${SMIG_IMAGE_CACHE:-/var/cache/smig/images}
deps=$(dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed 's/(.*)//; s/|.*//; s/ //g' | grep . | sort -u | tr '\n' ',')
deps=${deps%,},systemd # a real host's init, for the unit's verification
key=$(printf '%s' "$deps" | sha256sum | cut -c1-16)
base=$cache/deb-base-$key.tar
if [ ! -f "$base" ]; then
	mkdir -p "$cache"
	if [ -n "${SMIG_DEBIAN_MIRROR:-}" ]; then
		mirrors=("deb $SMIG_DEBIAN_MIRROR bookworm main")
	else
		mirrors=("deb http://deb.debian.org/debian bookworm main"
			"deb http://deb.debian.org/debian bookworm-updates main"
			"deb http://deb.debian.org/debian-security bookworm-security main")
	fi
	diag "making the base tree ($deps) into $base"
	mmdebstrap --quiet --variant=minbase --mode=root --include="$deps" \
		--dpkgopt='path-exclude=/usr/share/locale/*' \
		bookworm "$dir/base.tar" "${mirrors[@]}" </dev/null >"$dir/mmdebstrap.log" 2>&1 &&
		rm -f "$cache"/deb-base-*.tar && mv "$dir/base.tar" "$base" || { tail -20 "$dir/mmdebstrap.log"; echo "Bail out! mmdebstrap failed"; exit 1; }
fi
tree=$dir/tree
mkdir "$tree" && tar -C "$tree" -xf "$base"
# in the tree's own mount, pid, uts and ipc namespaces, with its own /proc
in_tree() { unshare --mount --pid --uts --ipc --fork --mount-proc="$tree/proc" chroot "$tree" "$@"; }

cp "$deb" "$tree/tmp/"
in_tree dpkg -i "/tmp/$(basename "$deb")" >"$dir/dpkg.log" 2>&1
ok $? "dpkg -i installs it into a fresh Debian 12 tree with its dependencies only$( [ $? -ne 0 ] && tail -3 "$dir/dpkg.log" | tr '\n' ' ')"

out=$(in_tree smigd --version 2>&1)
[ "$out" = "smigd $(dpkg-deb -f "$deb" Version)" ]
ok $? "smigd --version from the package: $out"

out=$(in_tree smig --help 2>&1)
[ $? -eq 0 ] && grep -q 'migrate' <<<"$out"
ok $? "smig --help from the package lists the commands"

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

in_tree dpkg -i "/tmp/$(basename "$deb")" >"$dir/dpkg2.log" 2>&1 && in_tree dpkg --purge smig >>"$dir/dpkg2.log" 2>&1 &&
	[ ! -e "$tree/usr/sbin/smigd" ] && [ ! -e "$unit" ]
ok $? "installed again over itself, then purged: nothing of the package is left$( [ $? -ne 0 ] && tail -3 "$dir/dpkg2.log" | tr '\n' ' ')"
