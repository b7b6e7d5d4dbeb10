#!/bin/sh
# lab-timeout: 180
# Flush reaches the file: the guest writes 64 KiB through its page cache
# (no fsync), then flushes the device (fsync on /dev/vdb: the writes, then a
# virtio-blk FLUSH). Once the guest reports the flush done, the data must be
# in the image file; the VMM may not keep it in a cache of its own.
. "$LAB_DIR/lib.sh"
img=$WORK/data.img
lab_disk "$img" 64
yes "LAB-FLUSH-0123456789abcdef" | head -c 65536 >"$WORK/expected"
krunkit_start flush 1 --device "virtio-blk,path=$img"
krunkit_expect_boot 120
lab_wait_log "$WORK/console.log" 'LAB-STEP flushed' 60 "$KRUNKIT_PID" ||
    { lab_show_logs; lab_fail "guest never reported the flush"; }
head -c 65536 "$img" | cmp -s - "$WORK/expected" ||
    { lab_show_logs; lab_fail "flushed data not in the image file"; }
echo "flushed data is in the image file while the VM runs"
krunkit_expect_result flush 60
krunkit_expect_exit 30 0
