# smig - the two commands (make demo, make check) and their helpers.
# Everything real happens in scripts/; this file only names the entry points.

.PHONY: all deps build-deps build install deb check demo bench bench-fleet faults fuzz lint soak clean

all: build

# PREFIX for make install (/usr puts the configuration in /etc/smig);
# DESTDIR stages the installed tree somewhere else
PREFIX ?= /usr/local
DESTDIR ?=

deps:
	@scripts/install-deps.sh

build-deps:
	@scripts/install-deps.sh --build

# smig itself: smigd, smig, the unit; only build dependencies are installed
build: build-deps
	@scripts/build.sh build

install: build
	@scripts/install.sh "$(PREFIX)" "$(DESTDIR)"

# the Debian package, into build/deb (dpkg-buildpackage -us -uc -b)
deb: deps
	@scripts/deb.sh

check: deps
	@scripts/check.sh

demo: deps
	@scripts/build-dev.sh
	@scripts/demo.sh

# QEMU plain vs QEMU TLS vs smig, and the relay vs openssl speed; results in
# build/bench-results (BENCH_ARGS: --runs N, --cases "idle busy vtpm", --mf-cases, --channels, --quick, --out DIR)
bench: deps
	@scripts/build-dev.sh
	@bench/bench.sh $(BENCH_ARGS)

# the fleet store at scale: 1,000 simulated hosts and 20,000 VMs in a real
# etcd beside two smigds (sync, watch, list, placement, memory); results in
# build/bench-results/fleet.md (FLEET_ARGS: --hosts N, --vms N, --runs N, --out DIR)
bench-fleet: deps
	@scripts/build-dev.sh
	@bench/fleet.sh $(FLEET_ARGS)

# the guest-survival scenarios (contention, cancel x3 then migrate) 20 times
# each, and QEMU alone with smig's work-around 20 times (SOAK_RUNS=N)
soak: deps
	@scripts/build-dev.sh
	@scripts/soak.sh $(or $(SOAK_RUNS),20)

# the fault matrix: every step of a migration x every fault, the VM's place
# and the guest's checks after each (FAULTS_ARGS: --steps "...", --faults "...");
# the table goes to build/faults/matrix.md
faults: deps
	@scripts/build-san.sh
	@SMIG_BUILD=$(CURDIR)/build-san tests/faults/matrix.sh $(FAULTS_ARGS)

fuzz: deps
	@scripts/fuzz.sh $(or $(FUZZ_SECONDS),60)

lint: deps
	@scripts/build-dev.sh
	@scripts/lint.sh

clean:
	rm -rf build build-san build-fuzz
