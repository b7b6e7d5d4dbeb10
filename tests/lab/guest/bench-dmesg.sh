#!/bin/sh
# Guest half of the boot trace in bench/boot.sh: the kernel log with its
# timestamps and the CPU flags the guest sees, between markers, so the host
# can see where the kernel spent its time before init under each VMM and
# what CPU it was given.
echo "BENCH-DMESG-BEGIN"
dmesg
grep -m1 '^flags' /proc/cpuinfo
echo "BENCH-DMESG-END"
