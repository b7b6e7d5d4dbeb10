# Sourced by the guest halves of krunkit-net and bench/net.sh: eth0 must
# carry the MAC the host set (LAB_MAC); busybox udhcpc gets LAB_IP from
# passt's DHCP server. The caller defines fail().
n=0
while [ ! -e /sys/class/net/eth0 ] && [ $n -lt 50 ]; do
    sleep 0.1
    n=$((n + 1))
done
[ -e /sys/class/net/eth0 ] || fail "no eth0 (virtio_net did not probe)"
mac=$(cat /sys/class/net/eth0/address)
[ "$mac" = "$LAB_MAC" ] || fail "eth0 has MAC $mac, want $LAB_MAC"
ip link set lo up
ip link set eth0 up || fail "cannot bring eth0 up"

cat >/tmp/udhcpc.sh <<'SCRIPT'
#!/bin/sh
case "$1" in
deconfig)
    ip addr flush dev "$interface"
    ip link set "$interface" up
    ;;
bound | renew)
    ip addr add "$ip/${mask:-24}" dev "$interface"
    [ -n "$router" ] && ip route add default via "${router%% *}" dev "$interface"
    echo "ip=$ip mask=$mask router=$router" >/tmp/dhcp.lease
    ;;
esac
exit 0
SCRIPT
chmod +x /tmp/udhcpc.sh
start=$(cut -d' ' -f1 /proc/uptime)
udhcpc -i eth0 -f -q -n -t 6 -T 3 -s /tmp/udhcpc.sh >/tmp/udhcpc.log 2>&1 || {
    cat /tmp/udhcpc.log
    fail "no DHCP lease"
}
addr=$(ip -4 addr show dev eth0 | awk '/inet / { print $2; exit }')
echo "LAB-STEP dhcp $(cat /tmp/dhcp.lease) addr=$addr (started at $start s)"
[ "${addr%/*}" = "$LAB_IP" ] || fail "DHCP gave ${addr:-nothing}, want $LAB_IP"

