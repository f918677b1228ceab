#!/usr/bin/env bash
# Installs what smig needs to build, test and demo on Debian 12, with
# apt-get. Idempotent and silent when nothing is missing.
set -euo pipefail

packages=(
	gcc make pkg-config meson ninja-build
	libssl-dev libjansson-dev libcmocka-dev
	clang libclang-rt-14-dev clang-tidy cppcheck
	openssl iproute2 jq procps psmisc socat git
	gcc-multilib qemu-system-x86 swtpm swtpm-tools
	libtss2-dev tpm2-tools libnftables-dev nftables
	gnuplot-nox
)

missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing packages: ${missing[*]}; run as root or install them" >&2
	exit 1
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
