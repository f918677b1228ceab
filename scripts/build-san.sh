#!/usr/bin/env bash
# build-san.sh: the ASan+UBSan tree (build-san) that make check's unit and
# integration tests and make faults run: sanitizers abort on the first
# error, smigd honours SMIG_STOP_AT (stop points for fault injection) and
# has the test hooks (debug.* control commands, src/smigd/control/testhooks.c).
set -euo pipefail
cd "$(dirname "$0")/.."
exec scripts/build.sh build-san -Dtests=true -Dtest_tools=true -Db_sanitize=address,undefined -Db_lundef=false \
	-Dc_args=-fno-sanitize-recover=all -Dbuildtype=debug -Dstop_points=true -Dtest_hooks=true
