#!/bin/sh
# lab-timeout: 900
# Boot time, direct Linux boot: seconds from starting the VMM process to the
# guest's init marker (KRUNKIT-GUEST-INIT), for krunkit, QEMU -M pc and
# QEMU -M microvm, on the same kernel, initramfs, command line, 1 vCPU and
# 512 MiB, with the same 64 MiB root disk. The three alternate within each
# of BENCH_REPS rounds (default 3), so load from elsewhere spreads over all
# of them; the median of each is recorded, with the guest's own uptime at
# init (the kernel's share; the rest is the VMM and the firmware path
# before the kernel runs).
. "$LAB_DIR/../../bench/lib.sh"
lab_need_krunkit
lab_need_qemu

reps=${BENCH_REPS:-3}
vmms=${BENCH_VMMS:-krunkit qemu-pc qemu-microvm}
lab_disk "$WORK/root.img" 64

# boot_once VMM: one boot to init and power-off; appends "init uptime" to
# $WORK/VMM.times.
boot_once() {
    case "$1" in
    krunkit)
        krunkit_start boot 1
        pid=$KRUNKIT_PID started=$KRUNKIT_STARTED
        ;;
    qemu-pc | qemu-microvm)
        bench_qemu_start "${1#qemu-}" boot 1 "$WORK/root.img"
        pid=$QEMU_PID started=$QEMU_STARTED
        ;;
    esac
    secs=$(bench_time_to_init "$pid" "$started") || { echo "$1: $secs"; exit 1; }
    up=$(bench_init_uptime)
    echo "$1: init after $secs s (guest uptime ${up:-?} s)"
    echo "$secs ${up:-0}" >>"$WORK/$1.times"
    # Not part of the measurement, but a VMM that misses the power-off is
    # worth a line in the log; the next boot must not overlap it.
    if ! lab_wait_exit "$pid" 60; then
        echo "WARNING: $1 still running 60 s after the guest's init; killed"
        kill -9 "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    elif [ "$LAB_EXIT_RC" != 0 ]; then
        echo "WARNING: $1 exited with $LAB_EXIT_RC"
    fi
    KRUNKIT_PID="" QEMU_PID=""
    rm -f "$WORK/console.log" "$WORK/krunkit.log" "$WORK/qemu.log"
}

i=1
while [ "$i" -le "$reps" ]; do
    for v in $vmms; do
        boot_once "$v"
    done
    i=$((i + 1))
done

for v in $vmms; do
    # shellcheck disable=SC2046
    bench_record "$v" time-to-init "$(bench_median $(cut -d' ' -f1 "$WORK/$v.times"))" s
    # shellcheck disable=SC2046
    bench_record "$v" guest-uptime-at-init "$(bench_median $(cut -d' ' -f2 "$WORK/$v.times"))" s
done
