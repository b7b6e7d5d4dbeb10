#!/bin/sh
# Guest half of krunkit-pause-quiesce: eth0 up, so the virtio-net driver
# posts its receive buffers, and /dev/vda read over and over (the page
# cache dropped each time, so reads reach the device), then LAB_TICKS ticks
# every 0.2 s, each with the frames received so far (the host floods eth0
# with broadcast frames) and the disk reads done.
ip link set eth0 up || { echo "cannot bring eth0 up" >>"$LAB_DETAIL"; exit 1; }
[ -b /dev/vda ] || { echo "no /dev/vda" >>"$LAB_DETAIL"; exit 1; }
# Each drop_caches write logs a line: keep them off the console.
echo 1 >/proc/sys/kernel/printk
(
    while :; do
        cat /dev/vda >/dev/null
        echo 3 >/proc/sys/vm/drop_caches
    done
) &
reader=$!
n=${LAB_TICKS:-100}
i=0
while [ $i -lt "$n" ]; do
    echo "LAB-TICK $i rx $(cat /sys/class/net/eth0/statistics/rx_packets) reads $(awk '{ print $1 }' /sys/block/vda/stat)"
    sleep 0.2
    i=$((i + 1))
done
kill $reader
wait $reader 2>/dev/null
echo "ticks=$n" >>"$LAB_DETAIL"
