#!/bin/sh
# Install what the lab needs, from Debian packages only (scripts/deps.sh
# installs just what is missing). QEMU: when this machine cannot run guests
# with its own /dev/kvm (kvm-probe), the lab boots L1 under TCG, proven with
# QEMU 10.0 from bookworm-backports (scripts/apt-suites.sh adds the suite);
# with a usable /dev/kvm, bookworm's QEMU is enough for the side-by-side
# comparisons. LAB_FORCE_NESTED=1 asks for the nested setup anyway.
# --bench adds what benchmarks put in the guest (tests/lab/guest-tools.list).
# --arch arm64 (or LAB_ARCH=arm64) sets up the arm64 lab instead
# (tests/lab/arm64/setup.sh: its L0 QEMU, AAVMF, cross compiler and the
# arm64 sysroot L1 and L2 are built from).
#
# usage: tests/lab/setup.sh [--bench] | --arch x86|arm64
set -eu
LAB=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$LAB/../.." && pwd)
if [ "${1:-}" = --arch ]; then
    LAB_ARCH=${2:?--arch needs x86 or arm64}
    shift 2
fi
case "${LAB_ARCH:-x86}" in
x86) ;;
arm64) exec "$LAB/arm64/setup.sh" ;;
*) echo "setup: unknown architecture ${LAB_ARCH}" >&2; exit 2 ;;
esac

"$REPO/scripts/deps.sh" linux-image-amd64 busybox-static cpio kmod gcc libc6-dev \
    curl socat strace
"$LAB/build-probe.sh"
if [ "${1:-}" = --bench ]; then
    "$REPO/scripts/deps.sh" $(sed -e 's/#.*//' "$LAB/guest-tools.list")
fi

# qemu-utils: qemu-img for the qcow2 crash-safety check (krunkit-crash-safety),
# from the same suite as QEMU so their shared libraries agree.
if [ -z "${LAB_FORCE_NESTED:-}" ] && "$REPO/build/lab/kvm-probe" >/dev/null 2>&1; then
    "$REPO/scripts/deps.sh" qemu-system-x86 qemu-utils
else
    "$REPO/scripts/apt-suites.sh" install bookworm-backports qemu-system-x86 qemu-utils
fi

# EFI scenarios (efi-*): GPT disks with GRUB i386-efi (tests/lab/build-efi.sh)
# and Debian's 32-bit OVMF, which only trixie ships (NESTED-LAB.md); the
# x86-64 ones (efi-x64-*) with GRUB x86_64-efi or systemd-boot and x86-64
# OVMF, taken from the same edk2 release as OVMF32.
"$REPO/scripts/deps.sh" grub-efi-ia32-bin grub-efi-amd64-bin systemd-boot-efi grub-common \
    mtools dosfstools fdisk
"$REPO/scripts/apt-suites.sh" install trixie ovmf-ia32 ovmf

# krunkit-net: trixie's passt with its own libc, in build/lab/passt.
"$LAB/build-passt.sh"
