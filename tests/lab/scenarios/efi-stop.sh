#!/bin/sh
# lab-timeout: 240
# REST Stop in an EFI-booted guest: POST {"state":"Stop"} presses the ACPI
# power button, the guest's init powers off, krunkit exits 0, and the REST
# socket is gone (file removed, connections refused).
. "$LAB_DIR/lib.sh"
krunkit_start_efi wait 1
krunkit_expect_boot 180
lab_wait_log "$WORK/console.log" 'LAB-STEP waiting' 30 "$KRUNKIT_PID" ||
    { lab_show_logs; lab_fail "guest not waiting"; }
state=$(lab_rest GET /vm/state) || lab_fail "GET /vm/state failed"
echo "GET /vm/state: $state"
case "$state" in *VirtualMachineStateRunning*) ;; *) lab_fail "state is not Running" ;; esac
reply=$(lab_rest POST /vm/state '{"state":"Stop"}') || lab_fail "POST Stop failed"
echo "POST Stop: $reply"
lab_wait_log "$WORK/console.log" 'LAB-POWER-BUTTON' 30 "$KRUNKIT_PID" ||
    { lab_show_logs; lab_fail "the guest never saw the power button"; }
krunkit_expect_exit 60 0
[ ! -S "$WORK/rest.sock" ] || lab_fail "REST socket $WORK/rest.sock left behind"
if lab_rest GET /vm/state >/dev/null 2>&1; then
    lab_fail "REST still answers after krunkit exited"
fi
echo "REST socket gone after the stop"
