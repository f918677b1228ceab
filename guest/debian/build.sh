#!/usr/bin/env bash
# build.sh [OUT]: the Debian 12 test guest, a qcow2 disk made from Debian's
# packages by mmdebstrap (run as root). The disk boots under UEFI from its
# own EFI system partition (systemd-boot, Debian's kernel and initramfs)
# and runs systemd with:
#   - systemd-networkd giving the first Ethernet NIC ADDR (default
#     10.77.0.240/24, the test network of tests/harness/cluster);
#   - a TCP echo service on port 7 (a systemd socket unit, one cat per
#     connection);
#   - the QEMU guest agent (qemu-ga) on the virtio-serial port
#     org.qemu.guest_agent.0, when the VM has one (spec "guest_agent");
#   - a line "smig-debian: up ADDR" on the serial console once the network
#     is configured and the services listen, then "smig-debian: hb N up S"
#     every 5 s (N counts from 1; S is the guest's uptime in seconds).
# The result is cached: OUT (default $SMIG_IMAGE_CACHE/debian-12-KEY.qcow2,
# SMIG_IMAGE_CACHE defaulting to /var/cache/smig/images) where KEY is a digest
# of this script and ADDR, so a changed recipe makes a new image and an
# unchanged one is built once per machine (and replaces the cached image of
# an older recipe). Prints the image's path.
#   SMIG_DEBIAN_ADDR   the guest's static address with prefix length
#   SMIG_DEBIAN_MIRROR the Debian mirror (default http://deb.debian.org/debian,
#                      with bookworm-updates and the security archive)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
addr=${SMIG_DEBIAN_ADDR:-10.77.0.240/24}
cache=${SMIG_IMAGE_CACHE:-/var/cache/smig/images}
key=$( (cat "$0" "$here"/*.socket "$here"/*.service; echo "$addr") | sha256sum | cut -c1-12)
out=${1:-$cache/debian-12-$key.qcow2}
if [ -s "$out" ]; then
	echo "$out"
	exit 0
fi
die() {
	echo "guest/debian/build.sh: $*" >&2
	exit 1
}
[ "$(id -u)" -eq 0 ] || die "building the Debian guest image needs root (mmdebstrap unpacks as root); run it as root or use a cached image in $cache"
for t in mmdebstrap mkfs.ext4 mkfs.vfat mcopy sfdisk qemu-img; do
	command -v "$t" >/dev/null || die "$t is missing; run scripts/install-deps.sh (as root)"
done
case $addr in
*/*) ;;
*) die "SMIG_DEBIAN_ADDR=$addr needs a prefix length, e.g. 10.77.0.240/24" ;;
esac
# stdout carries only the image's path; everything the tools print goes to stderr
exec 3>&1 1>&2
mkdir -p "$(dirname "$out")"
work=$(mktemp -d "$(dirname "$out")/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root
t0=$(date +%s)

# Drivers a virtio VM never needs stay out of the image: less to unpack,
# fewer modules for udev to load at boot (modules.dep is rebuilt after the
# excludes). The initramfs holds only what finds and mounts the root disk.
excl=()
for d in drivers/gpu drivers/net/ethernet drivers/net/wireless drivers/media drivers/infiniband \
	drivers/staging drivers/bluetooth drivers/isdn drivers/iio drivers/hwmon drivers/input/touchscreen \
	drivers/usb drivers/net/can drivers/mtd drivers/thunderbolt drivers/watchdog drivers/cpufreq \
	drivers/input/misc drivers/input/joystick drivers/edac arch/x86/kvm sound net/wireless \
	net/mac80211 net/bluetooth; do
	excl+=("--dpkgopt=path-exclude=/lib/modules/*/kernel/$d/*")
done
if [ -n "${SMIG_DEBIAN_MIRROR:-}" ]; then
	mirrors=("deb $SMIG_DEBIAN_MIRROR bookworm main")
else
	mirrors=("deb http://deb.debian.org/debian bookworm main"
		"deb http://deb.debian.org/debian bookworm-updates main"
		"deb http://deb.debian.org/debian-security bookworm-security main")
fi
echo "guest/debian/build.sh: mmdebstrap bookworm into $root" >&2
mmdebstrap --quiet --variant=minbase --mode=root \
	--include=systemd,systemd-sysv,udev,dbus,iproute2,linux-image-amd64,systemd-boot-efi,zstd,qemu-guest-agent \
	--dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
	--dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias' \
	"${excl[@]}" \
	--essential-hook='mkdir -p "$1/etc/initramfs-tools/conf.d" "$1/usr/share/initramfs-tools/modules.d" &&
		printf "MODULES=list\nCOMPRESS=zstd\n" >"$1/etc/initramfs-tools/conf.d/smig" &&
		printf "virtio_pci\nvirtio_blk\nvirtio_scsi\nsd_mod\next4\n" >"$1/usr/share/initramfs-tools/modules.d/smig"' \
	bookworm "$root" "${mirrors[@]}" </dev/null >&2

# --- the system: host name, root file system, network, services ---
echo smig-debian >"$root/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 smig-debian\n' >"$root/etc/hosts"
printf 'LABEL=smig-root / ext4 errors=remount-ro 0 1\n' >"$root/etc/fstab"
: >"$root/etc/machine-id" # made on first boot
mkdir -p "$root/etc/systemd/network"
cat >"$root/etc/systemd/network/10-lan.network" <<EOF
[Match]
Type=ether
Name=en* eth*

[Network]
Address=$addr
LinkLocalAddressing=no
IPv6AcceptRA=no
EOF
cp "$here/echo.socket" "$here/echo@.service" "$here/smig-ready.service" "$here/smig-heartbeat.service" \
	"$root/etc/systemd/system/"
systemctl --root="$root" enable systemd-networkd.service echo.socket smig-ready.service \
	smig-heartbeat.service >/dev/null 2>&1
systemctl --root="$root" set-default multi-user.target >/dev/null 2>&1
# nothing in this guest needs the network to be waited for at boot
systemctl --root="$root" mask systemd-networkd-wait-online.service >/dev/null 2>&1
kver=$(ls "$root/lib/modules")
[ -f "$root/boot/vmlinuz-$kver" ] && [ -f "$root/boot/initrd.img-$kver" ] ||
	die "mmdebstrap left no kernel and initramfs for $kver in $root/boot"

# --- the disk: GPT, a 64 MiB EFI system partition, the root file system ---
esp_mib=64
root_mib=$(($(du -sm "$root" | cut -f1) * 5 / 4 + 128))
mkfs.vfat -C -n SMIG-ESP "$work/esp.img" $((esp_mib * 1024)) >/dev/null
export MTOOLS_SKIP_CHECK=1
mmd -i "$work/esp.img" ::/EFI ::/EFI/BOOT ::/loader ::/loader/entries
mcopy -i "$work/esp.img" "$root/usr/lib/systemd/boot/efi/systemd-bootx64.efi" ::/EFI/BOOT/BOOTX64.EFI
mcopy -i "$work/esp.img" "$root/boot/vmlinuz-$kver" ::/vmlinuz
mcopy -i "$work/esp.img" "$root/boot/initrd.img-$kver" ::/initrd.img
printf 'timeout 0\ndefault debian.conf\n' >"$work/loader.conf"
printf 'title Debian 12 (smig test guest)\nlinux /vmlinuz\ninitrd /initrd.img\noptions root=LABEL=smig-root ro console=ttyS0 quiet panic=-1\n' \
	>"$work/debian.conf"
mcopy -i "$work/esp.img" "$work/loader.conf" ::/loader/loader.conf
mcopy -i "$work/esp.img" "$work/debian.conf" ::/loader/entries/debian.conf
mkfs.ext4 -q -L smig-root -d "$root" "$work/root.img" "${root_mib}M"
truncate -s $((1 + esp_mib + root_mib + 1))M "$work/disk.raw"
sfdisk -q "$work/disk.raw" <<EOF
label: gpt
start=1MiB, size=${esp_mib}MiB, type=U, name=esp
start=$((1 + esp_mib))MiB, size=${root_mib}MiB, type=L, name=root
EOF
dd if="$work/esp.img" of="$work/disk.raw" bs=1M seek=1 conv=notrunc,sparse status=none
dd if="$work/root.img" of="$work/disk.raw" bs=1M seek=$((1 + esp_mib)) conv=notrunc,sparse status=none
qemu-img convert -f raw -O qcow2 "$work/disk.raw" "$work/disk.qcow2"
mv "$work/disk.qcow2" "$out"
# images of older recipes in the cache go: each machine keeps one
[ -n "${1:-}" ] || find "$cache" -maxdepth 1 -name 'debian-12-*.qcow2' ! -name "${out##*/}" -delete
echo "guest/debian/build.sh: $out ($(du -m "$out" | cut -f1) MiB, kernel $kver, address $addr) in $(($(date +%s) - t0)) s"
echo "$out" >&3
