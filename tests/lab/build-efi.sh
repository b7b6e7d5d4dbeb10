#!/bin/bash
# Build what the lab's EFI scenarios (scenarios/efi-*.sh) boot, on the build
# host before L1 starts (L1 has neither GRUB nor OVMF; it reads these over
# the 9p share as /lab/build/lab/efi/...):
#   disk.raw                 GPT disk, ESP with GRUB i386-efi, the lab guest
#                            kernel and initramfs (tests/efi/build-disk.sh)
#   OVMF32_CODE_4M.fd, OVMF32_VARS_4M.fd   Debian's 32-bit OVMF (ovmf-ia32):
#                            x86-64 OVMF cannot run in the nested lab
#                            (NESTED-LAB.md, "The CR8 trap")
# GRUB's command line is fixed per disk, so it names no scenario: the guest
# init takes lab.KEY=VALUE from the SMBIOS OEM strings (type 11), and a
# scenario boots the one disk with `--oem-string lab.scenario=NAME`.
# Rebuilt only when an input changed (digest in .stamp). Without OVMF32 the
# directory is left without firmware and the EFI scenarios skip.
#
# usage: tests/lab/build-efi.sh [OUTDIR]     (default build/lab/efi)
set -euo pipefail
trap 'echo "${0##*/}: failed at line $LINENO: $BASH_COMMAND" >&2' ERR

LAB=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$LAB/../.." && pwd)
. "$LAB/initramfs.sh"
OUT=${1:-$REPO/build/lab/efi}
GUEST=$REPO/build/lab/guest
OVMF=${LAB_OVMF_DIR:-/usr/share/OVMF}
# hvc0 last: the kernel's console and the init's primary console; ttyS0
# (COM1) first, so firmware-to-kernel handover messages have a home too.
CMDLINE="console=ttyS0 console=hvc0 quiet panic=-1"
FIRMWARE="OVMF32_CODE_4M.fd OVMF32_VARS_4M.fd"

mkdir -p "$OUT"
for f in $FIRMWARE; do
    if [ ! -f "$OVMF/$f" ]; then
        echo "build-efi: no $OVMF/$f (Debian package ovmf-ia32, tests/lab/setup.sh);" \
            "EFI scenarios will skip" >&2
        rm -f "$OUT/OVMF32_CODE_4M.fd" "$OUT/OVMF32_VARS_4M.fd"
        exit 0
    fi
done
for f in "$GUEST/vmlinuz" "$GUEST/initrd.img"; do
    [ -f "$f" ] || { echo "build-efi: $f missing (tests/lab/build-guest.sh)" >&2; exit 1; }
done

stamp=$(
    lab_inputs_hash "$0" "$REPO/tests/efi/build-disk.sh" "$GUEST/vmlinuz" "$GUEST/initrd.img" \
        "$OVMF/OVMF32_CODE_4M.fd" "$OVMF/OVMF32_VARS_4M.fd"
    echo "$CMDLINE"
)
stamp=$(echo "$stamp" | sha256sum | cut -d' ' -f1)
if [ -f "$OUT/disk.raw" ] && [ -f "$OUT/OVMF32_CODE_4M.fd" ] && [ -f "$OUT/OVMF32_VARS_4M.fd" ] &&
    [ "$(cat "$OUT/.stamp" 2>/dev/null)" = "$stamp" ]; then
    echo "build-efi: $OUT is up to date"
    exit 0
fi

# Replace, never rewrite in place: a running lab may be reading them.
for f in $FIRMWARE; do
    cp "$OVMF/$f" "$OUT/$f.tmp" && mv -f "$OUT/$f.tmp" "$OUT/$f"
done
"$REPO/tests/efi/build-disk.sh" --loader grub --arch ia32 --kernel "$GUEST/vmlinuz" \
    --initrd "$GUEST/initrd.img" --cmdline "$CMDLINE" --esp-mib 40 -o "$OUT/disk.raw"
echo "$stamp" >"$OUT/.stamp"
echo "build-efi: $OUT/disk.raw and OVMF32 firmware ready"
