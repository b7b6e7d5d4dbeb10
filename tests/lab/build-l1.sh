#!/bin/bash
# Build the L1 lab host into build/lab/l1/: the Debian kernel (vmlinuz) and
# an initramfs (initrd.img) with busybox, kvm (irqbypass ccp kvm kvm_amd,
# kvm_intel when present), virtio + 9p modules, the init of tests/lab/l1/init,
# kvm-probe, and the programs of tests/lab/l1-tools.list with their ldd
# libraries (QEMU also gets the firmware it needs for -M pc / microvm).
# Scenarios, the guest images and build/krunkit come in over 9p at run time,
# so this image changes only when its own inputs do. Skipped when unchanged.
#
# usage: tests/lab/build-l1.sh [OUTDIR]
set -euo pipefail
trap 'echo "${0##*/}: failed at line $LINENO: $BASH_COMMAND" >&2' ERR

LAB=$(cd "$(dirname "$0")" && pwd)
. "$LAB/initramfs.sh"
BUILD=${LAB_BUILD:-$LAB/../../build/lab}
OUT=${1:-$BUILD/l1}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
PROBE=$BUILD/kvm-probe

KERNEL=$(lab_kernel_image)
[ -n "$KERNEL" ] && [ -f "$KERNEL" ] || {
    echo "build-l1: no kernel in /boot (install linux-image-amd64)" >&2
    exit 1
}
KVER=$(lab_kernel_version "$KERNEL")
[ -x "$PROBE" ] || {
    echo "build-l1: $PROBE missing (tests/lab/run.sh builds it)" >&2
    exit 1
}

MODULES="virtio virtio_ring virtio_pci virtio_pci_modern_dev 9pnet 9pnet_virtio netfs 9p
         irqbypass ccp kvm kvm_amd"
OPTIONAL_MODULES="kvm_intel vsock vhost vhost_vsock tun"

# Resolve the tool list to files: programs and libraries present here.
tools=()
while read -r line; do
    line=${line%%#*}
    line=$(echo "$line" | tr -d '[:space:]')
    [ -n "$line" ] || continue
    case "$line" in
    lib:*)
        path=$(ldconfig -p | awk -v n="${line#lib:}" '$1 == n && /x86-64/ && !found { print $NF; found = 1 }')
        ;;
    /*) path=$line ;;
    *) path=$(command -v "$line" || true) ;;
    esac
    if [ -n "$path" ] && [ -e "$path" ]; then
        tools+=("$path")
    else
        echo "build-l1: $line not on this machine, left out" >&2
    fi
done <"$LAB/l1-tools.list"
# Whatever build/krunkit links against today.
KRUNKIT_BIN=$LAB/../../build/krunkit
[ -x "$KRUNKIT_BIN" ] && tools+=($(ldd "$KRUNKIT_BIN" | awk '/=> \// { print $3 }'))

QEMU_DATA=()
for f in /usr/share/seabios/bios-256k.bin /usr/share/seabios/bios.bin \
    /usr/share/seabios/bios-microvm.bin /usr/share/qemu/linuxboot_dma.bin \
    /usr/share/qemu/linuxboot.bin /usr/share/qemu/kvmvapic.bin /usr/share/qemu/pvh.bin \
    /usr/share/qemu/multiboot_dma.bin /usr/share/qemu/qboot.rom; do
    [ -e "$f" ] && QEMU_DATA+=("$f")
done

stamp=$(
    lab_inputs_hash "$0" "$LAB/initramfs.sh" "$LAB/l1/init" "$LAB/l1-tools.list" \
        "$KERNEL" /bin/busybox "$PROBE" "/lib/modules/$KVER/modules.dep" \
        "${tools[@]}" "${QEMU_DATA[@]}"
    echo "$MODULES $OPTIONAL_MODULES"
    echo "${tools[*]}"
)
stamp=$(echo "$stamp" | sha256sum | cut -d' ' -f1)
if [ -f "$OUT/initrd.img" ] && [ -f "$OUT/vmlinuz" ] &&
    [ "$(cat "$OUT/.stamp" 2>/dev/null)" = "$stamp" ]; then
    echo "build-l1: $OUT is up to date"
    exit 0
fi

# A staging directory of our own: two lab runs may build at once.
ROOT=$(mktemp -d "$OUT/root.XXXXXX")
ird_init_root
# shellcheck disable=SC2086
ird_add_modules "$KVER" $MODULES
# shellcheck disable=SC2086
ird_add_optional_modules "$KVER" $OPTIONAL_MODULES
for t in "${tools[@]}"; do
    case "$t" in
    *.so*) _ird_copy_path "$t" ;;
    *) ird_add_binary "$t" ;;
    esac
done
for f in "${QEMU_DATA[@]}"; do
    ird_add_file "$f"
done
ird_add_file "$PROBE" /usr/bin/kvm-probe
install -m 0755 "$LAB/l1/init" "$ROOT/init"
mods=$(tr '\n' ' ' <"$ROOT/etc/lab-modules")
# Uncompressed: the kernel unpacks it faster under TCG than it could gunzip.
ird_pack "$OUT/initrd.img" none
rm -rf "$ROOT"
cmp -s "$KERNEL" "$OUT/vmlinuz" || { cp "$KERNEL" "$OUT/vmlinuz.tmp" && mv -f "$OUT/vmlinuz.tmp" "$OUT/vmlinuz"; }
echo "$stamp" >"$OUT/.stamp"
echo "build-l1: $OUT/initrd.img ($(du -m "$OUT/initrd.img" | cut -f1) MiB), kernel $KVER," \
    "modules: $mods"
