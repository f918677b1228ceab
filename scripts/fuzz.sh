#!/usr/bin/env bash
# fuzz.sh [--tap] SECONDS [TARGET...]: builds the libFuzzer targets with
# clang (ASan+UBSan) and runs each (default: all) for SECONDS on a scratch
# copy of its seed corpus. make fuzz runs them all for 60 s each (FUZZ_SECONDS);
# make check runs the stateful ones (migproto, control) for a short time with
# --tap. Crashes are kept in fuzz-out/ (with the command that replays them);
# new interesting inputs are not committed automatically.
set -euo pipefail
cd "$(dirname "$0")/.."
tap=
[ "${1:-}" = --tap ] && { tap=1; shift; }
seconds=${1:-60}
shift || true
targets=("$@")
# the targets asked for (and smig, smigd: control-setup.sh makes hosts with them), or all
only=
for name in "${targets[@]}"; do only="$only fuzz/fuzz_$name"; done
[ -n "$only" ] && only="$only src/smig/smig src/smigd/smigd"
SMIG_BUILD_TARGETS=$only CC=clang scripts/build.sh build-fuzz -Dfuzz=true -Dtests=false \
	-Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debugoptimized
if [ ${#targets[@]} -eq 0 ]; then
	for t in build-fuzz/fuzz/fuzz_*; do
		[ -f "$t" ] && [ -x "$t" ] && targets+=("$(basename "$t" | sed 's/^fuzz_//')")
	done
fi
mkdir -p fuzz-out
# fuzz_control runs a daemon on a configuration of its own, below /tmp: a
# state directory's parents must let VMs' uids pass, and a clone's may not
export SMIG_FUZZ_CONTROL=/tmp/smig-fuzz-control.$(printf '%s' "$PWD" | sha256sum | cut -c1-8)
SMIG_BUILD=$PWD/build-fuzz fuzz/control-setup.sh "$SMIG_FUZZ_CONTROL" >/dev/null
[ -n "$tap" ] && echo "1..${#targets[@]}"
status=0 i=0
for name in "${targets[@]}"; do
	i=$((i + 1))
	t=build-fuzz/fuzz/fuzz_$name
	corpus=fuzz-out/corpus-$name
	log=fuzz-out/fuzz_$name.log
	rm -rf "$corpus"
	cp -r "fuzz/corpus/$name" "$corpus"
	[ -n "$tap" ] || echo "== fuzz_$name for ${seconds}s"
	if "$t" -max_total_time="$seconds" -max_len=65536 -timeout=10 \
		-artifact_prefix="fuzz-out/fuzz_$name-" -print_final_stats=1 "$corpus" 2>"$log"; then
		runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo 0)
		new=$(grep -oE 'stat::new_units_added: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo 0)
		if [ -n "$tap" ]; then
			echo "ok $i - fuzz_$name: $runs inputs in ${seconds}s from $(ls "fuzz/corpus/$name" | wc -l) seeds, $new new, no crash"
		else
			echo "$runs inputs, $new new, no crash"
		fi
	else
		status=1
		crash=$(ls -t fuzz-out/fuzz_"$name"-* 2>/dev/null | head -1)
		if [ -n "$tap" ]; then
			echo "not ok $i - fuzz_$name: crashed on $crash (replay: SMIG_FUZZ_CONTROL=$SMIG_FUZZ_CONTROL $t $crash; log $log)"
			grep -m5 -E 'ERROR|SUMMARY|fuzz_' "$log" | sed 's/^/# /'
		else
			echo "fuzz_$name: crash $crash, see $log (replay: SMIG_FUZZ_CONTROL=$SMIG_FUZZ_CONTROL $t $crash)" >&2
		fi
	fi
done
exit $status
