#!/bin/sh
# lab-timeout: 300
# The same disk image serves a second krunkit once the first has exited:
# both runs pass the disk scenario (the host pattern is still there and the
# guest pattern is written again).
. "$LAB_DIR/lib.sh"
img=$WORK/data.img
lab_disk "$img" 64
lab_pattern HOST >"$WORK/host.pattern"
dd if="$WORK/host.pattern" of="$img" bs=4096 seek=256 conv=notrunc 2>/dev/null
for run in 1 2; do
    : >"$WORK/console.log"
    krunkit_start disk 1 --device "virtio-blk,path=$img"
    krunkit_expect_boot 120
    krunkit_expect_result disk 60
    krunkit_expect_exit 30 0
    echo "run $run passed"
done
