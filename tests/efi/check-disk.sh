#!/bin/bash
# Checks of tests/efi/build-disk.sh that need no VM: for each variant (GRUB
# ia32 for the lab, GRUB x64 and systemd-boot x64 for real hosts) build an
# image around a stand-in kernel and initrd, then read it back with sfdisk
# and mtools: one GPT partition of the ESP type at sector 2048, the loader
# at the removable-media path with the right PE machine type, the kernel
# and initrd byte for byte, the systemd-boot entry with the command line.
#
# usage: tests/efi/check-disk.sh WORKDIR
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
work=${1:?usage: check-disk.sh WORKDIR}
rm -rf "$work"
mkdir -p "$work"
export MTOOLS_SKIP_CHECK=1
fail=0

head -c 1500000 /dev/urandom >"$work/kernel"
head -c 70000 /dev/urandom >"$work/initrd"
cmdline="console=ttyS0 krunkit.marker=efi-check"

bad() {
    echo "FAILED: efi $1: $2"
    fail=1
}

# PE machine field: 0x14c i386, 0x8664 x86-64 (PE/COFF spec, "Machine Types").
pe_machine() {
    local off
    off=$(od -An -tu4 -j 60 -N 4 "$1" | tr -d ' ')
    od -An -tx2 -j $((off + 4)) -N 2 "$1" | tr -d ' '
}

check() {
    local name=$1 loader=$2 arch=$3 boot=$4 machine=$5
    local disk="$work/$name.raw" esp="$work/$name.raw@@1M"
    if ! "$HERE/build-disk.sh" --loader "$loader" --arch "$arch" --kernel "$work/kernel" \
        --initrd "$work/initrd" --cmdline "$cmdline" -o "$disk" >"$work/$name.log" 2>&1; then
        cat "$work/$name.log"
        bad "$name" "build-disk.sh failed"
        return
    fi
    local parts
    parts=$(sfdisk --dump "$disk" | grep -c 'start=' || true)
    [ "$parts" = 1 ] || bad "$name" "expected one partition, found $parts"
    sfdisk --dump "$disk" | grep -q 'start= *2048, .*type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B' ||
        bad "$name" "no ESP at sector 2048"
    mcopy -n -i "$esp" "::/EFI/BOOT/$boot" "$work/$name.efi" 2>/dev/null ||
        { bad "$name" "no /EFI/BOOT/$boot"; return; }
    [ "$(pe_machine "$work/$name.efi")" = "$machine" ] ||
        bad "$name" "$boot has PE machine $(pe_machine "$work/$name.efi"), want $machine"
    mcopy -n -i "$esp" ::/vmlinuz "$work/$name.vmlinuz"
    cmp -s "$work/kernel" "$work/$name.vmlinuz" || bad "$name" "kernel differs"
    mcopy -n -i "$esp" ::/initrd.img "$work/$name.initrd"
    cmp -s "$work/initrd" "$work/$name.initrd" || bad "$name" "initrd differs"
    if [ "$loader" = systemd-boot ]; then
        mtype -i "$esp" ::/loader/entries/krunkit.conf | grep -qx "options $cmdline" ||
            bad "$name" "loader entry lacks the command line"
        mtype -i "$esp" ::/loader/loader.conf | grep -q '^default krunkit.conf' ||
            bad "$name" "loader.conf has no default entry"
    else
        # The GRUB config sits uncompressed in the standalone image's memdisk (a tar).
        grep -aq "linux /vmlinuz $cmdline" "$work/$name.efi" ||
            bad "$name" "grub.cfg with the command line not in $boot"
    fi
    [ "$fail" = 1 ] || echo "ok: efi disk $name"
}

check grub-ia32 grub ia32 BOOTIA32.EFI 014c
check grub-x64 grub x64 BOOTX64.EFI 8664
check systemd-boot-x64 systemd-boot x64 BOOTX64.EFI 8664

# Bad arguments are refused before anything is built.
if "$HERE/build-disk.sh" --loader systemd-boot --arch ia32 -o "$work/x.raw" 2>/dev/null; then
    bad args "systemd-boot ia32 accepted"
fi
[ ! -e "$work/x.raw" ] || bad args "an image was left behind"

exit $fail
