# Helpers to assemble a busybox initramfs from the running machine's files,
# shared by build-guest.sh (L2 test guest) and build-l1.sh (L1 lab host).
# Sourced by bash; every function takes the staging root as $ROOT.
# With LAB_SYSROOT set (another architecture's files, tests/lab/arch.sh)
# kernel, modules, busybox and programs come from that tree instead, and a
# program's libraries are found by following its NEEDED entries
# ($LAB_OBJDUMP -p) there: ldd cannot run a foreign binary.
#
# Kernel modules are resolved with `modinfo -F depends` (the kernel's own
# dependency record) and listed in load order in /etc/lab-modules, so the
# init can insmod them one by one without modprobe or modules.dep.

# The kernel both layers boot: the newest /boot/vmlinuz-* (Debian's
# linux-image-amd64, or the sysroot's arm64 Image) unless LAB_KERNEL names one.
lab_kernel_image() {
    if [ -n "${LAB_KERNEL:-}" ]; then
        echo "$LAB_KERNEL"
        return
    fi
    ls -1 "${LAB_SYSROOT:-}"/boot/vmlinuz-* 2>/dev/null | sort -V | tail -1
}

lab_kernel_version() {
    basename "$1" | sed 's/^vmlinuz-//'
}

ird_init_root() {
    rm -rf "$ROOT"
    mkdir -p "$ROOT"/{bin,sbin,etc,proc,sys,dev,tmp,run,mnt,lib/modules,usr/bin,usr/sbin}
    cp "${LAB_SYSROOT:-}/bin/busybox" "$ROOT/bin/busybox"
    ln -s busybox "$ROOT/bin/sh"
    : >"$ROOT/etc/lab-modules"
}

# Append module $1 and, first, its dependencies to /etc/lab-modules.
# Built-in modules (modinfo reports "(builtin)") need nothing.
_ird_add_module() {
    local name=$1 file dep
    name=${name//-/_}
    grep -qx "$name" "$ROOT/etc/.lab-modules-seen" 2>/dev/null && return 0
    echo "$name" >>"$ROOT/etc/.lab-modules-seen"
    file=$(modinfo -b "${LAB_SYSROOT:-/}" -k "$KVER" -F filename "$name" 2>/dev/null | head -1)
    if [ -z "$file" ]; then
        echo "initramfs: module $name not found for $KVER" >&2
        return 1
    fi
    case "$file" in
    "(builtin)" | "") return 0 ;;
    esac
    for dep in $(modinfo -b "${LAB_SYSROOT:-/}" -k "$KVER" -F depends "$name" | tr ',' ' '); do
        _ird_add_module "$dep" || return 1
    done
    # Soft pre-dependencies (e.g. crc32c for some filesystems) are needed too.
    for dep in $(modinfo -b "${LAB_SYSROOT:-/}" -k "$KVER" -F softdep "$name" 2>/dev/null |
        sed -n 's/.*pre:\(.*\)/\1/p' | sed 's/post:.*//'); do
        _ird_add_module "$dep" 2>/dev/null || true
    done
    case "$file" in
    *.ko) cp "$file" "$ROOT/lib/modules/$name.ko" ;;
    *.ko.xz) xz -dc "$file" >"$ROOT/lib/modules/$name.ko" ;;
    *.ko.zst) zstd -qdc "$file" >"$ROOT/lib/modules/$name.ko" ;;
    *.ko.gz) gzip -dc "$file" >"$ROOT/lib/modules/$name.ko" ;;
    *)
        echo "initramfs: unknown module format $file" >&2
        return 1
        ;;
    esac
    echo "$name" >>"$ROOT/etc/lab-modules"
}

# ird_add_modules KVER name...: required modules; a missing one is an error.
ird_add_modules() {
    KVER=$1
    shift
    local m
    for m in "$@"; do
        _ird_add_module "$m" || return 1
    done
}

# ird_add_optional_modules KVER name...: modules the kernel may not have.
ird_add_optional_modules() {
    KVER=$1
    shift
    local m
    for m in "$@"; do
        _ird_add_module "$m" 2>/dev/null || echo "initramfs: optional module $m skipped" >&2
    done
}

# Copy one file to the same path under $ROOT, following symlinks but keeping
# the link itself when the name differs (ld.so and versioned .so names).
_ird_copy_path() {
    local src=$1 real
    [ -e "$ROOT$src" ] && return 0
    mkdir -p "$ROOT$(dirname "$src")"
    if [ -L "$src" ]; then
        real=$(readlink -f "$src")
        _ird_copy_path "$real"
        ln -sf "$real" "$ROOT$src"
    else
        cp -p "$src" "$ROOT$src"
    fi
}

