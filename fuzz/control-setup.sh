#!/usr/bin/env bash
# control-setup.sh DIR: the configuration fuzz_control runs its daemon on
# (export SMIG_FUZZ_CONTROL=DIR). A loopback pair of hosts as the tests
# make them (lib.sh cluster_make: PKI, host table, IVT, pools); fuzz_control
# runs h1, and h2 is never started, so whatever goes there finds no one.
# The policy adds "nobody" with every permission but vm.start and
# ivt.enrol: the fuzzed client may define, view, migrate and evacuate, but
# starts no QEMU and leaves the golden values as made. SMIG_BUILD picks the
# build whose smig makes the PKI (default build).
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: control-setup.sh DIR" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../tests/harness/lib.sh"
dir=$1
rm -rf "$dir"
SMIG_LOG_LEVEL=error cluster_make "$dir" 2 >/dev/null ||
	{ echo "control-setup.sh: cannot make the hosts in $dir" >&2; exit 1; }
cat >"$dir/h1.policy.json" <<'JSON'
{
  "roles": {"admin": ["*"], "migrate-in": ["vm.migrate"],
            "fuzzed": ["vm.migrate", "vm.stop", "vm.define", "vm.view", "host.evacuate",
                       "host.view", "policy.view", "audit.view", "ids.manage"]},
  "bindings": [
    {"name": "root-is-admin", "users": ["root"], "role": "admin"},
    {"name": "fuzzed-client", "users": ["nobody"], "role": "fuzzed"},
    {"name": "cluster-peers", "peers": ["h*"], "role": "migrate-in"}
  ]
}
JSON
echo "control-setup.sh: SMIG_FUZZ_CONTROL=$dir"
