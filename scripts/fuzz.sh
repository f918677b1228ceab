#!/usr/bin/env bash
# make fuzz: builds the libFuzzer targets with clang (ASan+UBSan) and runs
# each for SECONDS (default 60) on a scratch copy of its seed corpus.
# Crashes are kept in fuzz-out/; new interesting inputs are not committed
# automatically.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
CC=clang scripts/build.sh build-fuzz -Dfuzz=true -Dtests=false \
	-Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debugoptimized
mkdir -p fuzz-out
status=0
for t in build-fuzz/fuzz/fuzz_*; do
	[ -f "$t" ] && [ -x "$t" ] || continue
	name=$(basename "$t")
	corpus=fuzz-out/corpus-${name#fuzz_}
	rm -rf "$corpus"
	cp -r "fuzz/corpus/${name#fuzz_}" "$corpus"
	echo "== $name for ${seconds}s"
	if ! "$t" -max_total_time="$seconds" -max_len=65536 -artifact_prefix="fuzz-out/$name-" \
		-print_final_stats=1 "$corpus" 2>"fuzz-out/$name.log"; then
		echo "$name: crash, see fuzz-out/$name.log" >&2
		status=1
	fi
	grep -E 'stat::number_of_executed_units|stat::new_units_added' "fuzz-out/$name.log" || true
done
exit $status
