#!/bin/bash
# Build the L2 test guest into build/lab/guest/: the Debian kernel (vmlinuz)
# and a busybox initramfs (initrd.img) holding the virtio modules, the test
# init (tests/lab/guest/init) and the guest halves of the scenarios
# (tests/lab/guest/*.sh under /lab/guest/). Skipped when no input changed.
# With --tools it builds initrd-tools.img instead: the same plus the
# programs of tests/lab/guest-tools.list (fio, ...) with their libraries,
# for benchmarks; bigger and slower to boot, so not the default.
# LAB_ARCH=arm64 builds build/lab/arm64/guest/ from the arm64 sysroot with
# the same init and scripts (tests/lab/arch.sh says what differs).
#
# usage: tests/lab/build-guest.sh [--tools] [OUTDIR]
set -euo pipefail
trap 'echo "${0##*/}: failed at line $LINENO: $BASH_COMMAND" >&2' ERR

variant=base
if [ "${1:-}" = --tools ]; then
    variant=tools
    shift
fi

LAB=$(cd "$(dirname "$0")" && pwd)
. "$LAB/arch.sh"
. "$LAB/initramfs.sh"
OUT=${1:-$LAB_ARCH_BUILD/guest}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

KERNEL=$(lab_kernel_image)
[ -n "$KERNEL" ] && [ -f "$KERNEL" ] || {
    echo "build-guest: no kernel in ${LAB_SYSROOT:-}/boot (tests/lab/setup.sh installs it)" >&2
    exit 1
}
KVER=$(lab_kernel_version "$KERNEL")
[ -d "$LAB_SYSROOT/lib/modules/$KVER" ] || {
    echo "build-guest: $LAB_SYSROOT/lib/modules/$KVER missing" >&2
    exit 1
}

MODULES="virtio virtio_ring virtio_pci virtio_pci_modern_dev virtio_mmio virtio_blk virtio_console
         virtio_rng virtio_balloon virtio_net vsock vmw_vsock_virtio_transport
         vmw_vsock_virtio_transport_common fuse virtiofs efivarfs evdev button"
OPTIONAL_MODULES=$LAB_GUEST_OPTIONAL_MODULES

tools=()
if [ "$variant" = tools ]; then
    while read -r line; do
        line=$(echo "${line%%#*}" | tr -d '[:space:]')
        [ -n "$line" ] || continue
        path=$(command -v "$line" || true)
        [ -z "$LAB_SYSROOT" ] || {
            echo "build-guest: --tools is x86 only for now (no $LAB_ARCH $line)" >&2
            exit 1
        }
        if [ -n "$path" ]; then
            tools+=("$path")
        else
            echo "build-guest: $line not on this machine (tests/lab/setup.sh --bench installs it)" >&2
            exit 1
        fi
    done <"$LAB/guest-tools.list"
    IMAGE=initrd-tools.img
else
    IMAGE=initrd.img
fi

stamp=$(lab_inputs_hash "$0" "$LAB/initramfs.sh" "$KERNEL" "$LAB_SYSROOT/bin/busybox" \
    "$LAB"/guest/* "$LAB/tools/vsock-echo.c" "$LAB_SYSROOT/lib/modules/$KVER/modules.dep" "${tools[@]}"
    echo "$MODULES $OPTIONAL_MODULES $LAB_CC")
stamp=$(echo "$stamp" | sha256sum | cut -d' ' -f1)
if [ -f "$OUT/$IMAGE" ] && [ -f "$OUT/vmlinuz" ] &&
    [ "$(cat "$OUT/.stamp-$variant" 2>/dev/null)" = "$stamp" ]; then
    echo "build-guest: $OUT/$IMAGE is up to date"
    exit 0
fi

# A staging directory of our own: two lab runs may build at once.
ROOT=$(mktemp -d "$OUT/root-$variant.XXXXXX")
ird_init_root
# shellcheck disable=SC2086
ird_add_modules "$KVER" $MODULES
# shellcheck disable=SC2086
[ -z "$OPTIONAL_MODULES" ] || ird_add_optional_modules "$KVER" $OPTIONAL_MODULES
install -m 0755 "$LAB/guest/init" "$ROOT/init"
mkdir -p "$ROOT/lab/guest"
for f in "$LAB"/guest/*.sh; do
    install -m 0755 "$f" "$ROOT/lab/guest/"
done
for t in "${tools[@]}"; do
    ird_add_binary "$t"
done
# vsock-echo: the guest's AF_VSOCK client/server (busybox has none), static.
$LAB_CC -std=gnu11 -O2 -Wall -Wextra -Werror -static -o "$ROOT/bin/vsock-echo" \
    "$LAB/tools/vsock-echo.c"
mods=$(tr '\n' ' ' <"$ROOT/etc/lab-modules")
ird_pack "$OUT/$IMAGE" gzip
rm -rf "$ROOT"
# Replace, never rewrite in place: a running lab may be reading it.
cmp -s "$KERNEL" "$OUT/vmlinuz" || { cp "$KERNEL" "$OUT/vmlinuz.tmp" && mv -f "$OUT/vmlinuz.tmp" "$OUT/vmlinuz"; }
echo "$stamp" >"$OUT/.stamp-$variant"
echo "build-guest: $OUT/vmlinuz ($KVER), $OUT/$IMAGE" \
    "($(du -k "$OUT/$IMAGE" | cut -f1) KiB), modules: $mods${tools[*]:+, tools: ${tools[*]}}"
