#!/bin/bash
# Not a benchmark: makes what bench/efi-boot.sh boots, on the build host
# (bench/run.sh calls it before the lab run; L1 has neither GRUB nor OVMF):
#   DIR/disk.raw                  GPT disk, ESP with GRUB i386-efi, the lab
#                                 guest kernel and initramfs (tests/efi/build-disk.sh)
#   DIR/OVMF32_CODE_4M.fd, DIR/OVMF32_VARS_4M.fd   Debian's 32-bit OVMF
#                                 (the lab runs EFI with OVMF32, see NESTED-LAB)
# The disk's kernel command line runs the guest's `boot` scenario, which
# powers off after the init marker. Rebuilt only when an input changed.
#
# usage: bench/efi-image.sh DIR
set -euo pipefail
BENCH=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$BENCH/.." && pwd)
OUT=${1:?usage: efi-image.sh DIR}
OVMF=${BENCH_OVMF_DIR:-/usr/share/OVMF}
GUEST=$REPO/build/lab/guest
CMDLINE="console=ttyS0 quiet panic=-1 lab.scenario=boot lab.cpus=1"

mkdir -p "$OUT"
for f in OVMF32_CODE_4M.fd OVMF32_VARS_4M.fd; do
    if [ ! -f "$OVMF/$f" ]; then
        # efi-boot.sh skips when the firmware is missing.
        echo "efi-image: no $OVMF/$f (Debian package ovmf-ia32); EFI benchmark will be skipped" >&2
        rm -f "$OUT/$f"
        exit 0
    fi
    cmp -s "$OVMF/$f" "$OUT/$f" || cp "$OVMF/$f" "$OUT/$f"
done

stamp=$( (sha256sum "$GUEST/vmlinuz" "$GUEST/initrd.img" "$REPO/tests/efi/build-disk.sh" "$0" | cut -d' ' -f1;
    echo "$CMDLINE") | sha256sum | cut -d' ' -f1)
if [ -f "$OUT/disk.raw" ] && [ "$(cat "$OUT/.stamp" 2>/dev/null)" = "$stamp" ]; then
    echo "efi-image: $OUT/disk.raw is up to date"
    exit 0
fi
"$REPO/tests/efi/build-disk.sh" --arch ia32 --loader grub --kernel "$GUEST/vmlinuz" \
    --initrd "$GUEST/initrd.img" --cmdline "$CMDLINE" -o "$OUT/disk.raw"
echo "$stamp" >"$OUT/.stamp"
