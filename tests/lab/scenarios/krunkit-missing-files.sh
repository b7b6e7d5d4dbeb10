#!/bin/sh
# lab-timeout: 60
# A missing kernel, initrd or disk image is a clear error: krunkit exits
# non-zero at once, names the missing path, and creates nothing (no console
# log, no REST socket, no pidfile, no image).
. "$LAB_DIR/lib.sh"
lab_need_krunkit

# try WHAT KERNEL INITRD DISK: run krunkit with one path missing.
try() {
    what=$1 kernel=$2 initrd=$3 disk=$4 missing=$5
    out=$WORK/$what
    mkdir -p "$out"
    timeout 20 "$KRUNKIT" --cpus 1 --memory 256 \
        --bootloader "linux,kernel=$kernel,initrd=$initrd,cmdline=\"console=hvc0\"" \
        --device "virtio-serial,logFilePath=$out/console.log" \
        --device "virtio-blk,path=$disk" \
        --restful-uri "unix://$out/rest.sock" --pidfile "$out/krunkit.pid" \
        >"$WORK/$what.err" 2>&1 </dev/null
    rc=$?
    echo "missing $what: exit $rc: $(head -3 "$WORK/$what.err" | tr '\n' ' ')"
    [ "$rc" != 0 ] && [ "$rc" != 124 ] || lab_fail "missing $what: want a quick non-zero exit, got $rc"
    grep -q -- "$missing" "$WORK/$what.err" || lab_fail "missing $what: the message does not name $missing"
    left=$(ls -A "$out")
    [ -z "$left" ] || lab_fail "missing $what: krunkit created: $left"
    [ ! -e "$missing" ] || lab_fail "missing $what: krunkit created $missing"
}

lab_disk "$WORK/disk.img" 16
try kernel "$WORK/no-such-vmlinuz" "$GUEST_INITRD" "$WORK/disk.img" "$WORK/no-such-vmlinuz"
try initrd "$GUEST_KERNEL" "$WORK/no-such-initrd" "$WORK/disk.img" "$WORK/no-such-initrd"
try disk "$GUEST_KERNEL" "$GUEST_INITRD" "$WORK/no-such-disk.img" "$WORK/no-such-disk.img"
