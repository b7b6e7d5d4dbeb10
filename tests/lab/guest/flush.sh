#!/bin/sh
# Guest half of the flush scenario: write a pattern through the page cache
# (no O_DIRECT, no fsync), announce it, then flush the whole device
# (fsync on the block device = a virtio-blk FLUSH after the writes) and
# announce that. The host checks the file after the second step.
dev=/dev/vdb
[ -b $dev ] || { echo "no $dev" >>"$LAB_DETAIL"; exit 1; }
# Through a file: dd would write a short block when a pipe hands it less.
yes "LAB-FLUSH-0123456789abcdef" | head -c 65536 >/tmp/flush.data
dd if=/tmp/flush.data of=$dev bs=65536 count=1 conv=notrunc 2>/dev/null
echo "LAB-STEP written-unflushed"
sync
blockdev --flushbufs $dev
echo "LAB-STEP flushed"
echo "flushed" >>"$LAB_DETAIL"
