#!/usr/bin/env bash
# make install: smig into PREFIX (default /usr/local; /usr puts the
# configuration in /etc/smig), under DESTDIR when given (a staging tree):
# install.sh PREFIX [DESTDIR]. The build tree (build) is configured for
# PREFIX first, so the paths compiled in and written into the unit match.
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=${1:-/usr/local}
destdir=${2:-}
case $prefix in
/*) ;;
*) echo "make install: PREFIX must be an absolute path, not \"$prefix\"" >&2; exit 2 ;;
esac
scripts/build.sh build
cur=$(meson introspect --buildoptions build | python3 -c \
	'import json,sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"] == "prefix"))')
if [ "$cur" != "$prefix" ]; then
	# /usr is special to meson: its sysconfdir is /etc, localstatedir /var
	if [ "$prefix" = /usr ]; then
		meson configure build -Dprefix=/usr -Dsysconfdir=/etc -Dlocalstatedir=/var >/dev/null
	else
		meson configure build -Dprefix="$prefix" -Dsysconfdir=etc -Dlocalstatedir=var >/dev/null
	fi
	ninja -C build >/dev/null
fi
if [ -n "$destdir" ]; then
	meson install -C build --no-rebuild --destdir "$destdir" >/dev/null
	echo "smig installed into $destdir (prefix $prefix)"
else
	meson install -C build --no-rebuild >/dev/null
	echo "smig installed (prefix $prefix); configuration in $(meson introspect --buildoptions build |
		python3 -c 'import json,sys; o={x["name"]: x["value"] for x in json.load(sys.stdin)}; import os.path; print(os.path.join(o["prefix"], o["sysconfdir"], "smig"))')"
fi
