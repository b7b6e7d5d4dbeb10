#!/bin/sh
# lab-timeout: 180
# REST Pause then Resume: while paused the state is Paused, the guest prints
# nothing and its clock does not run: across a 4 s pause, the guest's
# uptime between the last tick before and the first after moves by less
# than 2 s. After Resume the state is Running and the guest finishes.
. "$LAB_DIR/lib.sh"
LAB_CMDLINE="lab.ticks=60"
krunkit_start ticks 1
krunkit_expect_boot 120
lab_wait_log "$WORK/console.log" 'LAB-TICK 10 ' 30 "$KRUNKIT_PID" || lab_fail "no ticks from the guest"
lab_rest POST /vm/state '{"state":"Pause"}' >/dev/null || lab_fail "POST Pause failed"
sleep 0.5
state=$(lab_rest GET /vm/state)
echo "after Pause: $state"
case "$state" in *VirtualMachineStatePaused*) ;; *) lab_fail "state is not Paused" ;; esac
ticks() { lab_grep_whole "$WORK/console.log" -c '^LAB-TICK '; }
before=$(ticks)
last_before=$(lab_grep_whole "$WORK/console.log" '^LAB-TICK ' | tail -1 | tr -d '\r')
sleep 4
during=$(ticks)
[ "$during" = "$before" ] || lab_fail "guest printed $((during - before)) ticks while paused"
lab_rest POST /vm/state '{"state":"Resume"}' >/dev/null || lab_fail "POST Resume failed"
state=$(lab_rest GET /vm/state)
echo "after Resume: $state"
case "$state" in *VirtualMachineStateRunning*) ;; *) lab_fail "state is not Running" ;; esac
n=$(echo "$last_before" | awk '{ print $2 }')
lab_wait_log "$WORK/console.log" "LAB-TICK $((n + 1)) " 30 "$KRUNKIT_PID"
first_after=$(lab_grep_whole "$WORK/console.log" "^LAB-TICK $((n + 1)) " | head -1 | tr -d '\r')
[ -n "$first_after" ] || lab_fail "no tick after Resume"
gap=$(echo "$last_before $first_after" | awk '{ printf "%.2f", $6 - $3 }')
echo "guest clock: '$last_before' -> '$first_after': moved $gap s across a 4 s pause"
awk -v g="$gap" 'BEGIN { exit !(g < 2.0) }' || lab_fail "guest time advanced while paused"
krunkit_expect_result ticks 60
krunkit_expect_exit 30 0
