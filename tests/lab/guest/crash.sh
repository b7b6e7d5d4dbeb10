#!/bin/sh
# Guest half of krunkit-crash-safety: numbered 4 KiB records to /dev/vdb,
# record N at block N-1; after each record's write and fsync (the data,
# then a virtio-blk FLUSH) returns, print `ACK N`. Runs until the host
# kills the VMM (at most lab.records records).
dev=/dev/vdb
max=${LAB_RECORDS:-5000}
[ -b $dev ] || { echo "no $dev" >>"$LAB_DETAIL"; exit 1; }
n=1
while [ $n -le "$max" ]; do
    # The host builds the same bytes to compare (scenario's record()).
    { printf 'LAB-REC %08d\n' $n; yes "lab-record-$n"; } 2>/dev/null | head -c 4096 >/tmp/rec
    dd if=/tmp/rec of=$dev bs=4096 seek=$((n - 1)) count=1 conv=fsync 2>/dev/null ||
        { echo "record $n: write failed" >>"$LAB_DETAIL"; exit 1; }
    echo "ACK $n"
    n=$((n + 1))
done
echo "all $max records written, never killed" >>"$LAB_DETAIL"
exit 1
