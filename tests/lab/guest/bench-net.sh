#!/bin/sh
# Guest half of bench/net.sh: after DHCP through passt (lib-net.sh), sends
# LAB_NET_MIB MiB of zeros to the host's sink on LAB_GW:LAB_PORT_IN, then
# reads as much from its endless source on LAB_GW:LAB_PORT_OUT, timing each with
# the guest's own uptime. Prints `BENCH-NET tx|rx MIB SECONDS`.
fail() {
    echo "guest: $*"
    echo "$*" >>"$LAB_DETAIL"
    exit 1
}
. /lab/guest/lib-net.sh
mib=${LAB_NET_MIB:-8}
bytes=$((mib * 1048576))
up() { cut -d' ' -f1 /proc/uptime; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

# The host's sink closes after our EOF, so nc returns once it has it all.
t0=$(up)
head -c "$bytes" /dev/zero | nc -w 20 "$LAB_GW" "$LAB_PORT_IN" >/dev/null ||
    fail "sending to $LAB_GW:$LAB_PORT_IN failed"
t1=$(up)
# The source is endless: the guest closes once it has its share.
got=$(nc -w 20 "$LAB_GW" "$LAB_PORT_OUT" </dev/null | head -c "$bytes" | wc -c)
t2=$(up)
[ "$got" = "$bytes" ] || fail "received $got bytes from $LAB_GW:$LAB_PORT_OUT, want $bytes"
echo "BENCH-NET tx $mib $(secs "$t0" "$t1")"
echo "BENCH-NET rx $mib $(secs "$t1" "$t2")"
# For comparing the VMMs beyond the rates: TCP counters and interrupts.
awk '/^Tcp:/ { if (h) print "guest-tcp " h " / " $0; else h = $0 }' /proc/net/snmp
awk '/^TcpExt:/ { if (h) print "guest-tcpext " h " / " $0; else h = $0 }' /proc/net/netstat
grep -E 'virtio|MSI' /proc/interrupts | sed 's/^/guest-irq /'
echo "$mib MiB each way" >>"$LAB_DETAIL"
