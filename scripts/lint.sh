#!/usr/bin/env bash
# make lint: clang-tidy (checks in .clang-tidy) and cppcheck over the
# project's C sources, using the build tree's compile_commands.json.
# With --tap, prints one TAP result per tool (make check uses this).
set -uo pipefail
cd "$(dirname "$0")/.."
tap=false
[ "${1:-}" = --tap ] && tap=true
build=${SMIG_LINT_BUILD:-build}
mapfile -t srcs < <(git ls-files 'src/*.c' 'tests/unit/*.c' 'tests/harness/*.c' 'fuzz/*.c' 'bench/*.c')

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

$tap && echo "1..2"
status=0
run 1 "clang-tidy clean (${#srcs[@]} files)" \
	clang-tidy -p "$build" --quiet --extra-arg=-Wno-unknown-warning-option "${srcs[@]}" || status=1
run 2 "cppcheck clean" \
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
	--inline-suppr --suppress=unknownMacro --std=c11 -D_GNU_SOURCE -DSMIG_VERSION='"lint"' -I src/lib "${srcs[@]}" ||
	status=1
exit $status
