#!/bin/sh
# lab-timeout: 240
# Pause quiesces the devices, not only the vCPUs: a unixgram peer
# (tools/dgram-flood) sends the guest's virtio-net a broadcast frame every
# 20 ms throughout, and the guest reads its virtio-blk disk in a loop, so
# disk reads are in flight when the pause comes. While the VM is paused
# the guest's RAM, read from /proc/PID/mem, must not change although
# frames keep arriving at the host socket; after Resume the guest receives
# and reads again. A VMM whose device threads run on through a pause
# writes those frames (and late disk reads) into guest memory, and the two
# reads of it differ.
. "$LAB_DIR/lib.sh"
FLOOD=$LAB_DIR/../../build/lab/dgram-flood
[ -x "$FLOOD" ] || lab_fail "no $FLOOD (tests/lab/build-probe.sh builds it)"
"$FLOOD" "$WORK/net.sock" "$WORK/flood.count" 20 2>"$WORK/flood.log" &
FLOOD_PID=$!
trap 'kill $FLOOD_PID 2>/dev/null' EXIT
i=0
while [ ! -S "$WORK/net.sock" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
[ -S "$WORK/net.sock" ] || lab_fail "dgram-flood did not bind its socket"
truncate -s 64M "$WORK/disk.raw"
LAB_MEMORY=256
LAB_CMDLINE="lab.ticks=100"
krunkit_start quiesce 1 --device "virtio-blk,path=$WORK/disk.raw" \
    --device "virtio-net,type=unixgram,path=$WORK/net.sock,mac=52:54:00:12:34:56,vfkitMagic=on"
krunkit_expect_boot 120
lab_wait_log "$WORK/console.log" 'LAB-TICK 10 ' 30 "$KRUNKIT_PID" || lab_fail "no ticks from the guest"
tick_field() { lab_grep_whole "$WORK/console.log" '^LAB-TICK ' | tail -1 | tr -d '\r' | awk -v f="$1" '{ print $f }'; }
rx_before=$(tick_field 4) reads_before=$(tick_field 6)
[ "${rx_before:-0}" -gt 0 ] || lab_fail "the guest receives no frames before the pause"
[ "${reads_before:-0}" -gt 0 ] || lab_fail "the guest reads nothing from its disk before the pause"

# Guest RAM: krunkit's one anonymous mapping of exactly LAB_MEMORY MiB.
ram=
while read -r range perms _off _dev _inode path; do
    [ "$perms" = rw-p ] && [ -z "$path" ] || continue
    if [ $((0x${range#*-} - 0x${range%-*})) -eq $((LAB_MEMORY * 1048576)) ]; then
        ram=$((0x${range%-*}))
        break
    fi
done <"/proc/$KRUNKIT_PID/maps"
[ -n "$ram" ] || lab_fail "no $LAB_MEMORY MiB mapping in krunkit's maps"
ram_hash() {
    dd if="/proc/$KRUNKIT_PID/mem" bs=1048576 skip=$((ram / 1048576)) count="$LAB_MEMORY" \
        2>/dev/null | md5sum | cut -d' ' -f1
}

lab_rest POST /vm/state '{"state":"Pause"}' >/dev/null || lab_fail "POST Pause failed"
case "$(lab_rest GET /vm/state)" in *VirtualMachineStatePaused*) ;; *) lab_fail "state is not Paused" ;; esac
sent1=$(cat "$WORK/flood.count")
h1=$(ram_hash)
sleep 2
h2=$(ram_hash)
sent2=$(cat "$WORK/flood.count")
echo "paused: $((sent2 - sent1)) frames sent to the VM's socket between two reads of its RAM"
[ "$((sent2 - sent1))" -ge 20 ] || lab_fail "the peer sent only $((sent2 - sent1)) frames during the pause"
[ "$h1" = "$h2" ] || lab_fail "guest RAM changed while paused ($h1 -> $h2)"
echo "guest RAM unchanged across the pause ($h1)"

lab_rest POST /vm/state '{"state":"Resume"}' >/dev/null || lab_fail "POST Resume failed"
n=$(lab_grep_whole "$WORK/console.log" -c '^LAB-TICK ')
lab_wait_log "$WORK/console.log" "LAB-TICK $((n + 5)) " 30 "$KRUNKIT_PID" || lab_fail "no ticks after Resume"
rx_after=$(tick_field 4) reads_after=$(tick_field 6)
echo "guest frames received: $rx_before before the pause, $rx_after after Resume;" \
    "disk reads: $reads_before, then $reads_after"
[ "$rx_after" -gt "$rx_before" ] || lab_fail "the guest receives nothing after Resume"
[ "$reads_after" -gt "$reads_before" ] || lab_fail "the guest reads nothing from its disk after Resume"
krunkit_expect_result quiesce 90
krunkit_expect_exit 30 0
