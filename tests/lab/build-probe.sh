#!/bin/sh
# Build build/lab/kvm-probe from tests/lab/kvm-probe.c when it is missing or
# older than its source. Static, so the same binary runs inside L1.
set -eu
LAB=$(cd "$(dirname "$0")" && pwd)
OUT=${LAB_BUILD:-$LAB/../../build/lab}
mkdir -p "$OUT"
PROBE=$OUT/kvm-probe
if [ ! -x "$PROBE" ] || [ "$LAB/kvm-probe.c" -nt "$PROBE" ]; then
    ${CC:-cc} -std=gnu11 -O2 -Wall -Wextra -Werror -static -o "$PROBE.tmp" "$LAB/kvm-probe.c"
    mv -f "$PROBE.tmp" "$PROBE"
fi
