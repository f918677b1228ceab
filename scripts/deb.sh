#!/usr/bin/env bash
# make deb: the Debian package, built by dpkg-buildpackage -us -uc -b from
# the files git tracks (a copy in build/deb/smig-VERSION, so the working tree and its
# build directories stay out of it), then checked by lintian, which must
# report no errors. The .deb is left in build/deb, with the digest of the
# files it was built from: a second call on the same files (test_deb, then
# test_install in make check) takes that package again.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$PWD/build/deb
version=$(dpkg-parsechangelog -l debian/changelog -S Version)
src=$out/smig-$version
tree=$(git ls-files -z --cached --others --exclude-standard | LC_ALL=C sort -z |
	xargs -0 sha256sum -- | sha256sum | cut -d' ' -f1)
if [ -f "$out/tree.sha256" ] && [ "$(cat "$out/tree.sha256")" = "$tree" ] &&
	deb=$(ls "$out"/smig_"$version"_*.deb 2>/dev/null); then
	echo "deb: $deb was built from these very files (and passed lintian): taken again" >&2
	echo "$deb"
	exit 0
fi
rm -rf "$out"
mkdir -p "$src"
git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$src"
echo "deb: dpkg-buildpackage -us -uc -b in $src" >&2
(cd "$src" && dpkg-buildpackage -us -uc -b >"$out/build.log" 2>&1) ||
	{ tail -40 "$out/build.log" >&2; echo "deb: the package build failed; the whole log is $out/build.log" >&2; exit 1; }
deb=$(ls "$out"/smig_"$version"_*.deb)
lintian --fail-on error --suppress-tags-from-file /dev/null "$out"/smig_"$version"_*.changes >"$out/lintian.log" 2>&1 ||
	{ cat "$out/lintian.log" >&2; echo "deb: lintian reports errors (above)" >&2; exit 1; }
echo "$tree" >"$out/tree.sha256"
echo "$deb"
