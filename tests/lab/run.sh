#!/bin/bash
# Run lab scenarios (tests/lab/scenarios/NAME.sh): directly when this
# machine's /dev/kvm really runs guests (kvm-probe), otherwise inside one
# boot of the L1 lab host under QEMU TCG (the nested lab). Prints one
# `PASS|FAIL|SKIP NAME (S s)` line per scenario and a summary; exits 1 when
# any scenario failed or did not report, or skipped without being listed in
# tests/lab/expected-skips.list (an unlisted SKIP counts as failed).
# A scenario whose script says `# lab-own-l1: N` runs in an L1 boot of its
# own, tried up to N times while L0 QEMU aborts on the CR8 trap of x86-64
# OVMF (NESTED-LAB.md); when every attempt hit it, the scenario is a SKIP
# that says so. Any other failure is a FAIL at once.
#
# usage: tests/lab/run.sh [--arch x86|arm64] [NAME...]
#        (default: tests/lab/scenarios.list, or the arch's own list,
#        tests/lab/<arch>/scenarios.list)
#        NAME is tests/lab/scenarios/NAME.sh, or DIR/NAME for DIR/NAME.sh in
#        the checkout (bench/run.sh runs bench/*.sh this way)
#        --arch arm64 (or LAB_ARCH=arm64): the arm64 lab, an arm64 L1 under
#        qemu-system-aarch64's TCG running arm64 L2 guests; its images and
#        runs are in build/lab/arm64/ (tests/lab/arch.sh, tests/lab/arm64/)
# env:   LAB_FORCE_NESTED=1 / LAB_FORCE_DIRECT=1   choose the mode
#        LAB_SCENARIO_TIMEOUT  default per-scenario timeout (s), 300
#        LAB_L1_TIMEOUT        whole L1 boot (s), default: sum of timeouts + 180
#        LAB_L1_CPUS, LAB_L1_MEM   L1 size (2, 2048)
#        LAB_VERBOSE=1         print passing scenarios' output too
#        LAB_EXPECTED_SKIPS=FILE  the expected-skip list (default
#                              tests/lab/expected-skips.list)
#        LAB_KRUNKIT=PATH      the VMM to test, inside the checkout
#                              (default build/krunkit; tools/krunkit-shim.sh
#                              tests the scenario scripts with QEMU)
set -uo pipefail
# One block read whole before it runs: editing this file during a run is safe.
{

LAB=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$LAB/../.." && pwd)
if [ "${1:-}" = --arch ]; then
    [ $# -ge 2 ] || { echo "lab: --arch needs x86 or arm64" >&2; exit 2; }
    LAB_ARCH=$2
    shift 2
fi
export LAB_ARCH=${LAB_ARCH:-x86}
. "$LAB/arch.sh"
BUILD=$LAB_ARCH_BUILD
# Lines name the architecture only when it is not the default one.
LAB_ARCH_LABEL=""
[ "$LAB_ARCH" = x86 ] || LAB_ARCH_LABEL="$LAB_ARCH "
mkdir -p "$BUILD"

if [ $# -gt 0 ]; then
    scenarios=("$@")
else
    # An arch with a list of its own runs that (tests/lab/arm64/scenarios.list).
    list=$LAB/scenarios.list
    [ -f "$LAB/$LAB_ARCH/scenarios.list" ] && list=$LAB/$LAB_ARCH/scenarios.list
    mapfile -t scenarios < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' -e '/^$/d' "$list")
fi
[ ${#scenarios[@]} -gt 0 ] || { echo "lab: no scenarios to run" >&2; exit 2; }

# kvm-probe (x86 guest code) tells whether this machine's KVM runs x86
# guests well; the tools it builds with it (dgram-flood) are x86 too.
if [ -n "$LAB_ARCH_PROBE" ]; then
    PROBE=$BUILD/kvm-probe
    "$LAB/build-probe.sh" || { echo "lab: cannot build kvm-probe" >&2; exit 2; }
fi

if [ -n "${LAB_FORCE_NESTED:-}" ]; then
    mode=nested
    why="LAB_FORCE_NESTED is set"
elif [ -n "${LAB_FORCE_DIRECT:-}" ]; then
    mode=direct
    why="LAB_FORCE_DIRECT is set"
elif [ -z "$LAB_ARCH_PROBE" ]; then
    mode=nested
    why="$LAB_ARCH guests under $LAB_L0_QEMU's TCG (no kvm-probe for $LAB_ARCH)"
elif why=$("$PROBE" 2>&1); then
    mode=direct
else
    mode=nested
fi
echo "lab: $LAB_ARCH_LABEL$mode mode ($(echo "$why" | head -1))"

if [ -n "$LAB_SYSROOT" ] && [ ! -f "$LAB_SYSROOT/.complete" ]; then
    echo "lab: $LAB_SYSROOT missing; run tests/lab/setup.sh --arch $LAB_ARCH" >&2
    exit 2
fi
"$LAB/build-guest.sh" || exit 2
# The EFI scenarios' disk and OVMF32 (L1 has neither GRUB nor OVMF).
if [ -n "$LAB_ARCH_EFI" ]; then
    "$LAB/build-efi.sh" || exit 2
fi

KRUNKIT_REL=$LAB_KRUNKIT_DEFAULT
if [ -n "${LAB_KRUNKIT:-}" ]; then
    KRUNKIT_REL=$(realpath -m --relative-to="$REPO" "$LAB_KRUNKIT")
    case "$KRUNKIT_REL" in
    ../*) echo "lab: LAB_KRUNKIT must be inside $REPO (L1 sees only the checkout)" >&2; exit 2 ;;
    esac
    echo "lab: testing $KRUNKIT_REL instead of $LAB_KRUNKIT_DEFAULT"
fi
# L0's emulator for L1 (nested), or the comparison QEMU (direct).
QEMU_BIN=$(command -v "$LAB_L0_QEMU" || true)

# scenario_header NAME KEY: the number on the scenario's `# KEY: N` line.
scenario_header() {
    local f=$LAB/scenarios/$1.sh
    case "$1" in */*) f=$REPO/$1.sh ;; esac
    sed -n "s/^# $2: *\([0-9][0-9]*\).*/\1/p" "$f" 2>/dev/null | head -1
}
# timeout_of NAME: the scenario's own `# lab-timeout:` or the default.
timeout_of() {
    local t
    t=$(scenario_header "$1" lab-timeout)
    echo "${t:-${LAB_SCENARIO_TIMEOUT:-300}}"
}
# own_l1_attempts NAME: N when the scenario says `# lab-own-l1: N` (it runs
# in an L1 boot of its own, tried up to N times while L0 QEMU aborts on
# the CR8 trap), else nothing.
own_l1_attempts() {
    scenario_header "$1" lab-own-l1
}
# What L0 QEMU prints when a guest's CR8 write meets KVM's pending virtual
# interrupt (NESTED-LAB.md, "The CR8 trap").
L0_CR8_TRAP='tcg_handle_interrupt: assertion failed'

start=$EPOCHREALTIME
elapsed() {
    awk -v s="$start" -v n="$EPOCHREALTIME" 'BEGIN { printf "%.1f", n - s }'
}

# boot_l1 RUN NAME...: one L1 boot under QEMU TCG that runs the scenarios
# and leaves their results and logs in $BUILD/nested/RUN/ (RUN may be
# RUN/SUB: in-host.sh takes it as a path).
boot_l1() {
    local id=$1 dir=$BUILD/nested/$1 limit v s
    shift
    mkdir -p "$dir"
    printf '%s\n' "$@" >"$dir/scenarios"
    for v in $(compgen -e | grep -E '^(LAB_SCENARIO_TIMEOUT|LAB_VERBOSE|LAB_FAIL_LINES|LAB_LOG_LINES|LAB_MEMORY|BENCH_[A-Z0-9_]+)$'); do
        printf "%s='%s'\nexport %s\n" "$v" "${!v}" "$v"
    done >"$dir/env"
    printf "LAB_KRUNKIT_REL='%s'\n" "$KRUNKIT_REL" >>"$dir/env"
    printf "LAB_ARCH='%s'\nLAB_QEMU_NAME='%s'\n" "$LAB_ARCH" "$LAB_QEMU_NAME" >>"$dir/env"
    limit=${LAB_L1_TIMEOUT:-}
    if [ -z "$limit" ]; then
        limit=180
        for s in "$@"; do
            limit=$((limit + $(timeout_of "$s")))
        done
    fi
    echo "lab: booting ${LAB_ARCH_LABEL}L1 (QEMU TCG, ${LAB_L1_CPUS:-2} vCPUs, ${LAB_L1_MEM:-2048} MiB, limit $limit s); console: $dir/l1-console.log"
    # The braces' stderr takes bash's own "Aborted" report of a QEMU that
    # died on a signal; the console log and the summary below say it.
    local l1_rc
    { timeout -k 10 "$limit" "$QEMU_BIN" "${LAB_L0_MACHINE[@]}" -m "${LAB_L1_MEM:-2048}" \
        -smp "${LAB_L1_CPUS:-2}" -display none -nodefaults -no-reboot -no-user-config \
        -serial stdio -monitor none \
        -kernel "$BUILD/l1/vmlinuz" -initrd "$BUILD/l1/initrd.img" \
        -append "console=$LAB_L1_CONSOLE quiet panic=-1 lab.run=$id lab.build=${BUILD#"$REPO"/}" \
        -virtfs "local,path=$REPO,mount_tag=lab,security_model=none" \
        </dev/null 2>&1 | while IFS= read -r line; do
        line=${line%$'\r'}
        printf '%s\n' "$line" >>"$dir/l1-console.log"
        case "$line" in
        LAB-L1-UP*)
            echo "lab: L1 up after $(elapsed) s (${line#LAB-L1-UP })"
            ;;
        LAB-L1-DONE*)
            echo "lab: L1 done after $(elapsed) s"
            ;;
        "PASS "* | "FAIL "* | "SKIP "* | "    "* | lab:*) printf '%s\n' "$line" ;;
        esac
    done
    l1_rc=${PIPESTATUS[0]}; } 2>/dev/null
    if [ "$l1_rc" = 124 ] || [ "$l1_rc" = 137 ]; then
        echo "lab: L1 did not finish within $limit s (killed)"
    elif [ "$l1_rc" != 0 ]; then
        echo "lab: L1 QEMU exited with $l1_rc; last console lines:"
        tail -n 20 "$dir/l1-console.log" | sed 's/^/    /'
    fi
}
if [ "$mode" = direct ]; then
    ls -1dt "$BUILD"/direct/run-* 2>/dev/null | tail -n +6 | xargs -r rm -rf
    RUN_DIR=$BUILD/direct/run-$(date +%Y%m%d-%H%M%S)-$$
    mkdir -p "$RUN_DIR"
    KRUNKIT=$REPO/$KRUNKIT_REL GUEST_KERNEL=$BUILD/guest/vmlinuz \
        GUEST_INITRD=$BUILD/guest/initrd.img GUEST_INITRD_TOOLS=$BUILD/guest/initrd-tools.img \
        QEMU=$(command -v "$LAB_QEMU_NAME") LAB_MODE=direct LAB_DIR=$LAB \
        LAB_TMP=${TMPDIR:-/tmp} \
        sh "$LAB/run-scenarios.sh" --results "$RUN_DIR/results" --logs "$RUN_DIR/logs" \
        "${scenarios[@]}"
