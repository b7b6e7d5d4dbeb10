#!/bin/sh
# Guest half of krunkit-pause-quiesce: eth0 up, so the virtio-net driver
# posts its receive buffers, then LAB_TICKS ticks every 0.2 s, each with the
# frames received so far (the host floods eth0 with broadcast frames).
ip link set eth0 up || { echo "cannot bring eth0 up" >>"$LAB_DETAIL"; exit 1; }
n=${LAB_TICKS:-100}
i=0
while [ $i -lt "$n" ]; do
    echo "LAB-TICK $i rx $(cat /sys/class/net/eth0/statistics/rx_packets)"
    sleep 0.2
    i=$((i + 1))
done
echo "ticks=$n" >>"$LAB_DETAIL"
