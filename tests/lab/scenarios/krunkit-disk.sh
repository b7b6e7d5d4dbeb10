#!/bin/sh
# lab-timeout: 180
# A second virtio-blk disk (/dev/vdb) backed by a raw image: a pattern the
# host wrote at 1 MiB is read in the guest, and the pattern the guest writes
# at 0 (with fsync) is in the image on the host while the VM still runs and
# after it exits; nothing else in the image changed.
. "$LAB_DIR/lib.sh"
img=$WORK/data.img
lab_disk "$img" 64
lab_pattern HOST >"$WORK/host.pattern"
dd if="$WORK/host.pattern" of="$img" bs=4096 seek=256 conv=notrunc 2>/dev/null
lab_pattern GUEST >"$WORK/guest.expected"
krunkit_start disk 1 --device "virtio-blk,path=$img"
krunkit_expect_boot 120
lab_wait_log "$WORK/console.log" 'LAB-STEP guest-pattern-written|LAB-RESULT disk' 60 "$KRUNKIT_PID"
dd if="$img" bs=4096 count=1 2>/dev/null | cmp -s - "$WORK/guest.expected" ||
    { lab_show_logs; lab_fail "guest pattern not in the image while the VM runs"; }
echo "guest pattern found in the image while the VM runs"
krunkit_expect_result disk 60
krunkit_expect_exit 30 0
dd if="$img" bs=4096 count=1 2>/dev/null | cmp -s - "$WORK/guest.expected" ||
    lab_fail "guest pattern not in the image after exit"
lab_pattern HOST >"$WORK/host.expected"
dd if="$img" bs=4096 skip=256 count=1 2>/dev/null | cmp -s - "$WORK/host.expected" ||
    lab_fail "host pattern at 1 MiB damaged"
# Everything outside the two patterned blocks must still read as zeroes.
nonzero=$(dd if="$img" bs=4096 skip=1 count=255 2>/dev/null | tr -d '\000' | wc -c)
[ "$nonzero" = 0 ] || lab_fail "$nonzero stray bytes between the patterns"
echo "image holds both patterns and nothing else"
