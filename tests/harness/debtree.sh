# debtree.sh - fresh Debian 12 trees for the package's tests (source it).
# deb_base DEB: prints the path of a tarball of a minimal Debian 12 tree
# with what DEB depends on and systemd (a real host's init), made by
# mmdebstrap from Debian's archive once per Depends line and cached in
# SMIG_IMAGE_CACHE (default /var/cache/smig/images). deb_tree TAR DIR:
# unpacks it into DIR. tree_run DIR [NETNS] CMD...: runs CMD in the tree, in
# mount, pid, uts and ipc namespaces of its own (and network namespace
# NETNS when given), the tree its root file system (pivot_root, as a
# container's) with /dev, /sys and a /proc of its own mounted.

deb_base() {
	local deb=$1 cache=${SMIG_IMAGE_CACHE:-/var/cache/smig/images} deps key base tmp mirrors
	deps=$(dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed 's/(.*)//; s/|.*//; s/ //g' | grep . | sort -u | tr '\n' ',')
	deps=${deps%,},systemd
	key=$(printf '%s' "$deps" | sha256sum | cut -c1-16)
	base=$cache/deb-base-$key.tar
	if [ ! -f "$base" ]; then
		mkdir -p "$cache"
		if [ -n "${SMIG_DEBIAN_MIRROR:-}" ]; then
			mirrors=("deb $SMIG_DEBIAN_MIRROR bookworm main")
		else
			mirrors=("deb http://deb.debian.org/debian bookworm main"
				"deb http://deb.debian.org/debian bookworm-updates main"
				"deb http://deb.debian.org/debian-security bookworm-security main")
		fi
		echo "debtree: making the base tree ($deps) into $base" >&2
		# a .tar name: mmdebstrap writes a tarball there (a name without one is a directory to it)
		tmp=$(mktemp --suffix=.tar "$cache/.deb-base.XXXXXX")
		mmdebstrap --quiet --variant=minbase --mode=root --include="$deps" \
			--dpkgopt='path-exclude=/usr/share/locale/*' \
			bookworm "$tmp" "${mirrors[@]}" </dev/null >"$tmp.log" 2>&1 ||
			{ tail -20 "$tmp.log" >&2; rm -f "$tmp" "$tmp.log"; return 1; }
		rm -f "$cache"/deb-base-*.tar "$tmp.log"
		mv "$tmp" "$base"
	fi
	echo "$base"
}

deb_tree() {
	mkdir -p "$2" && tar -C "$2" -xf "$1"
}

tree_run() {
	local tree=$1 ns=
	shift
	if [ -n "${1:-}" ] && [ -e "/run/netns/$1" ]; then
		ns=$1
		shift
	fi
	# the network namespace by nsenter, not ip netns exec, whose fresh /sys
	# would have no cgroup file systems for the VMs' cgroups
	${ns:+nsenter "--net=/run/netns/$ns"} unshare --mount --pid --uts --ipc --fork --propagation private \
		sh -c 'mount --bind "$0" "$0" && mount --rbind /dev "$0/dev" && mount --rbind /sys "$0/sys" &&
			mount -t proc proc "$0/proc" && cd "$0" && mkdir -p .oldroot && pivot_root . .oldroot &&
			umount -l /.oldroot && exec "$@"' "$tree" "$@"
}
