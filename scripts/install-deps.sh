#!/usr/bin/env bash
# Installs what smig needs to build, test and demo on Debian 12, with
# apt-get, and says what it installs. Idempotent and silent when nothing is
# missing. With --build, only what building smig needs (make build).
set -euo pipefail

build_only=false
[ "${1:-}" = --build ] && build_only=true

# what building smig needs
build_packages=(
	gcc make pkg-config meson ninja-build
	libssl-dev libjansson-dev libseccomp-dev libsystemd-dev libtss2-dev libnftables-dev
	libmicrohttpd-dev libcurl4-openssl-dev scdoc
)
# what its tests, fuzzing, lint, the demo, the benchmark and the package
# build need besides
packages=(
	"${build_packages[@]}"
	systemd libcmocka-dev
	clang libclang-rt-14-dev clang-tidy cppcheck
	openssl iproute2 jq procps psmisc socat git curl
	gcc-multilib qemu-system-x86 qemu-utils ovmf swtpm swtpm-tools
	tpm2-tools nftables
	iptables libnetfilter-queue-dev
	gnuplot-nox cpio
	mmdebstrap dosfstools mtools fdisk e2fsprogs
	dpkg-dev debhelper lintian man-db bash-completion
)

$build_only && packages=("${build_packages[@]}")
missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done
# The Linux test guest boots Debian's own kernel: the linux-image package,
# unpacked here (not installed), with only the kernel, its config and the
# pvpanic modules kept.
kdir=${SMIG_GUEST_KERNEL_DIR:-/var/cache/smig/guest-kernel}
need_kernel=false
# the kernel, and the modules the guest loads (virtio-net for the network tests)
if ! $build_only; then
	compgen -G "$kdir/boot/vmlinuz-*" >/dev/null &&
		compgen -G "$kdir/lib/modules/*/kernel/drivers/net/virtio_net.ko" >/dev/null &&
		compgen -G "$kdir/lib/modules/*/kernel/drivers/acpi/button.ko" >/dev/null || need_kernel=true
fi

# promtool (Prometheus' own checker of the metrics page) from Debian's
# prometheus package, unpacked here, not installed: installing it would run
# a Prometheus server on the machine
promdir=${SMIG_PROMTOOL_DIR:-/var/cache/smig/promtool}
need_promtool=false
$build_only || [ -x "$promdir/promtool" ] || need_promtool=true

# etcd and etcdctl (the fleet store's tests run a cluster of their own in
# the test namespaces) from Debian's etcd-server and etcd-client, unpacked
# here, not installed: installing them would run an etcd on the machine
etcddir=${SMIG_ETCD_DIR:-/var/cache/smig/etcd}
need_etcd=false
$build_only || { [ -x "$etcddir/etcd" ] && [ -x "$etcddir/etcdctl" ]; } || need_etcd=true

# smigd's unprivileged worker runs as a system user of its own (its default
# confinement.worker_user): made here for the tests and the demo, as the
# Debian package makes it on a real host
need_user=false
$build_only || getent passwd smig >/dev/null || need_user=true

[ ${#missing[@]} -eq 0 ] && ! $need_kernel && ! $need_user && ! $need_promtool && ! $need_etcd && exit 0

if [ "$(id -u)" -ne 0 ]; then
	what="${missing[*]}"
	$need_kernel && what="${what:+$what, }the Linux test guest's kernel in $kdir"
	$need_user && what="${what:+$what, }the system user smig"
	$need_promtool && what="${what:+$what, }promtool in $promdir"
	$need_etcd && what="${what:+$what, }etcd and etcdctl in $etcddir"
	echo "install-deps: missing $what; run this as root (it uses apt-get)" >&2
	exit 1
fi
if $need_user; then
	echo "install-deps: adding the system user smig (smigd's worker)" >&2
	useradd --system --user-group --no-create-home --home-dir /nonexistent \
		--shell /usr/sbin/nologin --comment "smig worker" smig
fi
export DEBIAN_FRONTEND=noninteractive
if [ ${#missing[@]} -gt 0 ]; then
	echo "install-deps: installing ${missing[*]}" >&2
	apt-get update -qq >/dev/null
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if $need_kernel; then
	pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
	if [ -z "$pkg" ]; then
		apt-get update -qq >/dev/null
		pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
	fi
	echo "install-deps: fetching $pkg (the Linux test guest's kernel) into $kdir" >&2
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	(cd "$tmp" && apt-get download -q "$pkg" >/dev/null 2>&1) ||
		{ echo "install-deps: apt-get download $pkg failed" >&2; exit 1; }
	dpkg-deb -x "$tmp"/"$pkg"_*.deb "$tmp/x"
	kver=${pkg#linux-image-}
	mkdir -p "$kdir/boot"
	rm -f "$kdir"/boot/vmlinuz-* # the marker of a complete fetch, written last
	# pvpanic (a panic reaches QEMU), virtio PCI, virtio-net with its failover
	# helpers, virtio-blk, efivarfs, the ACPI power button and evdev: all the
	# guest's /init loads
	for m in drivers/misc/pvpanic drivers/virtio drivers/net/virtio_net.ko \
		drivers/net/net_failover.ko net/core/failover.ko drivers/block/virtio_blk.ko \
		fs/efivarfs drivers/acpi/button.ko drivers/input/evdev.ko; do
		mkdir -p "$(dirname "$kdir/lib/modules/$kver/kernel/$m")"
		cp -a "$tmp/x/lib/modules/$kver/kernel/$m" "$(dirname "$kdir/lib/modules/$kver/kernel/$m")/"
	done
	cp "$tmp/x/boot/config-$kver" "$kdir/boot/"
	cp "$tmp/x/boot/vmlinuz-$kver" "$kdir/boot/" # last: its presence means done
fi
if $need_promtool; then
	echo "install-deps: fetching prometheus (for promtool) into $promdir" >&2
	ptmp=$(mktemp -d)
	(cd "$ptmp" && apt-get download -q prometheus >/dev/null 2>&1) || {
		apt-get update -qq >/dev/null
		(cd "$ptmp" && apt-get download -q prometheus >/dev/null 2>&1)
	} || { echo "install-deps: apt-get download prometheus failed" >&2; rm -rf "$ptmp"; exit 1; }
	dpkg-deb -x "$ptmp"/prometheus_*.deb "$ptmp/x"
	mkdir -p "$promdir"
	cp "$ptmp/x/usr/bin/promtool" "$promdir/promtool.tmp"
	mv "$promdir/promtool.tmp" "$promdir/promtool"
	rm -rf "$ptmp"
fi
if $need_etcd; then
	echo "install-deps: fetching etcd-server and etcd-client into $etcddir" >&2
	etmp=$(mktemp -d)
	(cd "$etmp" && apt-get download -q etcd-server etcd-client >/dev/null 2>&1) || {
		apt-get update -qq >/dev/null
		(cd "$etmp" && apt-get download -q etcd-server etcd-client >/dev/null 2>&1)
	} || { echo "install-deps: apt-get download etcd-server etcd-client failed" >&2; rm -rf "$etmp"; exit 1; }
	for f in "$etmp"/etcd-*.deb; do dpkg-deb -x "$f" "$etmp/x"; done
	mkdir -p "$etcddir"
	for b in etcdctl etcd; do # etcd last: both there means done
		cp "$etmp/x/usr/bin/$b" "$etcddir/$b.tmp"
		mv "$etcddir/$b.tmp" "$etcddir/$b"
	done
	rm -rf "$etmp"
fi
