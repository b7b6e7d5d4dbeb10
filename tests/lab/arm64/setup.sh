#!/bin/bash
# Install what the arm64 lab needs (tests/lab/setup.sh calls this), from
# Debian's packages only, idempotently; as root:
#  - on this machine: QEMU 10.0 for arm64 from bookworm-backports (L0 runs
#    L1 under TCG with it, NESTED-LAB.md "The arm64 lab"), AAVMF
#    (qemu-efi-aarch64) for EFI scenarios, and the cross compiler for the
#    static lab tools that run in L1 and L2 (vsock-echo);
#  - for L1 and L2, which are arm64: the packages of
#    tests/lab/arm64/packages.list and Debian's arm64 kernel, fetched with
#    `apt-get download PKG:arm64` (dpkg's arm64 architecture added) into
#    build/lab/arm64/debs/ and unpacked with `dpkg -x` into
#    build/lab/arm64/sysroot/. They are never installed: this machine is
#    amd64. Their libraries come from following every ELF file's NEEDED
#    entries (objdump -p), not package dependencies, which miss some
#    (NESTED-LAB.md); the arm64 package of a library is the one whose amd64
#    build holds the same soname here (the x86 lab installs the amd64
#    builds of the same programs).
# Nothing is fetched when the sysroot already holds the candidate version of
# every listed package and its library closure is complete.
#
# usage: tests/lab/arm64/setup.sh
set -euo pipefail
trap 'echo "${0##*/}: failed at line $LINENO: $BASH_COMMAND" >&2' ERR

A64=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$A64/../../.." && pwd)
OUT=$REPO/build/lab/arm64
DEBS=$OUT/debs
SYSROOT=$OUT/sysroot
mkdir -p "$DEBS"

"$REPO/scripts/apt-suites.sh" install bookworm-backports qemu-system-arm
"$REPO/scripts/deps.sh" qemu-efi-aarch64 gcc-aarch64-linux-gnu libc6-dev-arm64-cross \
    binutils-aarch64-linux-gnu kmod file

# apt knows arm64 packages only once the architecture is added and the
# lists are fetched again (both suites: QEMU comes from backports).
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    dpkg --add-architecture arm64
fi
if ! ls /var/lib/apt/lists/*_dists_bookworm_main_binary-arm64_Packages* >/dev/null 2>&1 ||
    ! ls /var/lib/apt/lists/*_dists_bookworm-backports_main_binary-arm64_Packages* >/dev/null 2>&1; then
    echo "arm64/setup: apt-get update (arm64 lists)" >&2
    apt-get -o DPkg::Lock::Timeout=300 update -qq >&2
fi

# candidate PKG [SUITE]: the version apt would take for PKG:arm64.
candidate() {
    local t=()
    [ -n "${2:-}" ] && t=(-t "$2")
    apt-cache policy "${t[@]}" "$1:arm64" 2>/dev/null | awk '/Candidate:/ { print $2 }'
}

# deb_of PKG [SUITE]: the .deb of PKG's candidate in $DEBS, fetched when
# missing (apt-get download writes the epoch's colon as %3a).
deb_of() {
    local pkg=$1 ver file
    ver=$(candidate "$@")
    if [ -z "$ver" ] || [ "$ver" = "(none)" ]; then
        echo "arm64/setup: no arm64 package $pkg${2:+ in $2}" >&2
        return 1
    fi
    file=$(ls "$DEBS/${pkg}_${ver//:/%3a}_"{arm64,all}.deb 2>/dev/null | head -1 || true)
    if [ -z "$file" ]; then
        (cd "$DEBS" && apt-get -o DPkg::Lock::Timeout=300 -o APT::Sandbox::User=root download -qq "$pkg:arm64=$ver" >&2)
        file=$(ls "$DEBS/${pkg}_${ver//:/%3a}_"{arm64,all}.deb 2>/dev/null | head -1)
    fi
    echo "$file"
}

# The listed packages and the kernel linux-image-arm64 points at today.
kernel=$(apt-cache depends linux-image-arm64:arm64 |
    sed -n 's/^ *Depends: \(linux-image-[0-9][^:]*\).*/\1/p' | head -1)
