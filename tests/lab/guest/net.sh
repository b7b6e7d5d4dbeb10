#!/bin/sh
# Guest half of krunkit-net: eth0 carries the MAC the host set (LAB_MAC),
# busybox udhcpc gets LAB_IP from passt's DHCP server, then 1 MiB goes to
# the host's listener on LAB_GW:LAB_PORT_IN and 1 MiB comes back from
# LAB_GW:LAB_PORT_OUT, compared with the pattern the host uses.
fail() {
    echo "guest: $*"
    echo "$*" >>"$LAB_DETAIL"
    exit 1
}
pattern() { seq 1000000 1131071; } # 1 MiB, every line different

. /lab/guest/lib-net.sh

pattern >/tmp/pattern.bin
want=$(md5sum </tmp/pattern.bin | cut -d' ' -f1)
nc -w 5 "$LAB_GW" "$LAB_PORT_IN" </tmp/pattern.bin || fail "TCP to $LAB_GW:$LAB_PORT_IN failed"
echo "guest: 1 MiB sent to $LAB_GW:$LAB_PORT_IN"
# The host repeats the pattern without end; the first 1 MiB must be it.
stats() {
    s=/sys/class/net/eth0/statistics
    echo "rx $(cat $s/rx_packets) pkts $(cat $s/rx_bytes) B err $(cat $s/rx_errors)" \
        "drop $(cat $s/rx_dropped) len $(cat $s/rx_length_errors); tx $(cat $s/tx_packets) pkts"
}
(
    nc -w 10 "$LAB_GW" "$LAB_PORT_OUT" </dev/null | head -c 1048576 >/tmp/recv.bin
    : >/tmp/recv.done
) &
t=0
while [ ! -e /tmp/recv.done ] && [ $t -lt 90 ]; do
    sleep 3
    t=$((t + 3))
    echo "guest: ${t}s: $(wc -c </tmp/recv.bin) bytes received; $(stats)"
    [ $t = 30 ] && cat /proc/net/tcp
done
[ -e /tmp/recv.done ] || fail "receiving from $LAB_GW:$LAB_PORT_OUT stalled: $(stats)"
got=$(md5sum </tmp/recv.bin | cut -d' ' -f1)
if [ "$got" != "$want" ]; then
    echo "guest: received $(wc -c </tmp/recv.bin) bytes; first and last lines:"
    head -c 200 /tmp/recv.bin | od -c | head -4
    tail -c 100 /tmp/recv.bin | od -c | head -3
    free
    fail "received $(wc -c </tmp/recv.bin) bytes from $LAB_GW:$LAB_PORT_OUT, not the pattern"
fi
echo "guest: 1 MiB received intact"
echo "eth0 $mac $addr via DHCP; 1 MiB each way over TCP" >>"$LAB_DETAIL"
