#!/bin/sh
# Runs inside the L1 lab host (started by tests/lab/l1/init from the 9p
# share mounted on /lab): runs the scenarios tests/lab/run.sh asked for in
# /lab/BUILD/nested/RUN/scenarios and leaves their results in
# RUN/results and their logs in RUN/logs/, on the share, for L0 to read.
# BUILD is the lab's build directory: build/lab, or build/lab/arm64 for
# the arm64 lab (its guest images are there too).
#
# usage: sh /lab/tests/lab/in-host.sh RUN [BUILD]
set -u
run=$1
REPO=/lab
BUILD=$REPO/${2:-build/lab}
RUN_DIR=$BUILD/nested/$run
if [ ! -f "$RUN_DIR/scenarios" ]; then
    echo "lab: L1 found no request $RUN_DIR/scenarios"
    exit 2
fi
# Settings L0 passed on (LAB_SCENARIO_TIMEOUT, LAB_VERBOSE, ...).
[ -f "$RUN_DIR/env" ] && . "$RUN_DIR/env"

# kvm-probe is x86 code; an arm64 L1 reports what it has.
if command -v kvm-probe >/dev/null; then
    echo "lab: L1 $(uname -r), $(kvm-probe --loops 200000 --max-ms 30000 2>&1 | head -1)"
else
    echo "lab: L1 $(uname -r) $(uname -m), /dev/kvm $([ -c /dev/kvm ] && echo present || echo missing)" \
        "($(dmesg 2>/dev/null | grep -o 'kvm \[1\]: [A-Za-z]* mode initialized successfully' | head -1))"
fi

# Local copies: the VMM and the guest images are read from tmpfs, not 9p,
# so timings do not include the share.
mkdir -p /tmp/lab
cp "$BUILD/guest/vmlinuz" "$BUILD/guest/initrd.img" /tmp/lab/
# The benchmark variant (fio, ...) only when built (bench/run.sh does).
GUEST_INITRD_TOOLS=/tmp/lab/initrd-tools.img
tools=$BUILD/guest/initrd-tools.img
if [ -f "$tools" ] && grep -qs '^bench/' "$RUN_DIR/scenarios"; then
    cp "$tools" "$GUEST_INITRD_TOOLS"
fi
rel=${LAB_KRUNKIT_REL:-build/krunkit}
case "$rel" in
build/krunkit | build/arm64/krunkit) default=1 ;;
*) default="" ;;
esac
if [ -n "$default" ] && [ -f "$REPO/$rel" ]; then
    cp "$REPO/$rel" /tmp/lab/krunkit
    KRUNKIT=/tmp/lab/krunkit
else
    KRUNKIT=$REPO/$rel
fi
GUEST_KERNEL=/tmp/lab/vmlinuz
GUEST_INITRD=/tmp/lab/initrd.img
# The comparison QEMU of this L1's architecture (run.sh's env file).
QEMU=$(command -v "${LAB_QEMU_NAME:-qemu-system-x86_64}" || true)
LAB_ARCH=${LAB_ARCH:-x86}
LAB_MODE=nested
LAB_DIR=$REPO/tests/lab
LAB_TMP=/tmp/work
export KRUNKIT GUEST_KERNEL GUEST_INITRD GUEST_INITRD_TOOLS QEMU LAB_MODE LAB_DIR LAB_TMP LAB_ARCH

# shellcheck disable=SC2046
sh "$LAB_DIR/run-scenarios.sh" --results "$RUN_DIR/results" --logs "$RUN_DIR/logs" \
    $(cat "$RUN_DIR/scenarios")
