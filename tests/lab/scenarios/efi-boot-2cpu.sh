#!/bin/sh
# lab-timeout: 420
# EFI boot with 2 vCPUs, krunkit and QEMU (-M pc, the L2 reference VMM) on
# the same OVMF32 and disk. krunkit reaching the guest's init with both
# vCPUs online and exiting 0 is a pass, whatever QEMU does. In the nested
# lab, OVMF32 with 2 vCPUs is known to hang under QEMU as well
# (docs/efi.md, "Two vCPUs in the nested lab"): when krunkit hangs and QEMU
# does not boot either (it hangs, or resets and so exits under -no-reboot,
# seen in 2 of 4 runs of one session) this is reported as an expected
# failure (SKIP, exit 77); krunkit hanging where QEMU boots is a FAIL. 2-vCPU direct boot (krunkit-boot-2cpu) covers SMP.
. "$LAB_DIR/lib.sh"
lab_need_krunkit
lab_need_efi
limit=${LAB_EFI_2CPU_LIMIT:-120}

# QEMU first: a guest init marker on COM1 (no virtio console: the guest's
# init then writes everything to ttyS0).
qemu_result=skipped
if [ -n "$QEMU" ] && [ -x "$QEMU" ] && [ -c /dev/kvm ]; then
    cp "$EFI_VARS_TEMPLATE" "$WORK/qemu-vars.fd"
    cp "$EFI_DISK" "$WORK/qemu-disk.raw"
    start=$(lab_now)
    "$QEMU" -M pc -accel kvm -cpu host -smp 2 -m "${LAB_MEMORY:-512}" \
        -display none -vga none -nodefaults -no-reboot -no-user-config \
        -drive "if=pflash,format=raw,unit=0,readonly=on,file=$EFI_CODE" \
        -drive "if=pflash,format=raw,unit=1,file=$WORK/qemu-vars.fd" \
        -drive "file=$WORK/qemu-disk.raw,format=raw,if=none,id=d0" -device virtio-blk-pci,drive=d0 \
        -smbios type=11,value=lab.scenario=boot,value=lab.cpus=2 \
        -serial "file:$WORK/qemu-console.log" \
        >"$WORK/qemu.log" 2>&1 </dev/null &
    QEMU_PID=$!
    lab_wait_log "$WORK/qemu-console.log" 'LAB-RESULT boot (PASS|FAIL)' "$limit" "$QEMU_PID"
    case $? in
    0) qemu_result="reached init: $(lab_result_line boot "$WORK/qemu-console.log")" ;;
    1) qemu_result="hung: no guest init within $limit s" ;;
    *) qemu_result="exited before the guest's init" ;;
    esac
    echo "qemu -M pc, 2 vCPUs, OVMF32: $qemu_result ($(lab_since "$start") s)"
    kill -9 "$QEMU_PID" 2>/dev/null
    wait "$QEMU_PID" 2>/dev/null
    QEMU_PID=""
    rm -f "$WORK/qemu-disk.raw"
    # Where it stopped: the last lines OVMF printed on its debug port are
    # not captured; the serial log shows how far firmware and kernel got.
    [ -s "$WORK/qemu-console.log" ] && tail -n 3 "$WORK/qemu-console.log" | tr -d '\r' | sed 's/^/    qemu console: /'
fi

krunkit_start_efi boot 2
lab_wait_log "$WORK/console.log" 'LAB-RESULT boot (PASS|FAIL)' "$limit" "$KRUNKIT_PID"
rc=$?
if [ "$rc" = 0 ]; then
    krunkit_expect_result boot 10
    krunkit_expect_exit 30 0
    echo "krunkit, 2 vCPUs, OVMF32: passed; qemu: $qemu_result"
    exit 0
fi
case $rc in
1) kr="hung: no guest result within $limit s" ;;
*) kr="exited before the guest's result" ;;
esac
echo "krunkit, 2 vCPUs, OVMF32: $kr"
lab_show_logs
case "$rc:$qemu_result" in
1:hung* | 1:exited*)
    lab_skip "[ovmf32-2cpu-hang] expected failure: krunkit $kr; QEMU does not boot OVMF32 with 2 vCPUs in the nested lab either ($qemu_result; docs/efi.md)"
    ;;
esac
lab_fail "krunkit did not boot EFI with 2 vCPUs; qemu: $qemu_result"
