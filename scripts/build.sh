#!/usr/bin/env bash
# Configures and builds one build directory: build.sh DIR [meson options].
# A tree is reconfigured only when it is asked for other options than the
# ones it was last set up with (kept in DIR/.smig-options); without options
# an existing tree keeps its own. SMIG_BUILD_TARGETS (ninja targets) builds
# only those and what they need.
set -euo pipefail
dir=$1
shift
want="$*"
if [ ! -f "$dir/build.ninja" ]; then
	mkdir -p "$(dirname "$dir")"
	meson setup "$dir" "$@" >"$dir.setup.log" 2>&1 || { cat "$dir.setup.log" >&2; exit 1; }
	rm -f "$dir.setup.log"
	printf '%s\n' "$want" >"$dir/.smig-options"
elif [ $# -gt 0 ] && [ "$(cat "$dir/.smig-options" 2>/dev/null)" != "$want" ]; then
	meson setup --reconfigure "$dir" "$@" >"$dir.setup.log" 2>&1 || { cat "$dir.setup.log" >&2; exit 1; }
	rm -f "$dir.setup.log"
	printf '%s\n' "$want" >"$dir/.smig-options"
fi
# shellcheck disable=SC2086 # a list of targets
ninja -C "$dir" ${SMIG_BUILD_TARGETS:-} >/dev/null || ninja -C "$dir" ${SMIG_BUILD_TARGETS:-}
