#!/bin/sh
# Guest half of the console scenario: a burst of numbered lines; the host
# finds every one of them, in order, in the console log.
n=${LAB_LINES:-500}
i=1
while [ $i -le "$n" ]; do
    echo "LAB-CONSOLE-LINE $i of $n"
    i=$((i + 1))
done
echo "lines=$n" >>"$LAB_DETAIL"
