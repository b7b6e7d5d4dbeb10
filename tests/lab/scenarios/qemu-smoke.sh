#!/bin/sh
# lab-timeout: 240
# The lab itself works: QEMU as the L2 VMM (-M pc, or -M virt in the arm64
# lab; direct kernel boot, KVM) boots the test guest with 1 and then 2 vCPUs; the guest's init prints its
# marker and runs the `boot` guest scenario, which must report PASS with
# every vCPU online, and QEMU must exit 0 when the guest powers off.
# This is the reference our krunkit scenarios are measured against.
. "$LAB_DIR/lib.sh"
lab_need_qemu
[ -c /dev/kvm ] || lab_fail "no /dev/kvm on this $LAB_MODE host"

for cpus in 1 2; do
    : >"$WORK/console.log"
    start=$(lab_now)
    # shellcheck disable=SC2046
    "$QEMU" $(lab_qemu_machine) -m 256 -smp "$cpus" \
        -display none -nodefaults -no-reboot -no-user-config \
        -serial "file:$WORK/console.log" \
        -kernel "$GUEST_KERNEL" -initrd "$GUEST_INITRD" \
        -append "console=$(lab_qemu_console) quiet panic=-1 lab.scenario=boot lab.cpus=$cpus" \
        >"$WORK/qemu.log" 2>&1 </dev/null &
    QEMU_PID=$!
    lab_wait_log "$WORK/console.log" KRUNKIT-GUEST-INIT 120 "$QEMU_PID"
    case $? in
    0) ;;
    1) lab_show_logs; lab_fail "$cpus vCPU: no guest init marker within 120 s" ;;
    *) lab_show_logs; lab_fail "$cpus vCPU: qemu exited before the guest reached init" ;;
    esac
    to_init=$(lab_since "$start")
    lab_wait_log "$WORK/console.log" 'LAB-RESULT boot (PASS|FAIL)' 60 "$QEMU_PID"
    line=$(lab_result_line boot)
    case "$line" in
    *" PASS"*) ;;
    *) lab_show_logs; lab_fail "$cpus vCPU: guest result: ${line:-none}" ;;
    esac
    if ! lab_wait_exit "$QEMU_PID" 30; then
        lab_show_logs
        lab_fail "$cpus vCPU: qemu still running 30 s after the guest result"
    fi
    [ "$LAB_EXIT_RC" = 0 ] || { lab_show_logs; lab_fail "$cpus vCPU: qemu exited with $LAB_EXIT_RC"; }
    QEMU_PID=""
    echo "qemu $(lab_qemu_machine | cut -d" " -f1-2), $cpus vCPU: guest init after $to_init s, powered off after $(lab_since "$start") s: $line"
done