else
    [ -n "$QEMU_BIN" ] || { echo "lab: $LAB_L0_QEMU missing; run tests/lab/setup.sh${LAB_SYSROOT:+ --arch $LAB_ARCH}" >&2; exit 2; }
    "$LAB/build-l1.sh" || exit 2
    # Old runs: keep the last few for their logs.
    ls -1dt "$BUILD"/nested/run-* 2>/dev/null | tail -n +6 | xargs -r rm -rf
    run=run-$(date +%Y%m%d-%H%M%S)-$$
    RUN_DIR=$BUILD/nested/$run
    mkdir -p "$RUN_DIR"
    : >"$RUN_DIR/results"
    shared=() own=()
    for s in "${scenarios[@]}"; do
        if [ -n "$(own_l1_attempts "$s")" ]; then own+=("$s"); else shared+=("$s"); fi
    done
    [ ${#shared[@]} -eq 0 ] || boot_l1 "$run" "${shared[@]}"
    # Each of these in L1 boots of its own: L0 QEMU may abort under it (the
    # CR8 trap of x86-64 OVMF, NESTED-LAB.md), which ends the whole L1.
    for s in "${own[@]}"; do
        tries=$(own_l1_attempts "$s") trapped=0
        for try in $(seq 1 "$tries"); do
            sub=$run/$(echo "$s" | tr / -)-$try
            boot_l1 "$sub" "$s"
            if [ -s "$BUILD/nested/$sub/results" ]; then
                cat "$BUILD/nested/$sub/results" >>"$RUN_DIR/results"
                break
            fi
            grep -qa "$L0_CR8_TRAP" "$BUILD/nested/$sub/l1-console.log" || break
            trapped=$((trapped + 1))
            echo "lab: $s: L0 QEMU aborted on the CR8 trap (attempt $try of $tries)"
        done
        if [ "$trapped" = "$tries" ]; then
            why="[cr8-trap] L0 QEMU aborted on the CR8 trap in all $tries attempts (NESTED-LAB.md)"
            echo "SKIP $s ($why)"
            echo "SKIP $s 0.00 SKIP: $why" >>"$RUN_DIR/results"
        fi
    done
fi

echo "$RUN_DIR" >"$BUILD/last-run"

# Summary from the results file; a scenario with no result failed. A SKIP
# passes only when expected-skips.list has a line `NAME TAG reason` for it
# and the scenario's skip reason carries `[TAG]`: a SKIP for any other
# reason (a missing file, a missing tool) counts as failed.
EXPECTED_SKIPS=${LAB_EXPECTED_SKIPS:-$LAB/expected-skips.list}
# expected_skip NAME REASON: the list's reason when REASON is the listed one.
expected_skip() {
    local name tag why
    while read -r name tag why; do
        [ "$name" = "$1" ] || continue
        case "$2" in *"[$tag]"*) echo "$why"; return 0 ;; esac
    done < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$EXPECTED_SKIPS" 2>/dev/null)
    return 1
}
pass=0 fail=0 skip=0 listed=()
for s in "${scenarios[@]}"; do
    status=$(awk -v n="$s" '$2 == n { st = $1 } END { print st }' "$RUN_DIR/results" 2>/dev/null)
    case "$status" in
    PASS) pass=$((pass + 1)) ;;
    SKIP)
        reason=$(awk -v n="$s" '$2 == n { r = $0; sub(/^[^ ]+ [^ ]+ [^ ]+ ?/, "", r) } END { print r }' \
            "$RUN_DIR/results" 2>/dev/null)
        reason=${reason#SKIP: }
        if expected=$(expected_skip "$s" "$reason"); then
            skip=$((skip + 1))
            listed+=("$s: $expected (skipped: $reason)")
        else
            echo "FAIL $s (a SKIP that ${EXPECTED_SKIPS#"$REPO"/} does not list for this reason: ${reason:-none given})"
            fail=$((fail + 1))
        fi
        ;;
    FAIL) fail=$((fail + 1)) ;;
    *)
        echo "FAIL $s (no result)"
        fail=$((fail + 1))
        ;;
    esac
done
for l in "${listed[@]}"; do
    echo "lab: expected skip $l"
done
echo "lab: $pass passed, $fail failed, $skip skipped ($LAB_ARCH_LABEL$mode mode, $(elapsed) s); logs: $RUN_DIR"
[ "$fail" = 0 ]
exit
}
