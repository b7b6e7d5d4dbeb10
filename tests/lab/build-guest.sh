#!/bin/bash
# Build the L2 test guest into build/lab/guest/: the Debian kernel (vmlinuz)
# and a busybox initramfs (initrd.img) holding the virtio modules, the test
# init (tests/lab/guest/init) and the guest halves of the scenarios
# (tests/lab/guest/*.sh under /lab/guest/). Skipped when no input changed.
#
# usage: tests/lab/build-guest.sh [OUTDIR]
set -euo pipefail

LAB=$(cd "$(dirname "$0")" && pwd)
. "$LAB/initramfs.sh"
OUT=${1:-${LAB_BUILD:-$LAB/../../build/lab}/guest}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

KERNEL=$(lab_kernel_image)
[ -n "$KERNEL" ] && [ -f "$KERNEL" ] || {
    echo "build-guest: no kernel in /boot (install linux-image-amd64)" >&2
    exit 1
}
KVER=$(lab_kernel_version "$KERNEL")
[ -d "/lib/modules/$KVER" ] || {
    echo "build-guest: /lib/modules/$KVER missing" >&2
    exit 1
}

MODULES="virtio virtio_ring virtio_pci virtio_pci_modern_dev virtio_blk virtio_console
         virtio_rng virtio_balloon virtio_net vsock vmw_vsock_virtio_transport
         vmw_vsock_virtio_transport_common fuse virtiofs efivarfs evdev button"

stamp=$(lab_inputs_hash "$0" "$LAB/initramfs.sh" "$KERNEL" /bin/busybox \
    "$LAB"/guest/* "/lib/modules/$KVER/modules.dep"; echo "$MODULES")
stamp=$(echo "$stamp" | sha256sum | cut -d' ' -f1)
if [ -f "$OUT/initrd.img" ] && [ -f "$OUT/vmlinuz" ] &&
    [ "$(cat "$OUT/.stamp" 2>/dev/null)" = "$stamp" ]; then
    echo "build-guest: $OUT is up to date"
    exit 0
fi

ROOT="$OUT/root"
ird_init_root
# shellcheck disable=SC2086
ird_add_modules "$KVER" $MODULES
install -m 0755 "$LAB/guest/init" "$ROOT/init"
mkdir -p "$ROOT/lab/guest"
for f in "$LAB"/guest/*.sh; do
    install -m 0755 "$f" "$ROOT/lab/guest/"
done
mods=$(tr '\n' ' ' <"$ROOT/etc/lab-modules")
ird_pack "$OUT/initrd.img" gzip
rm -rf "$ROOT"
cp "$KERNEL" "$OUT/vmlinuz"
echo "$stamp" >"$OUT/.stamp"
echo "build-guest: $OUT/vmlinuz ($KVER), $OUT/initrd.img" \
    "($(du -k "$OUT/initrd.img" | cut -f1) KiB), modules: $mods"
