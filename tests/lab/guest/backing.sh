#!/bin/sh
# Guest half of krunkit-hostile-backing: print what the second disk
# (/dev/vdb, a qcow2 image over some backing file) reads as; the host judges.
[ -b /dev/vdb ] || { echo "no /dev/vdb" >>"$LAB_DETAIL"; exit 1; }
head=$(dd if=/dev/vdb bs=64 count=1 2>/dev/null | tr -d '\0' | tr -c 'A-Za-z0-9_-' ' ')
echo "LAB-STEP vdb-head [$head]"
echo "vdb reads [$head]" >>"$LAB_DETAIL"
exit 0
