# Host side of networking in the lab, sourced after lib.sh by krunkit-net
# and bench/net.sh: passt on L1, as podman machine runs it on Linux.
# `net_start_passt` leaves it listening on $NET/passt.sock; the guest
# gets $IP from its DHCP server and reaches L1's loopback at $GW.
# L1 has no network of its own, and passt needs a host interface with a
# default route to copy: a tap that socat holds open plays that part.
# Everything started here (set SOCAT_PIDS for your own) is stopped on exit.

# Trixie's passt (tests/lab/build-passt.sh): bookworm's corrupts TCP
# towards a slow guest under any VMM (docs/net.md).
PASST=$(cd "$LAB_DIR/../.." && pwd)/build/lab/passt/passt-run
[ -x "$PASST" ] || lab_fail "no $PASST (tests/lab/setup.sh builds it)"
command -v socat >/dev/null 2>&1 || lab_skip "no socat"
IP=10.0.2.15 GW=10.0.2.2 MAC=52:54:00:12:34:56
TAP=labtap0
NET=$WORK/net

# net_stop: stop passt, the tap and the SOCAT_PIDS; net_start_passt may run again.
net_stop() {
    for _p in ${SOCAT_PIDS:-} ${PASST_PID:-} ${TAP_PID:-}; do
        kill "$_p" 2>/dev/null
        wait "$_p" 2>/dev/null
    done
    SOCAT_PIDS="" PASST_PID="" TAP_PID=""
    [ -n "${WMEM_MAX:-}" ] && echo "$WMEM_MAX" >/proc/sys/net/core/wmem_max
    WMEM_MAX=""
    # Not rm -rf: $NET/root is where passt's namespace mounted /.
    rm -f "$NET/passt.sock" "$NET"/*.pid 2>/dev/null
    rmdir "$NET/root" "$NET" 2>/dev/null
    return 0
}

net_cleanup() {
    net_stop
    lab_cleanup
}
trap net_cleanup EXIT

net_show_logs() {
    if [ -n "${PASST_PID:-}" ] && ! kill -0 "$PASST_PID" 2>/dev/null; then
        wait "$PASST_PID"
        echo "passt exited with status $?"
    fi
    dmesg | tail -5
    ls -l "$WORK"
    for _f in "$WORK"/passt.log "$WORK"/tap.log "$WORK"/socat-*.log; do
        [ -s "$_f" ] && { echo "--- ${_f##*/}"; grep -v 'syslog' "$_f" | tail -30; }
    done
    lab_show_logs
}

net_start_passt() {
    # The template interface for passt.
    socat -u "TUN:$IP/24,tun-type=tap,tun-name=$TAP,iff-up" /dev/null 2>"$WORK/tap.log" &
    TAP_PID=$!
    n=0
    while [ ! -e /sys/class/net/$TAP ] && [ $n -lt 50 ]; do
        sleep 0.1
        n=$((n + 1))
    done
    [ -e /sys/class/net/$TAP ] || { net_show_logs; lab_skip "cannot create a tap device (no tun module?)"; }
    ip route add default via $GW dev $TAP || lab_fail "cannot add the default route via $TAP"

    # passt asks for huge socket buffers; L1's default cap (208 KiB) makes it
    # write frames in pieces whenever the (slow, nested) guest falls behind.
    WMEM_MAX=$(cat /proc/sys/net/core/wmem_max)
    echo $((16 << 20)) >/proc/sys/net/core/wmem_max

    # passt drops to nobody (by number: L1 has no /etc/passwd) before it binds
    # its socket: give it a directory it may reach and write.
    chmod 711 "$WORK"
    mkdir -p "$NET" && chmod 1777 "$NET"
    # passt sandboxes itself with pivot_root, which the root of L1 refuses (it
    # is the initramfs, rootfs), and with a user namespace, which a chrooted
    # process may not create. So, in a mount namespace of its own: a bind mount
    # of / moved on top of / (switch_root's trick) becomes passt's root, an
    # ordinary mount and, seen from the namespace, no chroot.
    mkdir -p "$NET/root"
    unshare -m sh -c "mount --rbind / '$NET/root' && cd '$NET/root' && mount --move . / &&
        exec chroot . '$PASST' -f -e -4 -1 --runas 65534:65534 -s '$NET/passt.sock'" \
        >"$WORK/passt.log" 2>&1 &
    PASST_PID=$!
    n=0
    while [ ! -S "$NET/passt.sock" ] && [ $n -lt 100 ]; do
        kill -0 $PASST_PID 2>/dev/null || break
        sleep 0.1
        n=$((n + 1))
    done
    if [ ! -S "$NET/passt.sock" ]; then
        kill -0 $PASST_PID 2>/dev/null || { wait $PASST_PID; echo "passt exited with status $?"; }
        net_show_logs
        lab_fail "passt did not create its socket"
    fi
    echo "passt listening on $NET/passt.sock after $((n / 10)).$((n % 10)) s"
}
