#!/bin/bash
# Build the L1 lab host into build/lab/l1/: the Debian kernel (vmlinuz) and
# an initramfs (initrd.img) with busybox, kvm (irqbypass ccp kvm kvm_amd,
# kvm_intel when present), virtio + 9p modules, the init of tests/lab/l1/init,
# kvm-probe, and the programs of tests/lab/l1-tools.list with their ldd
# libraries (QEMU also gets the firmware it needs for -M pc / microvm).
# LAB_ARCH=arm64 builds build/lab/arm64/l1/ the same way from the arm64
# sysroot (tests/lab/arch.sh says what differs: modules, no kvm-probe).
# Scenarios, the guest images and build/krunkit come in over 9p at run time,
# so this image changes only when its own inputs do. Skipped when unchanged.
#
# usage: tests/lab/build-l1.sh [OUTDIR]
set -euo pipefail
trap 'echo "${0##*/}: failed at line $LINENO: $BASH_COMMAND" >&2' ERR

LAB=$(cd "$(dirname "$0")" && pwd)
. "$LAB/arch.sh"
. "$LAB/initramfs.sh"
BUILD=$LAB_ARCH_BUILD
OUT=${1:-$BUILD/l1}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
# kvm-probe is this machine's (x86) program: only an x86 L1 runs it.
PROBE=""
[ -z "$LAB_ARCH_PROBE" ] || PROBE=$BUILD/kvm-probe

KERNEL=$(lab_kernel_image)
[ -n "$KERNEL" ] && [ -f "$KERNEL" ] || {
    echo "build-l1: no kernel in ${LAB_SYSROOT:-}/boot (tests/lab/setup.sh installs it)" >&2
    exit 1
}
KVER=$(lab_kernel_version "$KERNEL")
[ -z "$PROBE" ] || [ -x "$PROBE" ] || {
    echo "build-l1: $PROBE missing (tests/lab/run.sh builds it)" >&2
    exit 1
}

MODULES=$LAB_L1_MODULES
OPTIONAL_MODULES=$LAB_L1_OPTIONAL_MODULES

# find_program NAME: the program NAME of this architecture (a sysroot
# path there, else what PATH finds here).
find_program() {
    local d
    if [ -z "$LAB_SYSROOT" ]; then
        command -v "$1" || true
        return
    fi
    for d in /usr/bin /usr/sbin /bin /sbin; do
        [ -x "$LAB_SYSROOT$d/$1" ] && { echo "$LAB_SYSROOT$d/$1"; return; }
    done
}
# find_lib SONAME: the library (ldconfig's x86-64 one, or the sysroot's).
find_lib() {
    if [ -z "$LAB_SYSROOT" ]; then
        ldconfig -p | awk -v n="$1" '$1 == n && /x86-64/ && !found { print $NF; found = 1 }'
    else
        p=$(_ird_sysroot_lib "$1") && echo "$LAB_SYSROOT$p"
    fi
}

# Resolve the tool list to files: programs and libraries present here.
# "qemu" is the architecture's comparison QEMU (LAB_QEMU_NAME).
tools=()
while read -r line; do
    line=${line%%#*}
    line=$(echo "$line" | tr -d '[:space:]')
    [ -n "$line" ] || continue
    case "$line" in
    lib:*) path=$(find_lib "${line#lib:}") ;;
    /*) path=$LAB_SYSROOT$line ;;
    qemu) path=$(find_program "$LAB_QEMU_NAME") ;;
    *) path=$(find_program "$line") ;;
    esac
    if [ -n "$path" ] && [ -e "$path" ]; then
        tools+=("$path")
    else
        echo "build-l1: $line not on this machine, left out" >&2
    fi
done <"$LAB/l1-tools.list"
# Whatever this architecture's krunkit links against today (an arm64 one
# adds its NEEDED libraries from the sysroot: ird_add_binary).
KRUNKIT_BIN=$LAB/../../$LAB_KRUNKIT_DEFAULT
if [ -x "$KRUNKIT_BIN" ]; then
    if [ -z "$LAB_SYSROOT" ]; then
        tools+=($(ldd "$KRUNKIT_BIN" | awk '/=> \// { print $3 }'))
    else
        tools+=("$(cd "$(dirname "$KRUNKIT_BIN")" && pwd)/${KRUNKIT_BIN##*/}")
    fi
fi

QEMU_DATA=("${LAB_L1_DATA[@]}")

stamp=$(
    lab_inputs_hash "$0" "$LAB/initramfs.sh" "$LAB/l1/init" "$LAB/l1-tools.list" \
        "$KERNEL" "$LAB_SYSROOT/bin/busybox" ${PROBE:+"$PROBE"} "$LAB_SYSROOT/lib/modules/$KVER/modules.dep" \
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
    "$LAB_SYSROOT"/*.so* | *.so*)
        if [ -n "$LAB_SYSROOT" ]; then
            _ird_copy_sysroot "${t#"$LAB_SYSROOT"}"
            _ird_add_needed "$t"
        else
            _ird_copy_path "$t"
        fi
        ;;
    *) ird_add_binary "$t" ;;
    esac
done
for f in "${QEMU_DATA[@]}"; do
    ird_add_file "$f"
done
[ -z "$PROBE" ] || ird_add_file "$PROBE" /usr/bin/kvm-probe
install -m 0755 "$LAB/l1/init" "$ROOT/init"
mods=$(tr '\n' ' ' <"$ROOT/etc/lab-modules")
# Uncompressed: the kernel unpacks it faster under TCG than it could gunzip.
ird_pack "$OUT/initrd.img" none
rm -rf "$ROOT"
cmp -s "$KERNEL" "$OUT/vmlinuz" || { cp "$KERNEL" "$OUT/vmlinuz.tmp" && mv -f "$OUT/vmlinuz.tmp" "$OUT/vmlinuz"; }
echo "$stamp" >"$OUT/.stamp"
echo "build-l1: $OUT/initrd.img ($(du -m "$OUT/initrd.img" | cut -f1) MiB), kernel $KVER," \
    "modules: $mods"