[ -n "$kernel" ] || { echo "arm64/setup: no linux-image-arm64 for arm64" >&2; exit 1; }
wanted=("$(deb_of "$kernel")")
while read -r pkg suite; do
    wanted+=("$(deb_of "$pkg" "$suite")")
done < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$A64/packages.list")

# The top Makefile includes every *.d under build/ as a dependency file:
# configuration directories such as etc/ld.so.conf.d would stop make. The
# lab needs none of them.
drop_make_d() {
    find "$SYSROOT" -depth -name '*.d' -exec rm -rf {} +
}

# The same top-level debs as last time and a complete closure: done.
top=$(printf '%s\n' "${wanted[@]##*/}" | sort)
if [ -f "$SYSROOT/.complete" ] && [ "$(cat "$SYSROOT/.top" 2>/dev/null)" = "$top" ]; then
    drop_make_d
    echo "arm64/setup: $SYSROOT is up to date"
    exit 0
fi

# Otherwise unpack afresh, so that no file of an older version stays.
rm -rf "$SYSROOT"
mkdir -p "$SYSROOT"
for d in "${wanted[@]}"; do
    dpkg -x "$d" "$SYSROOT"
    echo "${d##*/}" >>"$SYSROOT/.debs"
done

# Follow NEEDED until every soname an ELF file of the sysroot asks for is in
# it. Kernel modules are ELF too but need no libraries.
OBJDUMP=aarch64-linux-gnu-objdump
rounds=0
while :; do
    have=$(find "$SYSROOT" -path "$SYSROOT/lib/modules" -prune -o -name '*.so*' -printf '%f\n' | sort -u)
    # Programs and libraries only (not /usr/share); objdump skips non-ELF.
    missing=$(find "$SYSROOT"/{bin,sbin,lib,usr/bin,usr/sbin,usr/lib,usr/libexec} \
        -path "$SYSROOT/lib/modules" -prune -o -type f \( -perm -u+x -o -name '*.so*' \) \
        -exec "$OBJDUMP" -p {} + 2>/dev/null |
        awk '$1 == "NEEDED" { print $2 }' | sort -u | comm -23 - <(echo "$have") || true)
    [ -n "$missing" ] || break
    rounds=$((rounds + 1))
    [ "$rounds" -le 10 ] || { echo "arm64/setup: closure not complete: $missing" >&2; exit 1; }
    # A soname with no amd64 twin (the loader, ld-linux-aarch64.so.1) may
    # come with another package of this round (libc6): only a round that
    # adds nothing is stuck.
    added=0 unknown=""
    for so in $missing; do
        pkg=$(dpkg -S "*/x86_64-linux-gnu/$so" 2>/dev/null | sed -n 's/^\([^:,]*\)\(:amd64\)\{0,1\}: .*/\1/p' | head -1 || true)
        if [ -z "$pkg" ]; then
            unknown="$unknown $so"
            continue
        fi
        d=$(deb_of "$pkg")
        # Several sonames of one round may come from one package.
        grep -qx "${d##*/}" "$SYSROOT/.debs" && continue
        echo "arm64/setup: $so <- ${d##*/}" >&2
        dpkg -x "$d" "$SYSROOT"
        echo "${d##*/}" >>"$SYSROOT/.debs"
        added=$((added + 1))
    done
    if [ "$added" = 0 ]; then
        echo "arm64/setup: still missing: $(echo $missing) (no package here holds${unknown:- them} for amd64, or its arm64 build lacks it)" >&2
        exit 1
    fi
done

# modinfo and the initramfs builder resolve modules by name through
# modules.dep, which the kernel package's postinst would have made.
kver=$(ls "$SYSROOT/lib/modules" | head -1)
depmod -b "$SYSROOT" "$kver"
drop_make_d
echo "$top" >"$SYSROOT/.top"
touch "$SYSROOT/.complete"
echo "arm64/setup: $SYSROOT: kernel $kver, $(wc -l <"$SYSROOT/.debs") packages," \
    "$(du -sm "$SYSROOT" | cut -f1) MiB"
