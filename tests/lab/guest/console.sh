#!/bin/sh
# Guest half of the console scenario: a burst of numbered lines on the
# virtio console (hvc0) alone; the host finds every one of them, in order,
# in the console log. (stdout would reach ttyS0 as well, whose output the
# VMM appends to the same log.)
n=${LAB_LINES:-500}
out=/dev/hvc0
[ -c $out ] || out=/dev/stdout
i=1
while [ $i -le "$n" ]; do
    echo "LAB-CONSOLE-LINE $i of $n"
    i=$((i + 1))
done >$out
echo "lines=$n" >>"$LAB_DETAIL"
