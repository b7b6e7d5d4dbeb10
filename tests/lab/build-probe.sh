#!/bin/sh
# Build build/lab/kvm-probe from tests/lab/kvm-probe.c (and the lab tools that
# run in L1) when missing or older than their source. Static, so the same binary runs inside L1.
set -eu
LAB=$(cd "$(dirname "$0")" && pwd)
OUT=${LAB_BUILD:-$LAB/../../build/lab}
mkdir -p "$OUT"
PROBE=$OUT/kvm-probe
if [ ! -x "$PROBE" ] || [ "$LAB/kvm-probe.c" -nt "$PROBE" ]; then
    ${CC:-cc} -std=gnu11 -O2 -Wall -Wextra -Werror -static -o "$PROBE.tmp" "$LAB/kvm-probe.c"
    mv -f "$PROBE.tmp" "$PROBE"
fi
# dgram-flood (krunkit-pause-quiesce's unixgram peer), static for L1 too.
FLOOD=$OUT/dgram-flood
if [ ! -x "$FLOOD" ] || [ "$LAB/tools/dgram-flood.c" -nt "$FLOOD" ]; then
    ${CC:-cc} -std=gnu11 -O2 -Wall -Wextra -Werror -static -o "$FLOOD.tmp" "$LAB/tools/dgram-flood.c"
    mv -f "$FLOOD.tmp" "$FLOOD"
fi
