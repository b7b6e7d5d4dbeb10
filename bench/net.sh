#!/bin/sh
# lab-timeout: 1200
# Network throughput through passt (tests/lab/lib-net.sh), the way podman
# machine connects a VM on Linux: krunkit's virtio-net on the unixstream
# socket vs QEMU -M pc with virtio-net-pci on `-netdev stream` to the same
# passt, same guest, 1 vCPU, 512 MiB. The guest (tests/lab/guest/
# bench-net.sh) sends BENCH_NET_MIB (8) MiB over TCP to a sink on L1 and
# reads as much from an endless source there, timed by its own clock. The VMMs
# alternate within each of BENCH_REPS (3) rounds, each boot with a fresh
# passt; the median MiB/s of each direction is recorded.
# BENCH_NET_KRUNKIT_ARGS adds krunkit options (e.g. --krun-log-level 5 for
# the device's trace lines).
. "$LAB_DIR/../../bench/lib.sh"
. "$LAB_DIR/lib-net.sh"
lab_need_krunkit
lab_need_qemu

reps=${BENCH_REPS:-3}
mib=${BENCH_NET_MIB:-8}
vmms=${BENCH_VMMS:-krunkit qemu-pc}
PORT_IN=5581 PORT_OUT=5582
export LAB_CMDLINE="$LAB_CMDLINE lab.ip=$IP lab.gw=$GW lab.mac=$MAC lab.port_in=$PORT_IN lab.port_out=$PORT_OUT lab.net_mib=$mib"
lab_disk "$WORK/root.img" 64

# One boot of VMM moving the data both ways; appends "tx rx" MiB/s to $WORK/VMM.rates.
net_once() {
    net_start_passt
    socat -u "TCP-LISTEN:$PORT_IN,bind=127.0.0.1,reuseaddr" /dev/null 2>"$WORK/socat-in.log" &
    SOCAT_PIDS=$!
    socat -u OPEN:/dev/zero "TCP-LISTEN:$PORT_OUT,bind=127.0.0.1,reuseaddr" \
        2>"$WORK/socat-out.log" &
    SOCAT_PIDS="$SOCAT_PIDS $!"
    case "$1" in
    krunkit)
        krunkit_start bench-net 1 ${BENCH_NET_KRUNKIT_ARGS:-} --device "virtio-net,type=unixstream,path=$NET/passt.sock,mac=$MAC"
        pid=$KRUNKIT_PID
        ;;
    qemu-pc)
        bench_qemu_start pc bench-net 1 "$WORK/root.img" -- \
            -netdev "stream,id=n0,server=off,addr.type=unix,addr.path=$NET/passt.sock" \
            -device "virtio-net-pci,netdev=n0,mac=$MAC,romfile="
        pid=$QEMU_PID
        ;;
    *) lab_fail "unknown VMM $1 (BENCH_VMMS)" ;;
    esac
    lab_wait_log "$WORK/console.log" 'LAB-RESULT bench-net (PASS|FAIL)' "$((LAB_TIMEOUT / 2))" "$pid" ||
        {
            lab_wait_exit "$pid" 5
            net_show_logs
            lab_fail "$1: the guest did not finish (VMM exit status ${LAB_EXIT_RC:-none})"
        }
    grep -aq 'LAB-RESULT bench-net PASS' "$WORK/console.log" || { net_show_logs; lab_fail "$1: guest failed"; }
    rates=$(tr -d '\r' <"$WORK/console.log" | awk '/^BENCH-NET / && $4 > 0 { r[$2] = $3 / $4 }
        END { printf "%.2f %.2f", r["tx"], r["rx"] }')
    echo "$1: MiB/s guest->host, host->guest: $rates"
    echo "$rates" >>"$WORK/$1.rates"
    bench_boot_done "$1" "$pid"
    net_stop
    for f in krunkit qemu passt console; do
        [ -f "$WORK/$f.log" ] && mv "$WORK/$f.log" "$WORK/$f-$1-$i.log"
    done
    rm -f "$WORK/rest.sock"
}

i=1
while [ "$i" -le "$reps" ]; do
    for v in $vmms; do
        net_once "$v"
    done
    i=$((i + 1))
done
for v in $vmms; do
    # shellcheck disable=SC2046
    bench_record "$v" tcp-guest-to-host "$(bench_median $(cut -d' ' -f1 "$WORK/$v.rates"))" MiB/s
    # shellcheck disable=SC2046
    bench_record "$v" tcp-host-to-guest "$(bench_median $(cut -d' ' -f2 "$WORK/$v.rates"))" MiB/s
done
