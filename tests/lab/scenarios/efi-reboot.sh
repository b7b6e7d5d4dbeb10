#!/bin/sh
# lab-timeout: 360
# A guest reboot in an EFI-booted VM: the guest runs `reboot -f` once; the
# same krunkit process (same pid, same REST endpoint) boots the machine
# again through the firmware; the second boot (a flag on /dev/vdb tells the
# guest) powers off; krunkit exits 0.
. "$LAB_DIR/lib.sh"
lab_disk "$WORK/flag.img" 4
krunkit_start_efi efi-reboot 1 --device "virtio-blk,path=$WORK/flag.img"
krunkit_expect_boot 180
lab_wait_log "$WORK/console.log" 'LAB-STEP rebooting' 60 "$KRUNKIT_PID" ||
    { lab_show_logs; lab_fail "the first boot never asked for the reboot"; }
echo "guest rebooting after $(lab_since "$KRUNKIT_STARTED") s"
lab_wait_log "$WORK/console.log" 'LAB-STEP second-boot' 240 "$KRUNKIT_PID"
case $? in
0) ;;
1) lab_show_logs; lab_fail "no second boot within 240 s" ;;
*) lab_show_logs; lab_fail "krunkit exited instead of rebooting" ;;
esac
echo "second boot reached after $(lab_since "$KRUNKIT_STARTED") s, same pid $KRUNKIT_PID"
state=$(lab_rest GET /vm/state) || lab_fail "REST does not answer after the reboot"
echo "GET /vm/state after the reboot: $state"
krunkit_expect_result efi-reboot 60
krunkit_expect_exit 30 0
n=$(grep -ac 'LAB-STEP rebooting' "$WORK/console.log")
[ "$n" = 1 ] || lab_fail "the guest asked for $n reboots, want 1"
