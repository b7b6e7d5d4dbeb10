#!/bin/sh
# lab-timeout: 420
# Crash safety (kill -9) for raw and qcow2 data disks: the guest writes
# numbered 4 KiB records to /dev/vdb, each followed by fsync, and prints
# `ACK N` once record N is acknowledged; after LAB_CRASH_ACKS (50) ACKs
# the host kills krunkit with SIGKILL. Then every acknowledged record must
# be in the image, byte for byte; the qcow2 image must pass `qemu-img
# check` (leaked clusters allowed: exit 0 or 3) and is read back through
# `qemu-img convert -O raw`. The qcow2 image has 4 KiB clusters, so every
# record allocates a cluster (and L2/refcount updates) while the kill lands.
. "$LAB_DIR/lib.sh"
lab_need_krunkit
acks=${LAB_CRASH_ACKS:-50}

# record N: the bytes guest/crash.sh writes as record N.
record() {
    { printf 'LAB-REC %08d\n' "$1"; yes "lab-record-$1"; } 2>/dev/null | head -c 4096
}

# crash FORMAT IMAGE: boot, let the guest write, kill -9 after $acks ACKs;
# leaves the last ACKed record number in LAST.
crash() {
    fmt=$1 img=$2
    rm -f "$WORK/console.log" "$WORK/rest.sock"
    krunkit_start crash 1 --device "virtio-blk,path=$img,format=$fmt"
    krunkit_expect_boot 120
    lab_wait_log "$WORK/console.log" "ACK $acks([^0-9]|\$)" 120 "$KRUNKIT_PID"
    case $? in
    0) ;;
    1) lab_show_logs; lab_fail "$fmt: fewer than $acks ACKs within 120 s" ;;
    *) lab_show_logs; lab_fail "$fmt: krunkit exited during the writes" ;;
    esac
    kill -9 "$KRUNKIT_PID"
    wait "$KRUNKIT_PID" 2>/dev/null
    KRUNKIT_PID=""
    # A line the kill cut short (no newline yet) does not count.
    tr -d '\r' <"$WORK/console.log" >"$WORK/console.txt"
    [ "$(tail -c 1 "$WORK/console.txt" | od -An -tu1 | tr -d ' ')" = 10 ] || echo >>"$WORK/console.txt"
    grep -a '^ACK [0-9]*$' "$WORK/console.txt" | cut -d' ' -f2 >"$WORK/acks-$fmt"
    cp "$WORK/console.log" "$WORK/console-$fmt.log"
    LAST=$(tail -n 1 "$WORK/acks-$fmt")
    # ACKs come in order, one per record, from 1.
    seq 1 "$LAST" | cmp -s - "$WORK/acks-$fmt" || lab_fail "$fmt: ACK lines are not 1..$LAST"
    echo "$fmt: killed krunkit (SIGKILL) after ACK $LAST"
}

# check_records FORMAT RAWFILE: records 1..LAST are in RAWFILE.
check_records() {
    n=1
    while [ "$n" -le "$LAST" ]; do
        record "$n" >"$WORK/want"
        dd if="$2" bs=4096 skip=$((n - 1)) count=1 2>/dev/null | cmp -s - "$WORK/want" ||
            lab_fail "$1: acknowledged record $n is not on the image"
        n=$((n + 1))
    done
    echo "$1: all $LAST acknowledged records are on the image"
}

lab_disk "$WORK/data.raw" 64
crash raw "$WORK/data.raw"
check_records raw "$WORK/data.raw"

command -v qemu-img >/dev/null || lab_fail "qemu-img missing (tests/lab/l1-tools.list, qemu-utils)"
qemu-img create -q -f qcow2 -o cluster_size=4096 "$WORK/data.qcow2" 64M || lab_fail "qemu-img create failed"
crash qcow2 "$WORK/data.qcow2"
qemu-img check "$WORK/data.qcow2" >"$WORK/qemu-img-check.log" 2>&1
rc=$?
sed 's/^/    /' "$WORK/qemu-img-check.log"
case $rc in
0) echo "qcow2: qemu-img check: clean" ;;
3) echo "qcow2: qemu-img check: leaked clusters only (allowed)" ;;
*) lab_fail "qcow2: qemu-img check exit $rc (corruption or error)" ;;
esac
qemu-img convert -O raw "$WORK/data.qcow2" "$WORK/data-qcow2.raw" || lab_fail "qemu-img convert failed"
check_records qcow2 "$WORK/data-qcow2.raw"
