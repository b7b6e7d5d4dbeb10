#!/bin/sh
# lab-timeout: 1200
# Boot time, direct Linux boot: seconds from starting the VMM process to the
# guest's init marker (KRUNKIT-GUEST-INIT), for krunkit, QEMU -M pc and
# QEMU -M microvm, on the same kernel, initramfs, command line, 1 vCPU and
# 512 MiB, with the same 64 MiB root disk. The three alternate within each
# of BENCH_REPS rounds (default 3), so load from elsewhere spreads over all
# of them; the median of each is recorded, with the guest's own uptime at
# init (the kernel's share; the rest is the VMM and the firmware path
# before the kernel runs). Then one traced boot per VMM keeps the guest's
# kernel log (dmesg-VMM.log) and prints its largest gaps
# (BENCH_BOOT_TRACE=0 skips it).
. "$LAB_DIR/../../bench/lib.sh"
lab_need_krunkit
lab_need_qemu

reps=${BENCH_REPS:-3}
vmms=${BENCH_VMMS:-krunkit qemu-pc qemu-microvm}
lab_disk "$WORK/root.img" 64

# boot_once VMM [GUEST_SCENARIO]: one boot to init and power-off; a timed
# boot (no GUEST_SCENARIO) appends "init uptime" to $WORK/VMM.times.
boot_once() {
    case "$1" in
    krunkit)
        krunkit_start "${2:-boot}" 1
        pid=$KRUNKIT_PID started=$KRUNKIT_STARTED
        ;;
    qemu-pc)
        bench_qemu_start pc "${2:-boot}" 1 "$WORK/root.img"
        pid=$QEMU_PID started=$QEMU_STARTED
        ;;
    qemu-microvm)
        bench_qemu_start microvm "${2:-boot}" 1 "$WORK/root.img"
        pid=$QEMU_PID started=$QEMU_STARTED
        ;;
    *) lab_fail "unknown VMM $1 (BENCH_VMMS)" ;;
    esac
    bench_boot_timed "$1" "$pid" "$started"
    [ -n "${2:-}" ] || echo "$BOOT_SECS ${BOOT_UPTIME:-0}" >>"$WORK/$1.times"
    [ -z "${2:-}" ] || cp "$WORK/console.log" "$WORK/$2-$1.log"
    rm -f "$WORK/console.log" "$WORK/krunkit.log" "$WORK/qemu.log" "$WORK/rest.sock"
}

# trace_boot VMM: one more boot (not timed) whose guest prints its kernel
# log, kept as dmesg-VMM.log; shows the largest gaps between kernel
# messages, i.e. where the kernel waited before init under this VMM.
trace_boot() {
    boot_once "$1" bench-dmesg >/dev/null
    sed -n '/BENCH-DMESG-BEGIN/,/BENCH-DMESG-END/p' "$WORK/bench-dmesg-$1.log" | tr -d '\r' |
        grep -E '^(\[|flags)' >"$WORK/dmesg-$1.log"
    rm -f "$WORK/bench-dmesg-$1.log"
    echo "$1: kernel log $(wc -l <"$WORK/dmesg-$1.log") lines, largest gaps before a message:"
    awk '/^\[/ {
            t = substr($0, 2, index($0, "]") - 2) + 0
            if (NR > 1) printf "%8.3f s  %s\n", t - prev, $0
            prev = t
        }' "$WORK/dmesg-$1.log" | sort -rn | head -n "${BENCH_TRACE_GAPS:-6}" | cut -c1-150
}

i=1
while [ "$i" -le "$reps" ]; do
    for v in $vmms; do
        boot_once "$v"
    done
    i=$((i + 1))
done

[ "${BENCH_BOOT_TRACE:-1}" = 0 ] || for v in $vmms; do
    trace_boot "$v"
done

for v in $vmms; do
    # shellcheck disable=SC2046
    bench_record "$v" time-to-init "$(bench_median $(cut -d' ' -f1 "$WORK/$v.times"))" s
    # shellcheck disable=SC2046
    bench_record "$v" guest-uptime-at-init "$(bench_median $(cut -d' ' -f2 "$WORK/$v.times"))" s
done
