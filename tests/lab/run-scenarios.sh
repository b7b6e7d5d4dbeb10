#!/bin/sh
# Run lab scenarios one after the other on the machine that has the KVM
# (L0 in direct mode, L1 in nested mode). POSIX sh for busybox.
#
# usage: run-scenarios.sh --results FILE [--logs DIR] NAME...
#
# Each scenario is tests/lab/scenarios/NAME.sh (a NAME with a slash, like
# bench/boot-time, is that path + .sh in the checkout), run in its own session with
# a fresh $WORK and a timeout (a `# lab-timeout: SECONDS` line in the script,
# else LAB_SCENARIO_TIMEOUT, else 300). Prints `PASS|FAIL|SKIP NAME (S s)`
# and, for failures, the scenario's output; appends `STATUS NAME SECONDS` to
# the results file (`SKIP NAME SECONDS REASON`: the scenario's last
# `SKIP: REASON` line, which run.sh matches against expected-skips.list);
# copies the scenario's *.log files to DIR/NAME/.
# The caller exports KRUNKIT GUEST_KERNEL GUEST_INITRD QEMU LAB_MODE LAB_DIR
# and optionally LAB_TMP (parent of the $WORK directories).

results="" logs=""
while [ $# -gt 0 ]; do
    case "$1" in
    --results) results=$2; shift 2 ;;
    --logs) logs=$2; shift 2 ;;
    --) shift; break ;;
    -*) echo "run-scenarios: unknown option $1" >&2; exit 2 ;;
    *) break ;;
    esac
done
[ -n "$results" ] || { echo "run-scenarios: --results FILE required" >&2; exit 2; }
: "${LAB_DIR:?}" "${LAB_MODE:?}"
export KRUNKIT GUEST_KERNEL GUEST_INITRD GUEST_INITRD_TOOLS QEMU LAB_MODE LAB_DIR
tmp=${LAB_TMP:-${TMPDIR:-/tmp}}
mkdir -p "$tmp"
: >>"$results"

now() { cut -d' ' -f1 /proc/uptime; }

failed=0
for name in "$@"; do
    case "$name" in
    */*) script=$LAB_DIR/../../$name.sh ;;
    *) script=$LAB_DIR/scenarios/$name.sh ;;
    esac
    start=$(now)
    if [ ! -f "$script" ]; then
        echo "FAIL $name (0.00 s)"
        echo "    no scenario $script"
        echo "FAIL $name 0.00" >>"$results"
        failed=1
        continue
    fi
    limit=$(sed -n 's/^# lab-timeout: *\([0-9][0-9]*\).*/\1/p' "$script" | head -1)
    limit=${limit:-${LAB_SCENARIO_TIMEOUT:-300}}
    WORK=$(mktemp -d "$tmp/lab-$(echo "$name" | tr / -).XXXXXX")
    export WORK LAB_TIMEOUT=$limit
    # setsid: the scenario and everything it starts share one process
    # group, so a timeout (or a forgotten VMM) is killed as a whole.
    setsid sh "$script" >"$WORK/scenario.out" 2>&1 </dev/null &
    pid=$!
    setsid sh -c "sleep $limit; touch '$WORK/.timed-out'; kill -TERM -$pid; sleep 3; kill -KILL -$pid" \
        >/dev/null 2>&1 </dev/null &
    watchdog=$!
    wait "$pid"
    rc=$?
    kill -KILL -"$watchdog" 2>/dev/null
    kill -KILL -"$pid" 2>/dev/null
    wait "$watchdog" 2>/dev/null
    secs=$(awk -v s="$start" -v n="$(now)" 'BEGIN { printf "%.2f", n - s }')
    if [ -e "$WORK/.timed-out" ]; then
        status=FAIL
        echo "lab: $name timed out after $limit s" >>"$WORK/scenario.out"
    elif [ "$rc" = 0 ]; then
        status=PASS
    elif [ "$rc" = 77 ]; then
        status=SKIP
    else
        status=FAIL
        echo "lab: $name exited with $rc" >>"$WORK/scenario.out"
    fi
    echo "$status $name ($secs s)"
    case "$status" in
    FAIL) tail -n "${LAB_FAIL_LINES:-60}" "$WORK/scenario.out" | sed 's/^/    /' ;;
    SKIP) tail -n 1 "$WORK/scenario.out" | sed 's/^/    /' ;;
    *) [ -n "${LAB_VERBOSE:-}" ] && sed 's/^/    /' "$WORK/scenario.out" ;;
    esac
    if [ "$status" = SKIP ]; then
        why=$(grep -a '^SKIP: ' "$WORK/scenario.out" | tail -n 1 | tr -d '\r')
        echo "$status $name $secs ${why:-SKIP: (no reason given)}" >>"$results"
    else
        echo "$status $name $secs" >>"$results"
    fi
    if [ -n "$logs" ]; then
        mkdir -p "$logs/$name"
        cp "$WORK/scenario.out" "$logs/$name/" 2>/dev/null
        for f in "$WORK"/*.log; do
            [ -f "$f" ] && tail -c 1048576 "$f" >"$logs/$name/${f##*/}"
        done
    fi
    if [ "$status" = FAIL ] && [ "$LAB_MODE" = direct ] && [ -z "${LAB_CLEAN_WORK:-}" ]; then
        echo "    (work directory kept: $WORK)"
    else
        rm -rf "$WORK"
    fi
    [ "$status" = FAIL ] && failed=1
done
exit $failed
