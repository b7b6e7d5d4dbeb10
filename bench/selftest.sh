#!/bin/sh
# lab-timeout: 180
# Not a benchmark: proves the benchmark plumbing (bench/lib.sh, bench/run.sh,
# the nested lab) end to end by timing one boot of the test guest to init
# with QEMU -M pc as the L2 VMM, and recording it.
. "$LAB_DIR/../../bench/lib.sh"
bench_qemu_start pc boot 1
secs=$(bench_time_to_init "$QEMU_PID" "$QEMU_STARTED") || exit 1
bench_record qemu-pc time-to-init "$secs" s
lab_wait_exit "$QEMU_PID" 60 || lab_fail "qemu did not exit after the guest powered off"
