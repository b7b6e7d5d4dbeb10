#!/bin/sh
# lab-timeout: 1500
# Disk throughput: fio in the guest (tests/lab/guest/bench-fio.sh) on a
# second virtio-blk disk of BENCH_FIO_MIB (256) MiB, raw and qcow2, krunkit
# vs QEMU -M pc (virtio-blk-pci), 1 vCPU, 512 MiB, the fio initramfs.
# Each VMM gets a fresh image per format; the order alternates the VMMs
# within each format. Recorded per format: 4k random read and write IOPS at
# iodepth 32, 1M sequential read and write MiB/s (iodepth 8), and the MiB/s
# of the first pass over the empty disk (fill: allocating writes for qcow2).
# krunkit-workers is krunkit with KRUNKIT_NO_IO_URING=1 (its thread-pool
# fallback instead of io_uring), to tell the two I/O paths apart.
# BENCH_FIO_ROUNDS (1) repeats the whole set; medians are recorded.
#
# Both VMMs use the host page cache: krunkit opens images without O_DIRECT
# (io_uring for raw), so QEMU gets cache=writeback (its default) with
# aio=io_uring (BENCH_QEMU_DRIVE overrides); in the nested lab the images
# live on L1's tmpfs, which has no O_DIRECT anyway.
# qcow2 images come from qemu-img when this host has it, else from a copy
# bench/run.sh made on the build host (build/bench/images/).
. "$LAB_DIR/../../bench/lib.sh"
lab_need_krunkit
lab_need_qemu
[ -n "${GUEST_INITRD_TOOLS:-}" ] && [ -f "$GUEST_INITRD_TOOLS" ] ||
    lab_skip "no fio guest (tests/lab/build-guest.sh --tools)"

mib=${BENCH_FIO_MIB:-256}
runtime=${BENCH_FIO_RUNTIME:-8}
formats=${BENCH_FIO_FORMATS:-raw qcow2}
rounds=${BENCH_FIO_ROUNDS:-1}
vmms=${BENCH_VMMS:-krunkit krunkit-workers qemu-pc}
prebuilt=$LAB_DIR/../../build/bench/images/disk-${mib}M.qcow2
export LAB_INITRD="$GUEST_INITRD_TOOLS"
export LAB_CMDLINE="$LAB_CMDLINE lab.fio_runtime=$runtime"
export BENCH_QEMU_DRIVE="${BENCH_QEMU_DRIVE:-cache=writeback,aio=io_uring}"
lab_disk "$WORK/root.img" 64

# fresh_image FORMAT: a new empty data disk; prints its path.
fresh_image() {
    case "$1" in
    raw)
        lab_disk "$WORK/data.raw" "$mib"
        echo "$WORK/data.raw"
        ;;
    qcow2)
        rm -f "$WORK/data.qcow2"
        if command -v qemu-img >/dev/null; then
            qemu-img create -q -f qcow2 "$WORK/data.qcow2" "${mib}M" ||
                lab_fail "qemu-img create failed"
        elif [ -f "$prebuilt" ]; then
            cp "$prebuilt" "$WORK/data.qcow2" || lab_fail "cannot copy $prebuilt"
        else
            lab_fail "no qemu-img here and no $prebuilt (bench/run.sh makes it)"
        fi
        echo "$WORK/data.qcow2"
        ;;
    esac
}

# run_fio VMM FORMAT: one boot running every fio job; the guest's
# BENCH-FIO lines are recorded as VMM's FORMAT-* metrics.
run_fio() {
    img=$(fresh_image "$2") || { echo "$img"; exit 1; }
    case "$1" in
    krunkit)
        krunkit_start bench-fio 1 --device "virtio-blk,path=$img,format=$2"
        pid=$KRUNKIT_PID
        ;;
    krunkit-workers)
        export KRUNKIT_NO_IO_URING=1
        krunkit_start bench-fio 1 --device "virtio-blk,path=$img,format=$2"
        unset KRUNKIT_NO_IO_URING
        pid=$KRUNKIT_PID
        ;;
    qemu-pc)
        bench_qemu_start pc bench-fio 1 "$WORK/root.img" "$img"
        pid=$QEMU_PID
        ;;
    *) lab_fail "unknown VMM $1 (BENCH_VMMS)" ;;
    esac
    lab_wait_log "$WORK/console.log" 'LAB-RESULT bench-fio (PASS|FAIL)' "$((LAB_TIMEOUT / 2))" "$pid"
    result=$(lab_result_line bench-fio)
    echo "$1 $2: ${result:-no result}"
    case "$result" in
    *" PASS"*) ;;
    *) lab_show_logs; lab_fail "$1 $2: fio did not finish" ;;
    esac
    grep -a '^BENCH-FIO ' "$WORK/console.log" | tr -d '\r' >"$WORK/fio.lines"
    while read -r _tag job iops kib; do
        case "$job" in
        randread | randwrite)
            echo "$2-$job-4k-qd32 $(printf '%.0f' "$iops") IOPS"
            ;;
        *)
            echo "$2-$job-1M $(awk -v k="$kib" 'BEGIN { printf "%.1f", k / 1024 }') MiB/s"
            ;;
        esac
    done <"$WORK/fio.lines" | tee -a "$WORK/$1.fio"
    if ! lab_wait_exit "$pid" 60; then
        echo "WARNING: $1 still running 60 s after the guest's result; killed"
        kill -9 "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    fi
    cp "$WORK/console.log" "$WORK/console-$1-$2.log" 2>/dev/null
    KRUNKIT_PID="" QEMU_PID=""
    rm -f "$img" "$WORK/console.log" "$WORK/rest.sock"
}

round=1
while [ "$round" -le "$rounds" ]; do
    for fmt in $formats; do
        for v in $vmms; do
            run_fio "$v" "$fmt"
        done
    done
    round=$((round + 1))
done

# The median of each metric over the rounds.
for v in $vmms; do
    for m in $(cut -d' ' -f1 "$WORK/$v.fio" | awk '!seen[$0]++'); do
        unit=$(awk -v m="$m" '$1 == m { print $3; exit }' "$WORK/$v.fio")
        # shellcheck disable=SC2046
        value=$(bench_median $(awk -v m="$m" '$1 == m { print $2 }' "$WORK/$v.fio"))
        case "$unit" in
        IOPS) value=$(printf '%.0f' "$value") ;;
        *) value=$(printf '%.1f' "$value") ;;
        esac
        bench_record "$v" "$m" "$value" "$unit"
    done
done
