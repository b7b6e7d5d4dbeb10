#!/bin/sh
# Guest half of bench/fio.sh: fio on the second disk (/dev/vdb, O_DIRECT,
# libaio), one line per job on the console for the host to collect:
#   BENCH-FIO JOB IOPS KIB_PER_S
# Jobs, in this order: fill (1M sequential writes over the whole disk, so
# qcow2 images are allocated before anything is read), seqread and seqwrite
# (1M, iodepth 8), randread and randwrite (4k, iodepth 32), each
# time-based for LAB_FIO_RUNTIME seconds (default 10).
dev=/dev/vdb
runtime=${LAB_FIO_RUNTIME:-10}
if ! command -v fio >/dev/null; then
    echo "no fio in this initramfs (build-guest.sh --tools)" >>"$LAB_DETAIL"
    exit 1
fi
if [ ! -b $dev ]; then
    echo "no $dev" >>"$LAB_DETAIL"
    exit 1
fi

# run_job NAME RW BS IODEPTH [fio args...]: prints the BENCH-FIO line from
# fio's terse output (v3: fields 7/8 read KiB/s and IOPS, 48/49 write).
run_job() {
    name=$1 rw=$2 bs=$3 depth=$4
    shift 4
    out=$(fio --name="$name" --filename=$dev --rw="$rw" --bs="$bs" --iodepth="$depth" \
        --ioengine=libaio --direct=1 --numjobs=1 --group_reporting \
        --output-format=terse --terse-version=3 "$@" 2>/tmp/fio.err)
    rc=$?
    line=$(echo "$out" | grep '^3;' | tail -1)
    if [ $rc != 0 ] || [ -z "$line" ]; then
        echo "fio $name failed (rc $rc):"
        cat /tmp/fio.err
        echo "fio $name failed" >>"$LAB_DETAIL"
        return 1
    fi
    echo "$line" | awk -F';' -v n="$name" '{
        if ($5 != 0) { print "BENCH-FIO-ERROR " n " " $5; exit 1 }
        if ($8 + 0 > 0) print "BENCH-FIO " n " " $8 " " $7
        else print "BENCH-FIO " n " " $49 " " $48
    }'
}

timed="--time_based --runtime=$runtime --ramp_time=1"
run_job fill write 1M 8 || exit 1
# shellcheck disable=SC2086
{
    run_job seqread read 1M 8 $timed &&
        run_job seqwrite write 1M 8 $timed &&
        run_job randread randread 4k 32 $timed --randrepeat=0 &&
        run_job randwrite randwrite 4k 32 $timed --randrepeat=0
} || exit 1
echo "fio done ($runtime s per job)" >>"$LAB_DETAIL"