# _ird_copy_sysroot PATH: file PATH of $LAB_SYSROOT to PATH under $ROOT; a
# link is kept as it is (the layout is the same) and its target, resolved
# inside the sysroot, copied too.
_ird_copy_sysroot() {
    local p=$1 target
    [ -e "$ROOT$p" ] || [ -L "$ROOT$p" ] && return 0
    mkdir -p "$ROOT$(dirname "$p")"
    if [ -L "$LAB_SYSROOT$p" ]; then
        target=$(readlink "$LAB_SYSROOT$p")
        ln -s "$target" "$ROOT$p"
        case "$target" in
        /*) _ird_copy_sysroot "$target" ;;
        *) _ird_copy_sysroot "$(dirname "$p")/$target" ;;
        esac
    else
        cp -p "$LAB_SYSROOT$p" "$ROOT$p"
    fi
}

# _ird_sysroot_lib SONAME: the sysroot path of a library, where the arm64
# loader looks (multiarch directories first).
_ird_sysroot_lib() {
    local d
    for d in /lib/aarch64-linux-gnu /usr/lib/aarch64-linux-gnu /lib /usr/lib; do
        if [ -e "$LAB_SYSROOT$d/$1" ]; then
            echo "$d/$1"
            return 0
        fi
    done
    return 1
}

# _ird_add_needed FILE: FILE's interpreter and NEEDED libraries, and
# theirs, from the sysroot.
_ird_add_needed() {
    local f=$1 so p interp
    interp=$(readelf -l "$f" 2>/dev/null | sed -n 's/.*program interpreter: \(.*\)]/\1/p')
    [ -z "$interp" ] || _ird_copy_sysroot "$interp"
    for so in $("${LAB_OBJDUMP:-objdump}" -p "$f" 2>/dev/null | awk '$1 == "NEEDED" { print $2 }'); do
        if ! p=$(_ird_sysroot_lib "$so"); then
            echo "initramfs: $so (needed by ${f##*/}) not in $LAB_SYSROOT" >&2
            return 1
        fi
        [ -e "$ROOT$p" ] && continue
        _ird_copy_sysroot "$p"
        _ird_add_needed "$LAB_SYSROOT$p" || return 1
    done
}

# ird_add_binary PATH: a dynamic executable with every library ldd lists,
# at their own paths, so the dynamic loader finds them without configuration.
# With LAB_SYSROOT, PATH is inside the sysroot (a path outside it, such as
# build/arm64/krunkit, adds only its libraries).
ird_add_binary() {
    local bin=$1 lib
    if [ -n "${LAB_SYSROOT:-}" ]; then
        case "$bin" in
        "$LAB_SYSROOT"/*) _ird_copy_sysroot "${bin#"$LAB_SYSROOT"}" ;;
        esac
        _ird_add_needed "$bin"
        return
    fi
    if [ ! -x "$bin" ]; then
        echo "initramfs: $bin not executable" >&2
        return 1
    fi
    _ird_copy_path "$bin"
    for lib in $(ldd "$bin" 2>/dev/null | awk '/=> \// { print $3 } /^\t\// { print $1 }'); do
        _ird_copy_path "$lib"
    done
}

# ird_add_file SRC [DEST]: one plain file (data, firmware).
ird_add_file() {
    local src=$1 dest=${2:-$1}
    mkdir -p "$ROOT$(dirname "$dest")"
    cp -L "$src" "$ROOT$dest"
}

# ird_pack OUT [gzip|none]: newc cpio with every file owned by root.
# Uncompressed is faster to unpack under TCG for large images.
ird_pack() {
    local out=$1 comp=${2:-gzip} tmp
    rm -f "$ROOT/etc/.lab-modules-seen"
    tmp="$out.tmp.$$"
    if [ "$comp" = gzip ]; then
        (cd "$ROOT" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet | gzip -6n) >"$tmp"
    else
        (cd "$ROOT" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$tmp"
    fi
    mv -f "$tmp" "$out"
}

# lab_inputs_hash FILE...: one digest over the contents of the named inputs
# (missing files count as their name), so builds can be skipped when nothing
# changed. Names enter without their directory: the same script called by
# another path is the same input.
lab_inputs_hash() {
    local f
    for f in "$@"; do
        if [ -f "$f" ]; then
            printf '%s ' "${f##*/}"
            sha256sum <"$f"
        else
            echo "$f missing"
        fi
    done | sha256sum | cut -d' ' -f1
}
