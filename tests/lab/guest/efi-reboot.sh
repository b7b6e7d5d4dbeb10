#!/bin/sh
# Guest half of efi-reboot. First boot: /dev/vdb holds no flag; write it
# (fsync'd), announce, and reboot at once (`reboot -f`: reboot(2), the
# kernel resets the machine). Second boot: the flag is there; pass, and the
# init powers off.
dev=/dev/vdb
flag=LAB-REBOOT-FLAG
[ -b $dev ] || { echo "no $dev" >>"$LAB_DETAIL"; exit 1; }
seen=$(dd if=$dev bs=16 count=1 2>/dev/null | tr -d '\0')
if [ "$seen" = "$flag" ]; then
    echo "LAB-STEP second-boot"
    echo "second boot" >>"$LAB_DETAIL"
    # Time for the host to ask the REST endpoint before the power-off.
    sleep 5
    exit 0
fi
printf '%s' "$flag" >/tmp/flag
dd if=/tmp/flag of=$dev bs=4096 count=1 conv=sync,fsync 2>/dev/null ||
    { echo "cannot write the flag" >>"$LAB_DETAIL"; exit 1; }
echo "LAB-STEP rebooting"
# Let the console line leave before the reset.
sleep 1
reboot -f
sleep 30
echo "reboot -f returned" >>"$LAB_DETAIL"
exit 1
