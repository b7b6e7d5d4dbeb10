#!/bin/sh
# Guest half of boot scenarios: the kernel reached init, and every vCPU the
# VMM was asked for (lab.cpus=N) is online.
online=$(grep -c '^processor' /proc/cpuinfo)
echo "guest: $online cpus online ($(cat /sys/devices/system/cpu/online)), want ${LAB_CPUS:-any}"
echo "cpus=$online" >>"$LAB_DETAIL"
[ -z "${LAB_CPUS:-}" ] || [ "$online" = "$LAB_CPUS" ]
