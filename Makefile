# smig - the two commands (make demo, make check) and their helpers.
# Everything real happens in scripts/; this file only names the entry points.

.PHONY: all deps build check demo bench faults fuzz lint soak clean

all: build

deps:
	@scripts/install-deps.sh

build: deps
	@scripts/build.sh build

check: deps
	@scripts/check.sh

demo: deps build
	@scripts/demo.sh

# QEMU plain vs QEMU TLS vs smig, and the relay vs openssl speed; results in
# build/bench-results (BENCH_ARGS: --runs N, --cases "idle busy vtpm", --out DIR)
bench: deps build
	@bench/bench.sh $(BENCH_ARGS)

# the guest-survival scenarios (contention, cancel x3 then migrate) 20 times
# each, and QEMU alone with smig's work-around 20 times (SOAK_RUNS=N)
soak: deps build
	@scripts/soak.sh $(or $(SOAK_RUNS),20)

# the fault matrix: every step of a migration x every fault, the VM's place
# and the guest's checks after each (FAULTS_ARGS: --steps "...", --faults "...");
# the table goes to build/faults/matrix.md
faults: deps
	@scripts/build-san.sh
	@SMIG_BUILD=$(CURDIR)/build-san tests/faults/matrix.sh $(FAULTS_ARGS)

fuzz: deps
	@scripts/fuzz.sh $(or $(FUZZ_SECONDS),60)

lint: build
	@scripts/lint.sh

clean:
	rm -rf build build-san build-fuzz
