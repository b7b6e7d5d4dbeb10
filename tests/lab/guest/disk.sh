#!/bin/sh
# Guest half of the disk scenario, on /dev/vdb (the second disk):
# - the host wrote lab_pattern HOST at 1 MiB: read it back and compare;
# - write lab_pattern GUEST at 0 with fsync, so the host can find it.
# The pattern is a 4 KiB block of one repeated line (same recipe as the host).
dev=/dev/vdb
pattern() { yes "LAB-PATTERN-$1-0123456789abcdef" | head -c 4096; }
if [ ! -b $dev ]; then
    echo "no $dev" >>"$LAB_DETAIL"
    exit 1
fi
pattern HOST >/tmp/host.expected
dd if=$dev of=/tmp/host.read bs=4096 skip=256 count=1 2>/dev/null
if ! cmp -s /tmp/host.expected /tmp/host.read; then
    echo "guest: host pattern not found at 1 MiB:"
    head -c 64 /tmp/host.read | od -c | head -3
    echo "host pattern mismatch" >>"$LAB_DETAIL"
    exit 1
fi
echo "guest: host pattern read back at 1 MiB"
pattern GUEST >/tmp/guest.pattern
dd if=/tmp/guest.pattern of=$dev bs=4096 count=1 conv=notrunc,fsync 2>/dev/null || {
    echo "guest write failed" >>"$LAB_DETAIL"
    exit 1
}
echo "LAB-STEP guest-pattern-written"
echo "host pattern ok, guest pattern written" >>"$LAB_DETAIL"
