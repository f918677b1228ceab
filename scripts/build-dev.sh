#!/usr/bin/env bash
# build-dev.sh: the build tree (build) with what make check, make demo,
# make bench and make soak need besides smig itself: the unit tests, the
# test guests and the test and measuring tools. make build leaves them out.
set -euo pipefail
cd "$(dirname "$0")/.."
exec scripts/build.sh build -Dtests=true -Dtest_tools=true "$@"
