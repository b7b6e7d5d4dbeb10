#!/bin/sh
# Guest half of krunkit-reboot-swap. /dev/vdb is the data disk. First boot
# (it is empty): write our marker (fsync'd), tell the host to swap the
# host files, give it time, and reboot (`reboot -f`). Second boot: the disk
# must still hold our marker; the host's victim disk (its own pattern)
# means the reboot reopened a swapped path: fail, without writing to it.
dev=/dev/vdb
own=LAB-SWAP-OWN-DISK
victim=LAB-SWAP-VICTIM-DISK
[ -b $dev ] || { echo "no $dev" >>"$LAB_DETAIL"; exit 1; }
seen=$(dd if=$dev bs=20 count=1 2>/dev/null | tr -d '\0')
case "$seen" in
"$own"*)
    echo "LAB-STEP second-boot own-disk"
    echo "second boot: /dev/vdb still holds our own marker" >>"$LAB_DETAIL"
    exit 0
    ;;
"$victim"*)
    echo "LAB-STEP second-boot victim-disk"
    echo "second boot: /dev/vdb is the host's victim disk (the reboot reopened a swapped path)" >>"$LAB_DETAIL"
    exit 1
    ;;
"") ;;
*)
    echo "LAB-STEP second-boot unknown-disk"
    echo "/dev/vdb holds [$seen]" >>"$LAB_DETAIL"
    exit 1
    ;;
esac
printf '%s' "$own" >/tmp/own
dd if=/tmp/own of=$dev bs=4096 count=1 conv=sync,fsync 2>/dev/null ||
    { echo "cannot write the marker" >>"$LAB_DETAIL"; exit 1; }
echo "LAB-STEP swap-now"
# The host swaps the files now (it polls the console every 0.1 s).
sleep "${LAB_SWAP_WAIT:-8}"
echo "LAB-STEP rebooting"
sleep 1
reboot -f
sleep 30
echo "reboot -f returned" >>"$LAB_DETAIL"
exit 1
