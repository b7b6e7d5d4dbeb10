#!/bin/sh
# Guest half of the pause scenario: print the guest's monotonic clock
# (/proc/uptime) every 0.2 s for LAB_TICKS ticks. The host pauses the VM in
# between and checks the clock did not run while it was paused.
n=${LAB_TICKS:-100}
i=0
while [ $i -lt "$n" ]; do
    echo "LAB-TICK $i $(cut -d' ' -f1 /proc/uptime)"
    sleep 0.2
    i=$((i + 1))
done
echo "ticks=$n" >>"$LAB_DETAIL"
