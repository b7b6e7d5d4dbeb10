#!/bin/bash
# Build what the lab's EFI scenarios (scenarios/efi-*.sh) boot, on the build
# host before L1 starts (L1 has neither GRUB nor OVMF; it reads these over
# the 9p share as /lab/build/lab/efi*/...):
#   efi/disk.raw             GPT disk, ESP with GRUB i386-efi, the lab guest
#                            kernel and initramfs (tests/efi/build-disk.sh)
#   efi/OVMF32_CODE_4M.fd, efi/OVMF32_VARS_4M.fd   Debian's 32-bit OVMF
#                            (ovmf-ia32), the firmware of most EFI scenarios:
#                            x86-64 OVMF can crash the nested lab's L0
#                            (NESTED-LAB.md, "The CR8 trap")
#   efi-x64/disk-grub.raw, efi-x64/disk-systemd-boot.raw   the same guest
#                            behind GRUB x86_64-efi and behind systemd-boot
#   efi-x64/OVMF_CODE_4M.fd, efi-x64/OVMF_VARS_4M.fd   Debian's x86-64 OVMF
#                            (ovmf), for the efi-x64-* scenarios, which run
#                            in L1 boots of their own (tests/lab/run.sh)
# GRUB's command line is fixed per disk, so it names no scenario: the guest
# init takes lab.KEY=VALUE from the SMBIOS OEM strings (type 11), and a
# scenario boots the one disk with `--oem-string lab.scenario=NAME`.
# Each directory is rebuilt only when an input changed (digest in .stamp).
# Without its firmware a directory is left empty and its scenarios skip.
#
# usage: tests/lab/build-efi.sh [OUTDIR]     (default build/lab; makes
#                                             OUTDIR/efi and OUTDIR/efi-x64)
set -euo pipefail
trap 'echo "${0##*/}: failed at line $LINENO: $BASH_COMMAND" >&2' ERR

LAB=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$LAB/../.." && pwd)
. "$LAB/initramfs.sh"
OUT=${1:-$REPO/build/lab}
GUEST=$REPO/build/lab/guest
OVMF=${LAB_OVMF_DIR:-/usr/share/OVMF}
# hvc0 last: the kernel's console and the init's primary console; ttyS0
# (COM1) first, so firmware-to-kernel handover messages have a home too.
CMDLINE="console=ttyS0 console=hvc0 quiet panic=-1"

for f in "$GUEST/vmlinuz" "$GUEST/initrd.img"; do
    [ -f "$f" ] || { echo "build-efi: $f missing (tests/lab/build-guest.sh)" >&2; exit 1; }
done

# flavour DIR PACKAGE "FIRMWARE..." "ARCH:LOADER:DISK...": one directory of
# firmware and disks, rebuilt when its inputs changed.
flavour() {
    local dir=$OUT/$1 pkg=$2 firmware=$3 disks=$4 f d arch loader name stamp
    mkdir -p "$dir"
    for f in $firmware; do
        if [ ! -f "$OVMF/$f" ]; then
            echo "build-efi: no $OVMF/$f (Debian package $pkg, tests/lab/setup.sh);" \
                "the scenarios that need it will skip" >&2
            rm -f "$dir"/* "$dir/.stamp"
            return 0
        fi
    done
    stamp=$(
        lab_inputs_hash "$0" "$REPO/tests/efi/build-disk.sh" "$GUEST/vmlinuz" \
            "$GUEST/initrd.img" $(for f in $firmware; do echo "$OVMF/$f"; done)
        echo "$CMDLINE $disks"
    )
    stamp=$(echo "$stamp" | sha256sum | cut -d' ' -f1)
    local complete=1
    for f in $firmware; do [ -f "$dir/$f" ] || complete=""; done
    for d in $disks; do [ -f "$dir/${d##*:}" ] || complete=""; done
    if [ -n "$complete" ] && [ "$(cat "$dir/.stamp" 2>/dev/null)" = "$stamp" ]; then
        echo "build-efi: $dir is up to date"
        return 0
    fi
    rm -f "$dir/.stamp"
    # Replace, never rewrite in place: a running lab may be reading them.
    for f in $firmware; do
        cp "$OVMF/$f" "$dir/$f.tmp" && mv -f "$dir/$f.tmp" "$dir/$f"
    done
    for d in $disks; do
        IFS=: read -r arch loader name <<<"$d"
        "$REPO/tests/efi/build-disk.sh" --loader "$loader" --arch "$arch" \
            --kernel "$GUEST/vmlinuz" --initrd "$GUEST/initrd.img" --cmdline "$CMDLINE" \
            --esp-mib 40 -o "$dir/$name"
    done
    echo "$stamp" >"$dir/.stamp"
    echo "build-efi: $dir ready ($firmware; $disks)"
}

flavour efi ovmf-ia32 "OVMF32_CODE_4M.fd OVMF32_VARS_4M.fd" "ia32:grub:disk.raw"
flavour efi-x64 ovmf "OVMF_CODE_4M.fd OVMF_VARS_4M.fd" \
    "x64:grub:disk-grub.raw x64:systemd-boot:disk-systemd-boot.raw"
