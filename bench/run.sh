#!/bin/bash
# Run benchmarks (bench/NAME.sh, see bench/lib.sh) in the lab, like
# tests/lab/run.sh runs scenarios (directly with a usable /dev/kvm, else
# all inside one L1 boot), with the benchmark guest (fio) built first, then
# gather every `BENCH name vmm metric value unit` line into
# build/bench/results.txt and a table in build/bench/results.md.
#
# usage: bench/run.sh [NAME...]     (default: every bench/*.sh but lib.sh,
#                                   run.sh and efi-image.sh)
set -uo pipefail
BENCH=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$BENCH/.." && pwd)
OUT=$REPO/build/bench

if [ $# -gt 0 ]; then
    names=("$@")
else
    names=()
    for f in "$BENCH"/*.sh; do
        n=$(basename "$f" .sh)
        case "$n" in lib | run | efi-image) continue ;; esac
        names+=("$n")
    done
fi
[ ${#names[@]} -gt 0 ] || { echo "bench: nothing to run" >&2; exit 2; }

"$REPO/tests/lab/build-guest.sh" --tools || exit 2
"$REPO/tests/lab/build-guest.sh" || exit 2

# Images some benchmarks need, made here because L1 may lack the tools:
# an empty qcow2 data disk (qemu-img) and the EFI disk with OVMF32.
want() {
    local n
    for n in "${names[@]}"; do
        [ "$n" = "$1" ] && return 0
    done
    return 1
}
if want fio && command -v qemu-img >/dev/null; then
    mkdir -p "$OUT/images"
    mib=${BENCH_FIO_MIB:-256}
    [ -f "$OUT/images/disk-${mib}M.qcow2" ] ||
        qemu-img create -q -f qcow2 "$OUT/images/disk-${mib}M.qcow2" "${mib}M" || exit 2
fi
if want efi-boot; then
    "$BENCH/efi-image.sh" "$OUT/efi" || exit 2
fi
args=()
for n in "${names[@]}"; do
    args+=("bench/$n")
done
"$REPO/tests/lab/run.sh" "${args[@]}"
rc=$?

run_dir=$(cat "$REPO/build/lab/last-run" 2>/dev/null)
mkdir -p "$OUT"
: >"$OUT/results.txt"
for n in "${names[@]}"; do
    f=$run_dir/logs/bench/$n/bench.log
    [ -f "$f" ] && grep -a '^BENCH ' "$f" >>"$OUT/results.txt"
done
{
    echo "| benchmark | metric | VMM | value | unit |"
    echo "| --- | --- | --- | ---: | --- |"
    awk '{ printf "| %s | %s | %s | %s | %s |\n", $2, $4, $3, $5, $6 }' "$OUT/results.txt"
} >"$OUT/results.md"
echo "bench: $(wc -l <"$OUT/results.txt") measurements in $OUT/results.md"
cat "$OUT/results.md"
exit $rc
