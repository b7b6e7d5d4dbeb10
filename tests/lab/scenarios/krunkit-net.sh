#!/bin/sh
# lab-timeout: 300
# virtio-net on passt, the way podman machine runs it on Linux:
# `--device virtio-net,type=unixstream,path=passt.sock,mac=...`. The guest
# finds eth0 with our MAC, gets its address from passt's DHCP server (the
# one passt hands out: the template interface's, 10.0.2.15), then moves
# 1 MiB each way over TCP to listeners on L1's loopback through passt
# (passt maps the gateway address to the host), checked on both ends.
# passt's side is in lib-net.sh.
. "$LAB_DIR/lib.sh"
. "$LAB_DIR/lib-net.sh"
PORT_IN=5571 PORT_OUT=5572
net_start_passt

# Every line different, so a frame put in the wrong place cannot pass.
seq 1000000 1131071 >"$WORK/pattern.bin"
socat -u "TCP-LISTEN:$PORT_IN,bind=127.0.0.1,reuseaddr" "CREATE:$WORK/from-guest.bin" \
    2>"$WORK/socat-in.log" &
SOCAT_PIDS=$!
# The pattern again and again: the guest closes once it has read one, as a
# host-side close can end the guest's stream early in this lab, under QEMU
# as well (docs/net.md).
socat -u "SYSTEM:while cat '$WORK/pattern.bin'; do true; done" "TCP-LISTEN:$PORT_OUT,bind=127.0.0.1,reuseaddr" \
    2>"$WORK/socat-out.log" &
SOCAT_PIDS="$SOCAT_PIDS $!"

LAB_CMDLINE="lab.ip=$IP lab.gw=$GW lab.mac=$MAC lab.port_in=$PORT_IN lab.port_out=$PORT_OUT"
krunkit_start net 1 --krun-log-level 5 --device "virtio-net,type=unixstream,path=$NET/passt.sock,mac=$MAC"
# In subshells, so a failure can show passt's side too before failing.
( krunkit_expect_boot 120 ) || { net_show_logs; exit 1; }
( krunkit_expect_result net 150 ) || { net_show_logs; exit 1; }
grep -a 'LAB-STEP dhcp' "$WORK/console.log" | head -1
krunkit_expect_exit 30 0
cmp -s "$WORK/from-guest.bin" "$WORK/pattern.bin" || {
    net_show_logs
    lab_fail "the guest's 1 MiB did not arrive intact ($(wc -c <"$WORK/from-guest.bin" 2>/dev/null) bytes)"
}
echo "guest -> L1: 1 MiB intact; L1 -> guest: checked by the guest"
grep -a -i 'dhcp' "$WORK/passt.log" | grep -v syslog | head -5
