#!/bin/sh
# Guest half of the balloon scenario: touch LAB_MB MiB (a tmpfs file), tell
# the host, free it, tell the host, then stay up LAB_HOLD seconds so the
# balloon (inflation or free page reporting) can hand the pages back while
# the host watches the VMM's RSS.
mb=${LAB_MB:-256}
hold=${LAB_HOLD:-20}
drv=$(ls /sys/bus/virtio/drivers/virtio_balloon 2>/dev/null | grep -c virtio)
[ "$drv" -ge 1 ] || { echo "no virtio_balloon device bound" >>"$LAB_DETAIL"; exit 1; }
mkdir -p /mnt/fill && mount -t tmpfs -o size=$((mb + 16))m fill /mnt/fill
dd if=/dev/zero of=/mnt/fill/f bs=1048576 count="$mb" 2>/dev/null
echo "LAB-STEP touched $mb"
sleep 2
rm -f /mnt/fill/f
umount /mnt/fill
sync
echo 3 >/proc/sys/vm/drop_caches
echo "LAB-STEP freed"
sleep "$hold"
echo "touched and freed ${mb} MiB" >>"$LAB_DETAIL"
