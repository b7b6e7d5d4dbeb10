#!/bin/sh
# lab-timeout: 240
# --timesync vsockPort=1026: after a REST Pause and Resume, krunkit sends
# the guest agent on vsock port 1026 (a stand-in, tools/vsock-echo.c) one
# guest-set-time command carrying the host's time at the resume; the guest
# answers, powers off, and krunkit exits 0 and removes the socket it made
# for the port (/tmp/krunkit_timesync_PID.sock, as upstream krunkit names
# it).
. "$LAB_DIR/lib.sh"
krunkit_start timesync 1 --timesync vsockPort=1026
sock=/tmp/krunkit_timesync_$KRUNKIT_PID.sock
krunkit_expect_boot 120
[ -S "$sock" ] || { lab_show_logs; lab_fail "krunkit did not create $sock"; }
lab_wait_log "$WORK/console.log" 'LAB-STEP agent-listening|LAB-RESULT timesync' 60 "$KRUNKIT_PID" ||
    { lab_show_logs; lab_fail "the guest's agent never listened"; }
lab_rest POST /vm/state '{"state":"Pause"}' >/dev/null || lab_fail "POST Pause failed"
sleep 2
resumed=$(date +%s)
lab_rest POST /vm/state '{"state":"Resume"}' >/dev/null || lab_fail "POST Resume failed"
lab_wait_log "$WORK/console.log" 'LAB-STEP agent-got' 60 "$KRUNKIT_PID" ||
    { lab_show_logs; lab_fail "no guest-set-time reached the guest after Resume"; }
line=$(grep -a 'LAB-STEP agent-got' "$WORK/console.log" | head -1 | tr -d '\r')
echo "guest got: ${line#*agent-got }"
ns=$(echo "$line" | sed -n 's/.*"execute":"guest-set-time","arguments":{"time":\([0-9]*\)}}.*/\1/p')
[ -n "$ns" ] || lab_fail "not a guest-set-time command: $line"
off=$((${ns%?????????} - resumed))
echo "time sent: $ns ns, ${off} s from the resume"
[ "$off" -ge -1 ] && [ "$off" -le 5 ] || lab_fail "the time sent is $off s away from the resume"
krunkit_expect_result timesync 60
krunkit_expect_exit 30 0
[ ! -e "$sock" ] || lab_fail "krunkit left $sock behind"
