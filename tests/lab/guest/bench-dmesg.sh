#!/bin/sh
# Guest half of the boot trace in bench/boot.sh: the kernel log with its
# timestamps, between markers, so the host can see where the kernel spent
# its time before init under each VMM.
echo "BENCH-DMESG-BEGIN"
dmesg
echo "BENCH-DMESG-END"
