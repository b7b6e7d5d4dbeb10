#!/bin/sh
# Guest half of the hwrng scenario: the virtio RNG is the current hw_random
# source and /dev/hwrng yields 4 KiB that are not all one byte value.
cur=$(cat /sys/class/misc/hw_random/rng_current 2>/dev/null)
echo "guest: rng_current=$cur"
case "$cur" in
virtio_rng*) ;;
*) echo "rng_current=$cur" >>"$LAB_DETAIL"; exit 1 ;;
esac
dd if=/dev/hwrng of=/tmp/rng bs=4096 count=1 2>/dev/null
size=$(wc -c </tmp/rng)
distinct=$(od -An -v -tu1 /tmp/rng | tr -s ' ' '\n' | grep -v '^$' | sort -u | wc -l)
echo "guest: read $size bytes, $distinct distinct byte values"
echo "bytes=$size distinct=$distinct" >>"$LAB_DETAIL"
[ "$size" = 4096 ] && [ "$distinct" -gt 200 ]
