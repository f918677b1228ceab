#!/usr/bin/env bash
# make soak: long runs of what make check runs once. soak.sh RUNS
#  - tests/integration/test_survival.sh with RUNS rounds (a busy Linux guest
#    migrated through smig beside a second busy guest, and after three
#    cancelled migrations), TAP;
#  - tests/soak/pingpong.sh: a busy vTPM guest moved h1 <-> h2 100 times and
#    the Debian guest 20 times with a TCP stream through it (SOAK_MOVES,
#    SOAK_DEBIAN_MOVES), TAP;
#  - bench/tcg-repro.sh: QEMU alone with smig's options and RAM size, RUNS
#    migrations after three cancellations and RUNS under load.
# Ends with "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
runs=${1:-20}
export SMIG_BUILD=${SMIG_BUILD:-$PWD/build}
log=$(mktemp -d /tmp/smig-soak.XXXXXX)
passed=0 failed=0
SMIG_SURVIVAL_RUNS=$runs bash tests/integration/test_survival.sh | tee "$log/survival.tap"
passed=$((passed + $(grep -c '^ok ' "$log/survival.tap")))
failed=$((failed + $(grep -c '^not ok ' "$log/survival.tap")))
bash tests/soak/pingpong.sh "${SOAK_MOVES:-100}" "${SOAK_DEBIAN_MOVES:-20}" | tee "$log/pingpong.tap"
passed=$((passed + $(grep -c '^ok ' "$log/pingpong.tap")))
failed=$((failed + $(grep -c '^not ok ' "$log/pingpong.tap")))
for args in "--cancels 3" "--load guest"; do
	# shellcheck disable=SC2086
	bench/tcg-repro.sh --runs "$runs" --mem 524280k --auto-converge $args | tee "$log/repro.txt"
	passed=$((passed + $(grep -c 'verdict OK' "$log/repro.txt")))
	failed=$((failed + $(grep -c 'verdict FAIL' "$log/repro.txt")))
done
echo "logs: $log"
echo
echo "$passed passed, $failed failed"
