#!/bin/bash
# Build an EFI-bootable GPT disk image from Debian packages, without root or
# loop devices: a FAT32 EFI system partition (filled with mtools) holding a
# bootloader, a kernel and an initrd, written into a raw disk partitioned by
# sfdisk. Recipe: /work/shared/lab/NESTED-LAB.md "EFI test disk recipe";
# layout: UEFI 2.10, 13.3 (the ESP, \EFI\BOOT\BOOT<arch>.EFI removable-media
# path) and 5.3 (GPT, ESP type C12A7328-F81F-11D2-BA4B-00A0C93EC93B).
#
# usage: tests/efi/build-disk.sh [options] -o DISK
#   --loader grub|systemd-boot   default grub
#   --arch ia32|x64              firmware word size; default ia32 (the lab's
#                                OVMF32, booting a 64-bit kernel in EFI mixed
#                                mode); x64 for x86-64 OVMF on real hosts.
#                                systemd-boot is x64 only.
#   --kernel FILE                bzImage (EFI stub); default the newest /boot/vmlinuz-*
#   --initrd FILE                optional
#   --cmdline TEXT               kernel command line; default "console=ttyS0"
#   --esp-mib N                  ESP size, default 64 (FAT32 needs >= 33)
#   -o DISK                      output raw image (replaced atomically)
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
ESP_TYPE=C12A7328-F81F-11D2-BA4B-00A0C93EC93B

loader=grub arch=ia32 kernel="" initrd="" cmdline="console=ttyS0" esp_mib=64 out=""
while [ $# -gt 0 ]; do
    case "$1" in
    --loader) loader=$2; shift 2 ;;
    --arch) arch=$2; shift 2 ;;
    --kernel) kernel=$2; shift 2 ;;
    --initrd) initrd=$2; shift 2 ;;
    --cmdline) cmdline=$2; shift 2 ;;
    --esp-mib) esp_mib=$2; shift 2 ;;
    -o) out=$2; shift 2 ;;
    -h | --help) sed -n '2,/^set -/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "build-disk: unknown argument $1" >&2; exit 2 ;;
    esac
done
die() { echo "build-disk: $*" >&2; exit 1; }
[ -n "$out" ] || die "-o DISK is required"
case "$arch" in ia32 | x64) ;; *) die "--arch must be ia32 or x64" ;; esac
case "$loader" in
grub) ;;
systemd-boot) [ "$arch" = x64 ] || die "systemd-boot images are x64 only" ;;
*) die "--loader must be grub or systemd-boot" ;;
esac
case "$esp_mib" in '' | *[!0-9]*) die "--esp-mib must be a number" ;; esac
[ "$esp_mib" -ge 33 ] || die "--esp-mib must be at least 33 (FAT32)"
if [ -z "$kernel" ]; then
    kernel=$(ls -1v /boot/vmlinuz-* 2>/dev/null | tail -1 || true)
    [ -n "$kernel" ] || die "no --kernel and no /boot/vmlinuz-* (install linux-image-amd64)"
fi
[ -r "$kernel" ] || die "kernel $kernel: not readable"
[ -z "$initrd" ] || [ -r "$initrd" ] || die "initrd $initrd: not readable"

pkgs="mtools dosfstools fdisk"
if [ "$loader" = grub ]; then
    [ "$arch" = ia32 ] && pkgs="$pkgs grub-efi-ia32-bin" || pkgs="$pkgs grub-efi-amd64-bin"
    pkgs="$pkgs grub-common"
else
    pkgs="$pkgs systemd-boot-efi"
fi
# shellcheck disable=SC2086
"$REPO/scripts/deps.sh" $pkgs

work=$(mktemp -d "${TMPDIR:-/tmp}/efi-disk.XXXXXX")
trap 'rm -rf "$work"' EXIT
export MTOOLS_SKIP_CHECK=1

if [ "$arch" = ia32 ]; then boot_name=BOOTIA32.EFI; else boot_name=BOOTX64.EFI; fi

if [ "$loader" = grub ]; then
    # The config is embedded in the standalone image's memdisk; it finds the
    # ESP by the kernel file, so the disk's position does not matter.
    {
        echo "set timeout=0"
        echo "search --no-floppy --file /vmlinuz --set=root"
        echo "linux /vmlinuz $cmdline"
        [ -z "$initrd" ] || echo "initrd /initrd.img"
        echo "boot"
    } >"$work/grub.cfg"
    if [ "$arch" = ia32 ]; then target=i386-efi; else target=x86_64-efi; fi
    grub-mkstandalone -O "$target" -o "$work/$boot_name" \
        --modules="part_gpt fat linux normal configfile search search_fs_file" \
        "boot/grub/grub.cfg=$work/grub.cfg"
else
    sdboot=/usr/lib/systemd/boot/efi/systemd-bootx64.efi
    [ -r "$sdboot" ] || die "$sdboot missing (package systemd-boot-efi)"
    cp "$sdboot" "$work/$boot_name"
    printf 'default krunkit.conf\ntimeout 0\n' >"$work/loader.conf"
    {
        echo "title krunkit test guest"
        echo "linux /vmlinuz"
        [ -z "$initrd" ] || echo "initrd /initrd.img"
        echo "options $cmdline"
    } >"$work/krunkit.conf"
fi

# The ESP: a fixed volume id keeps the image reproducible.
esp="$work/esp.img"
truncate -s "${esp_mib}M" "$esp"
mkfs.vfat -F 32 -n ESP -i 4b52554e "$esp" >/dev/null
mmd -i "$esp" ::/EFI ::/EFI/BOOT
mcopy -i "$esp" "$work/$boot_name" "::/EFI/BOOT/$boot_name"
mcopy -i "$esp" "$kernel" ::/vmlinuz
[ -z "$initrd" ] || mcopy -i "$esp" "$initrd" ::/initrd.img
if [ "$loader" = systemd-boot ]; then
    mmd -i "$esp" ::/loader ::/loader/entries
    mcopy -i "$esp" "$work/loader.conf" ::/loader/loader.conf
    mcopy -i "$esp" "$work/krunkit.conf" ::/loader/entries/krunkit.conf
fi

# GPT: the ESP at sector 2048, 1 MiB spare at the end for the backup header.
esp_sectors=$((esp_mib * 2048))
disk="$work/disk.raw"
truncate -s $(((esp_mib + 2) * 1024 * 1024)) "$disk"
printf 'label: gpt\nlabel-id: 4B52554E-4B49-5400-0000-000000000001\nstart=2048, size=%d, type=%s, uuid=4B52554E-4B49-5400-0000-0000000000E5, name="ESP"\n' \
    "$esp_sectors" "$ESP_TYPE" | sfdisk --quiet "$disk"
dd if="$esp" of="$disk" bs=512 seek=2048 conv=notrunc,sparse status=none

mv -f "$disk" "$out.tmp.$$"
mv -f "$out.tmp.$$" "$out"
echo "build-disk: $out ($loader, $arch, $(basename "$kernel"))"
