#!/bin/bash
# Run benchmarks (bench/NAME.sh, see bench/lib.sh) in the lab, like
# tests/lab/run.sh runs scenarios (directly with a usable /dev/kvm, else
# all inside one L1 boot), with the benchmark guest (fio) built first, then
# gather every `BENCH name vmm metric value unit` line into
# build/bench/results.txt and build/bench/results.md (a comparison table
# by bench/compare.sh, then every measurement), with the benchmarks' logs
# copied to build/bench/logs/.
#
# usage: bench/run.sh [NAME...]     (default: every bench/*.sh but the
#                                   helpers lib, run, efi-image, compare)
#        bench/run.sh --collect RUN_DIR [NAME...]   only gather the results
#                                   of a finished lab run again
# The whole script is one block, so bash has read all of it before it
# runs: editing it during a run cannot break that run.
{
set -uo pipefail
BENCH=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$BENCH/.." && pwd)
OUT=$REPO/build/bench

collect=""
if [ "${1:-}" = --collect ]; then
    collect=${2:?--collect needs a lab run directory}
    shift 2
fi
if [ $# -gt 0 ]; then
    names=("$@")
else
    names=()
    for f in "$BENCH"/*.sh; do
        n=$(basename "$f" .sh)
        case "$n" in lib | run | efi-image | compare) continue ;; esac
        names+=("$n")
    done
fi
[ ${#names[@]} -gt 0 ] || { echo "bench: nothing to run" >&2; exit 2; }

want() {
    local n
    for n in "${names[@]}"; do
        [ "$n" = "$1" ] && return 0
    done
    return 1
}

# run_lab: build the guests and images, run the benchmarks in the lab.
run_lab() {
    "$REPO/tests/lab/build-guest.sh" --tools || return 2
    "$REPO/tests/lab/build-guest.sh" || return 2
    # Images some benchmarks need, made here because L1 may lack the
    # tools: an empty qcow2 data disk (qemu-img) and the EFI disk + OVMF32.
    if want fio && command -v qemu-img >/dev/null; then
        local mib=${BENCH_FIO_MIB:-256}
        mkdir -p "$OUT/images"
        [ -f "$OUT/images/disk-${mib}M.qcow2" ] ||
            qemu-img create -q -f qcow2 "$OUT/images/disk-${mib}M.qcow2" "${mib}M" || return 2
    fi
    if want efi-boot; then
        "$BENCH/efi-image.sh" "$OUT/efi" || return 2
    fi
    local args=() n
    for n in "${names[@]}"; do
        args+=("bench/$n")
    done
    "$REPO/tests/lab/run.sh" "${args[@]}"
}

# What was measured: the binary L1 copies at the start of the run.
krunkit_id() {
    local bin=$REPO/build/krunkit dirty=""
    [ -f "$bin" ] || { echo "krunkit: not built"; return; }
    git -C "$REPO" diff --quiet HEAD -- src 2>/dev/null || dirty=" (src/ had uncommitted changes)"
    echo "krunkit: build/krunkit $(sha256sum "$bin" | cut -c1-12), built $(date -u -r "$bin" '+%F %H:%M UTC'), checkout $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null)$dirty"
}

if [ -n "$collect" ]; then
    rc=0
    run_dir=$collect
    krunkit=$(cat "$run_dir/bench-krunkit" 2>/dev/null)
else
    krunkit=$(krunkit_id)
    echo "bench: $krunkit"
    run_lab
    rc=$?
    [ "$rc" = 2 ] && exit 2
    run_dir=$(cat "$REPO/build/lab/last-run" 2>/dev/null)
    [ -d "$run_dir" ] && echo "$krunkit" >"$run_dir/bench-krunkit"
fi

mkdir -p "$OUT"
# The lab keeps only its last few runs: keep this one's benchmark logs.
if [ -d "$run_dir/logs/bench" ]; then
    rm -rf "$OUT/logs"
    cp -r "$run_dir/logs/bench" "$OUT/logs"
fi
: >"$OUT/results.txt"
for n in "${names[@]}"; do
    f=$run_dir/logs/bench/$n/bench.log
    [ -f "$f" ] && grep -a '^BENCH ' "$f" >>"$OUT/results.txt"
done
{
    echo "Lab run: $run_dir"
    echo
    [ -z "$krunkit" ] || { echo "$krunkit"; echo; }
    "$BENCH/compare.sh" "$OUT/results.txt"
    echo
    echo "| benchmark | metric | VMM | value | unit |"
    echo "| --- | --- | --- | ---: | --- |"
    awk '{ printf "| %s | %s | %s | %s | %s |\n", $2, $4, $3, $5, $6 }' "$OUT/results.txt"
} >"$OUT/results.md"
echo "bench: $(wc -l <"$OUT/results.txt") measurements in $OUT/results.md"
"$BENCH/compare.sh" "$OUT/results.txt"
exit $rc
}
