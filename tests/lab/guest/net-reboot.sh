#!/bin/sh
# Guest half of krunkit-net-fd-reboot: get a DHCP lease from passt on eth0
# (lib-net.sh), then on the first boot (no flag on /dev/vdb) write the flag
# and reboot (`reboot -f`); the second boot must get its lease again.
detail() { echo "$*" >>"$LAB_DETAIL"; }
dev=/dev/vdb
flag=LAB-NET-REBOOT-FLAG
[ -b $dev ] || { detail "no $dev"; exit 1; }
seen=$(dd if=$dev bs=19 count=1 2>/dev/null | tr -d '\0')
if [ "$seen" = "$flag" ]; then
    boot=second
else
    boot=first
fi
fail() {
    detail "$boot boot: $*"
    echo "guest: FAIL $boot boot: $*"
    exit 1
}
echo "LAB-STEP $boot-boot"
. /lab/guest/lib-net.sh
echo "LAB-STEP $boot-boot network ok"
if [ $boot = second ]; then
    detail "network works after the reboot (DHCP lease again)"
    exit 0
fi
printf '%s' "$flag" >/tmp/flag
dd if=/tmp/flag of=$dev bs=4096 count=1 conv=sync,fsync 2>/dev/null || fail "cannot write the flag"
echo "LAB-STEP rebooting"
sleep 1
reboot -f
sleep 30
detail "reboot -f returned"
exit 1
