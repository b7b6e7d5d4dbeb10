#!/bin/sh
# lab-timeout: 240
# --timesync vsockPort=1026: krunkit sends the guest agent on vsock port
# 1026 (a stand-in, tools/vsock-echo.c) one guest-set-time command with the
# host's time, (1) after a REST Pause and Resume, (2) when the lab host's
# wall clock is set (here: one hour ahead, then back). The guest answers
# both and powers off; krunkit exits 0 and removes the socket it made for
# the port (/tmp/krunkit_timesync_PID.sock, as upstream krunkit names it).
. "$LAB_DIR/lib.sh"

# The time in a guest-set-time command of round $1, checked against $2 (s).
expect_command() {
    lab_wait_log "$WORK/console.log" "LAB-STEP agent-got $1" 60 "$KRUNKIT_PID" ||
        { lab_show_logs; lab_fail "round $1: no guest-set-time reached the guest"; }
    line=$(lab_grep_whole "$WORK/console.log" "LAB-STEP agent-got $1" | head -1 | tr -d '\r')
    echo "round $1, guest got: ${line#*agent-got $1 }"
    ns=$(echo "$line" | sed -n 's/.*"execute":"guest-set-time","arguments":{"time":\([0-9]*\)}}.*/\1/p')
    [ -n "$ns" ] || lab_fail "round $1: not a guest-set-time command: $line"
    off=$((${ns%?????????} - $2))
    echo "round $1: time sent $ns ns, ${off} s from the event"
    [ "$off" -ge -1 ] && [ "$off" -le 5 ] || lab_fail "round $1: the time sent is $off s away"
}

krunkit_start timesync 1 --timesync vsockPort=1026
sock=/tmp/krunkit_timesync_$KRUNKIT_PID.sock
krunkit_expect_boot 120
[ -S "$sock" ] || { lab_show_logs; lab_fail "krunkit did not create $sock"; }
lab_wait_log "$WORK/console.log" 'LAB-STEP agent-listening 1|LAB-RESULT timesync' 60 "$KRUNKIT_PID" ||
    { lab_show_logs; lab_fail "the guest's agent never listened"; }
lab_rest POST /vm/state '{"state":"Pause"}' >/dev/null || lab_fail "POST Pause failed"
sleep 2
resumed=$(date +%s)
lab_rest POST /vm/state '{"state":"Resume"}' >/dev/null || lab_fail "POST Resume failed"
expect_command 1 "$resumed"

lab_wait_log "$WORK/console.log" 'LAB-STEP agent-listening 2|LAB-RESULT timesync' 60 "$KRUNKIT_PID" ||
    { lab_show_logs; lab_fail "the guest's agent never listened again"; }
ahead=$(($(date +%s) + 3600))
date -s "@$ahead" >/dev/null || lab_fail "cannot set the lab host's clock"
expect_command 2 "$ahead"
date -s "@$(($(date +%s) - 3600))" >/dev/null
krunkit_expect_result timesync 60
krunkit_expect_exit 30 0
[ ! -e "$sock" ] || lab_fail "krunkit left $sock behind"
