#!/usr/bin/env bash
# seed-corpus.sh [TEST...]: refreshes the seed corpora of the stateful
# targets from real sessions. Builds smig with test hooks (build-trace),
# runs the given integration tests (default: test_migrate, test_cli and
# test_faults: whole migrations, refusals, cancels, commits resolved after
# faults, and the CLI's every command) with SMIG_TRACE_DIR set, and keeps
# each distinct trace under its hash: migrations in fuzz/corpus/migproto,
# control clients in fuzz/corpus/control.
set -euo pipefail
cd "$(dirname "$0")/.."
tests=${*:-test_migrate test_cli test_faults}
scripts/build.sh build-trace -Dstop_points=true -Dbuildtype=debugoptimized
out=$(mktemp -d /tmp/smig-trace.XXXXXX)
trap 'rm -rf "$out"' EXIT
chown smig "$out" && chmod 0700 "$out" # the worker writes the traces, as the smig user
for t in $tests; do
	SMIG_TRACE_DIR=$out SMIG_BUILD=$PWD/build-trace bash "tests/integration/$t.sh" >"$out/$t.log" 2>&1 ||
		echo "seed-corpus: $t failed (its traces are kept all the same)" >&2
done
mkdir -p fuzz/corpus/migproto fuzz/corpus/control
for f in "$out"/*.trace; do
	[ -s "$f" ] || continue
	case $(basename "$f") in
	ctl-*) to=fuzz/corpus/control/ctl ;;
	src-*) to=fuzz/corpus/migproto/src ;;
	*) to=fuzz/corpus/migproto/dst ;;
	esac
	cp "$f" "$to-$(sha1sum <"$f" | cut -c1-12)"
done
echo "seed-corpus: $(ls fuzz/corpus/migproto | wc -l) migration traces, $(ls fuzz/corpus/control | wc -l) control traces"
