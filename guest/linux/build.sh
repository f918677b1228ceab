#!/usr/bin/env bash
# build.sh OUTDIR: the Linux test guest. OUTDIR/vmlinuz is the kernel of
# Debian's linux-image package (unpacked by scripts/install-deps.sh into
# SMIG_GUEST_KERNEL_DIR), OUTDIR/initrd.img a cpio archive holding only
# memcheck as /init and the kernel modules it loads (pvpanic, virtio-net,
# the ACPI button and evdev).
set -euo pipefail
out=$1
src=$(cd "$(dirname "$0")" && pwd)
kdir=${SMIG_GUEST_KERNEL_DIR:-/var/cache/smig/guest-kernel}
vmlinuz=$(ls "$kdir"/boot/vmlinuz-* 2>/dev/null | head -1 || true)
if [ -z "$vmlinuz" ]; then
	echo "guest/linux/build.sh: no Debian kernel under $kdir/boot; run scripts/install-deps.sh (as root) to fetch it" >&2
	exit 1
fi
kver=${vmlinuz##*/vmlinuz-}
mkdir -p "$out"
root=$(mktemp -d "$out/initrd.XXXXXX")
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/lib/modules" "$root/dev" "$root/proc"
${CC:-gcc} -O2 -Wall -Wextra -Werror -std=gnu11 -static -pthread -o "$root/init" \
	"$src/memcheck.c" "$src/net.c" "$src/efi.c" "$src/power.c"
mods=$kdir/lib/modules/$kver/kernel
for m in drivers/misc/pvpanic/pvpanic drivers/misc/pvpanic/pvpanic-mmio drivers/virtio/virtio \
	drivers/virtio/virtio_ring drivers/virtio/virtio_pci_legacy_dev \
	drivers/virtio/virtio_pci_modern_dev drivers/virtio/virtio_pci net/core/failover \
	drivers/net/net_failover drivers/net/virtio_net fs/efivarfs/efivarfs drivers/acpi/button \
	drivers/input/evdev; do
	cp "$mods/$m.ko" "$root/lib/modules/" || {
		echo "guest/linux/build.sh: $mods/$m.ko is missing; run scripts/install-deps.sh (as root)" >&2
		exit 1
	}
done
(cd "$root" && find . | LC_ALL=C sort | cpio --quiet -o -H newc --owner 0:0) | gzip -1 >"$out/initrd.img.tmp"
mv "$out/initrd.img.tmp" "$out/initrd.img"
cp "$vmlinuz" "$out/vmlinuz"
