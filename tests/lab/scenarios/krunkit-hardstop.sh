#!/bin/sh
# lab-timeout: 180
# REST HardStop: the VM ends at once, without the guest's cooperation (no
# power button); krunkit exits within 10 s, not by a signal; the REST
# endpoint refuses connections afterwards.
. "$LAB_DIR/lib.sh"
krunkit_start wait 1
krunkit_expect_boot 120
lab_wait_log "$WORK/console.log" 'LAB-STEP waiting' 30 "$KRUNKIT_PID" || lab_fail "guest not waiting"
reply=$(lab_rest POST /vm/state '{"state":"HardStop"}') || lab_fail "POST HardStop failed"
echo "POST HardStop: $reply"
lab_wait_exit "$KRUNKIT_PID" 10 || { lab_show_logs; lab_fail "krunkit still running 10 s after HardStop"; }
echo "krunkit exited with $LAB_EXIT_RC"
[ "$LAB_EXIT_RC" -lt 128 ] || lab_fail "krunkit died of signal $((LAB_EXIT_RC - 128))"
! grep -q LAB-POWER-BUTTON "$WORK/console.log" || lab_fail "HardStop went through the guest"
if lab_rest GET /vm/state >/dev/null 2>&1; then
    lab_fail "REST still answers after krunkit exited"
fi
