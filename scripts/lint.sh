#!/usr/bin/env bash
# make lint: clang-tidy (checks in .clang-tidy) and cppcheck over the
# project's C sources, using the build tree's compile_commands.json.
# With --tap, prints one TAP result per tool (make check uses this).
set -uo pipefail
cd "$(dirname "$0")/.."
tap=false
[ "${1:-}" = --tap ] && tap=true
build=${SMIG_LINT_BUILD:-build}
# SMIG_LINT_SCOPE=src: smig's own sources only (make check, for time); make
# lint takes the tests, the harness, the fuzz targets and the benchmark too
if [ "${SMIG_LINT_SCOPE:-all}" = src ]; then
	mapfile -t srcs < <(git ls-files 'src/*.c')
else
	mapfile -t srcs < <(git ls-files 'src/*.c' 'tests/unit/*.c' 'tests/harness/*.c' 'fuzz/*.c' 'bench/*.c')
fi

run() {
	local n=$1 name=$2 out
	shift 2
	if $tap; then
		out=$("$@" 2>&1)
		if [ $? -eq 0 ]; then
			echo "ok $n - $name"
		else
			echo "not ok $n - $name"
			grep -v ' warnings\? generated\.$\|^Suppressed \|^Use -header-filter' <<<"$out" |
				sed 's/^/# /' | head -40
			return 1
		fi
	else
		echo "== $name"
		"$@"
	fi
}

# smigd's layers (docs/architecture.md, "smigd's layers"): a file includes
# headers of its own folder, or the face of a part below it (common/ has no
# single face); the warden (root) nothing of the worker's but common/.
layers() {
	local rank=(common core vm trust policy peer migration control worker)
	declare -A face=([core]=smigd.h [vm]=vm.h [trust]=trust.h [policy]=authz.h [peer]=peer.h
		[migration]=migrate.h [control]=control.h [worker]=worker.h [warden]=warden.h)
	local bad=0 f dir inc to rf rt
	rank_of() {
		local i
		for i in "${!rank[@]}"; do
			[ "${rank[$i]}" = "$1" ] && { echo "$i"; return; }
		done
		echo -1
	}
	while IFS= read -r f; do
		dir=${f#src/smigd/}
		dir=${dir%%/*}
		[ "$dir" = main.c ] && dir=main
		while IFS= read -r inc; do
			to=${inc%%/*}
			[ "$to" = "$dir" ] && continue
			if [ "$to" != common ] && [ "$inc" != "$to/${face[$to]:-}" ]; then
				echo "$f: includes $inc, the inside of $to/ (its face is $to/${face[$to]:-?})"
				bad=1
				continue
			fi
			if [ "$dir" = warden ]; then
				[ "$to" = common ] || { echo "$f: the warden includes $inc (only common/ and its own)"; bad=1; }
				continue
			fi
			[ "$dir" = main ] && continue
			if [ "$to" = warden ]; then
				echo "$f: the worker includes $inc (the warden's)"; bad=1; continue
			fi
			rf=$(rank_of "$dir"); rt=$(rank_of "$to")
			if [ "$rt" -lt 0 ] || [ "$rf" -lt 0 ] || [ "$rt" -ge "$rf" ]; then
				echo "$f: includes $inc: $to/ does not stand below $dir/"; bad=1
			fi
		done < <(sed -n 's/^#include "\([a-z_]*\/[^"]*\)".*/\1/p' "$f")
	done < <(git ls-files 'src/smigd/*.c' 'src/smigd/*.h'; git ls-files --others --exclude-standard 'src/smigd/*.c' 'src/smigd/*.h')
	return $bad
}

# clang-tidy, one process per core, ten files each (xargs fails if any does)
tidy() {
	printf '%s\0' "${srcs[@]}" |
		xargs -0 -n 10 -P "$(nproc)" clang-tidy -p "$build" --quiet \
			--extra-arg=-Wno-unknown-warning-option
}

$tap && echo "1..3"
status=0
run 1 "clang-tidy clean (${#srcs[@]} files)" tidy || status=1
run 2 "cppcheck clean" \
	cppcheck --quiet -j "$(nproc)" --error-exitcode=1 --enable=warning,performance,portability \
	--inline-suppr --suppress=unknownMacro --std=c11 -D_GNU_SOURCE -DSMIG_VERSION='"lint"' -I src/lib -I src/smigd "${srcs[@]}" ||
	status=1
run 3 "smigd's layers (each part includes only its own folder and those below)" layers || status=1
exit $status
