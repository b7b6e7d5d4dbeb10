#!/bin/sh
# lab-timeout: 600
# VMM memory overhead: the resident memory of the VMM process beyond the
# guest RAM the guest has touched, for krunkit and QEMU -M pc booting the
# same guest (1 vCPU, 512 MiB, root disk, virtio console) to an idle init.
# Measured BENCH_RSS_SETTLE seconds (default 5) after the init marker, from
# /proc/PID/smaps: total Rss of the process (and any helpers it started)
# minus the Rss of its guest RAM mapping (krunkit's and QEMU's anonymous
# RAM block). The two alternate over BENCH_REPS rounds (default 2); the
# median is recorded. Target for krunkit: under 10 MiB.
. "$LAB_DIR/../../bench/lib.sh"
lab_need_krunkit
lab_need_qemu

reps=${BENCH_REPS_RSS:-2}
settle=${BENCH_RSS_SETTLE:-5}
vmms=${BENCH_VMMS:-krunkit qemu-pc}
lab_disk "$WORK/root.img" 64

# measure_once VMM: boot to an idle init, append "total guest overhead"
# (KiB) to $WORK/VMM.rss, then stop the VM.
measure_once() {
    case "$1" in
    krunkit)
        krunkit_start wait 1
        pid=$KRUNKIT_PID started=$KRUNKIT_STARTED
        ;;
    qemu-pc)
        bench_qemu_start pc wait 1 "$WORK/root.img"
        pid=$QEMU_PID started=$QEMU_STARTED
        ;;
    *) lab_fail "unknown VMM $1 (BENCH_VMMS)" ;;
    esac
    secs=$(bench_time_to_init "$pid" "$started") || { echo "$1: $secs"; exit 1; }
    echo "$1: init after $secs s"
    lab_wait_log "$WORK/console.log" 'LAB-STEP waiting' 30 "$pid" ||
        { lab_show_logs; lab_fail "$1: the guest never got to wait"; }
    sleep "$settle"
    echo "$1 (pid $pid):" >>"$WORK/bench.log"
    total=$(lab_rss_kib "$pid")
    guest=$(bench_guest_ram_kib "$pid")
    [ -n "$total" ] && [ "$total" -gt 0 ] || lab_fail "$1: no RSS for pid $pid"
    [ "$guest" -gt 0 ] || { cat "/proc/$pid/maps"; lab_fail "$1: no guest RAM mapping found"; }
    over=$((total - guest))
    echo "$1: rss $total KiB, guest RAM touched $guest KiB, overhead $over KiB" | tee -a "$WORK/bench.log"
    echo "$total $guest $over" >>"$WORK/$1.rss"
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    KRUNKIT_PID="" QEMU_PID=""
    rm -f "$WORK/console.log" "$WORK/krunkit.log" "$WORK/qemu.log" "$WORK/rest.sock"
}

i=1
while [ "$i" -le "$reps" ]; do
    for v in $vmms; do
        measure_once "$v"
    done
    i=$((i + 1))
done

mib() {
    awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'
}
for v in $vmms; do
    # shellcheck disable=SC2046
    bench_record "$v" vmm-overhead "$(mib "$(bench_median $(cut -d' ' -f3 "$WORK/$v.rss"))")" MiB
    # shellcheck disable=SC2046
    bench_record "$v" rss-total "$(mib "$(bench_median $(cut -d' ' -f1 "$WORK/$v.rss"))")" MiB
    # shellcheck disable=SC2046
    bench_record "$v" guest-ram-touched "$(mib "$(bench_median $(cut -d' ' -f2 "$WORK/$v.rss"))")" MiB
done
