#!/bin/sh
# lab-timeout: 180
# The virtio-serial console (hvc0) logs everything the guest writes: the
# init marker and 500 numbered lines from the guest, every one of them, in
# order, in logFilePath.
. "$LAB_DIR/lib.sh"
LAB_CMDLINE="lab.lines=500"
krunkit_start console 1
krunkit_expect_boot 120
krunkit_expect_result console 90
krunkit_expect_exit 30 0
lines=$(grep -a '^LAB-CONSOLE-LINE ' "$WORK/console.log" | tr -d '\r' | awk '{ print $2 }')
count=$(echo "$lines" | grep -c .)
in_order=$(echo "$lines" | awk '$1 != NR { bad = 1 } END { print bad ? "no" : "yes" }')
echo "console log: $count of 500 lines, in order: $in_order"
[ "$count" = 500 ] && [ "$in_order" = yes ] || lab_fail "console lines lost or out of order"
