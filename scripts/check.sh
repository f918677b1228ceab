#!/usr/bin/env bash
# make check: builds a normal and an ASan+UBSan tree, runs every unit test
# in both, the fuzz targets over their seed corpora, the stateful fuzz
# targets (a migration's protocol, the control API of a whole daemon) under
# libFuzzer for CHECK_FUZZ_SECONDS each (default 5; make fuzz runs them
# long), clang-tidy and cppcheck over src/ (make lint over everything; at
# the lowest CPU priority beside the integration tests), and the integration
# tests against the real binaries. Every test speaks TAP; the last line is
# "N passed, N failed" and the exit status is non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."

scripts/build-dev.sh || exit 1
scripts/build-san.sh || exit 1

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export CMOCKA_MESSAGE_OUTPUT=TAP

passed=0
failed=0
failures=()
log_dir=$(mktemp -d /tmp/smig-check.XXXXXX)
chmod 0711 "$log_dir" # fuzz_control's daemon keeps its state below: VMs' uids pass through

# run_tap NAME CMD...: runs a TAP producer, counts its results, and counts
# a crash or a short plan as one more failure.
run_tap() {
	local name=$1
	shift
	local out="$log_dir/$(echo "$name" | tr '/ ' '__').log"
	local rc ok notok plan t0=$SECONDS
	"$@" >"$out" 2>&1
	rc=$?
	ok=$(grep -cE '^ok ' "$out")
	notok=$(grep -cE '^not ok ' "$out")
	plan=$(grep -m1 -oE '^1\.\.[0-9]+' "$out" | cut -d. -f3)
	passed=$((passed + ok))
	failed=$((failed + notok))
	if [ "$notok" -gt 0 ]; then
		failures+=("$name: $(grep -E '^not ok ' "$out" | head -5 | tr '\n' ';')")
	fi
	if { [ -n "$plan" ] && [ $((ok + notok)) -lt "$plan" ]; } || { [ "$rc" -ne 0 ] && [ "$notok" -eq 0 ]; }; then
		failed=$((failed + 1))
		failures+=("$name: exited $rc after $((ok + notok)) of ${plan:-?} results")
	fi
	printf '%-34s %3d ok %3d failed %4ds\n' "$name" "$ok" "$notok" $((SECONDS - t0))
	if [ "$notok" -gt 0 ] || [ "$rc" -ne 0 ]; then
		sed 's/^/    | /' "$out" | tail -40
	fi
}

for t in build/tests/unit/test_*; do
	[ -f "$t" ] && [ -x "$t" ] || continue
	run_tap "unit/$(basename "$t")" "$t"
done
for t in build-san/tests/unit/test_*; do
	[ -f "$t" ] && [ -x "$t" ] || continue
	run_tap "unit-asan/$(basename "$t")" "$t"
done
# fuzz_control runs a whole daemon, on hosts of its own
export SMIG_FUZZ_CONTROL=$log_dir/control-hosts
SMIG_BUILD=$PWD/build-san fuzz/control-setup.sh "$SMIG_FUZZ_CONTROL" >/dev/null || exit 1
for t in build-san/fuzz/fuzz_*; do
	[ -f "$t" ] && [ -x "$t" ] || continue
	name=$(basename "$t")
	run_tap "fuzz-corpus/$name" "$t" "fuzz/corpus/${name#fuzz_}"
done
run_tap "fuzz-run" scripts/fuzz.sh --tap "${CHECK_FUZZ_SECONDS:-5}" migproto control
# smig's sources (src/); make lint also takes the tests, harness, fuzz targets and bench.
# clang-tidy's static analyzer is nearly all of its time and the integration
# tests mostly wait on their guests: it runs beside them at the lowest CPU
# priority, and its results are counted after them
lint_out=$log_dir/lint.bg
lint_t0=$SECONDS
(
	SMIG_LINT_SCOPE=src nice -n 19 scripts/lint.sh --tap >"$lint_out" 2>&1
	echo $? >"$lint_out.rc"
	echo $((SECONDS - lint_t0)) >"$lint_out.s"
) &
lint_pid=$!
trap 'kill 0' INT TERM # an interrupted run takes its background lint with it

# integration tests drive the sanitizer build of smigd and smig, so memory
# errors on real network paths fail the run too
export SMIG_BUILD=$PWD/build-san
for t in tests/integration/test_*.sh; do
	run_tap "integration/$(basename "$t" .sh)" bash "$t"
done
wait "$lint_pid"
run_tap "lint (beside the integration tests, $(cat "$lint_out.s" 2>/dev/null || echo ?) s)" \
	bash -c 'cat "$1"; exit "$(cat "$1.rc" 2>/dev/null || echo 1)"' lint "$lint_out"

if [ ${#failures[@]} -gt 0 ]; then
	echo
	echo "failures:"
	printf '  %s\n' "${failures[@]}"
	echo "logs: $log_dir"
else
	rm -rf "$log_dir"
fi
echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
