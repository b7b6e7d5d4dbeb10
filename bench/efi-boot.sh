#!/bin/sh
# lab-timeout: 1200
# Boot time through UEFI: seconds from starting the VMM process to the
# guest's init marker, firmware -> GRUB -> Linux from a GPT disk, for
# krunkit and QEMU -M pc with the same firmware (Debian's OVMF32 split
# CODE + VARS: CODE read-only, a fresh copy of the VARS template as the
# variable store), the same disk (bench/efi-image.sh), 1 vCPU, 512 MiB, a
# 16550 serial console and a virtio console. The two alternate over
# BENCH_REPS rounds (default 3); medians are recorded, with the guest's
# uptime at init (the kernel's share; the rest is VMM + firmware + GRUB).
. "$LAB_DIR/../../bench/lib.sh"
lab_need_krunkit
lab_need_qemu

EFI=$LAB_DIR/../../build/bench/efi
CODE=$EFI/OVMF32_CODE_4M.fd
VARS=$EFI/OVMF32_VARS_4M.fd
[ -f "$CODE" ] && [ -f "$VARS" ] && [ -f "$EFI/disk.raw" ] ||
    lab_skip "no OVMF32 or EFI disk in $EFI (bench/efi-image.sh, run by bench/run.sh)"
# Local copies: firmware and disk are read from tmpfs like the direct-boot
# guest, not from the checkout's share.
cp "$CODE" "$VARS" "$EFI/disk.raw" "$WORK/" || lab_fail "cannot copy the EFI files"
CODE=$WORK/OVMF32_CODE_4M.fd
VARS=$WORK/OVMF32_VARS_4M.fd
DISK=$WORK/disk.raw
reps=${BENCH_REPS:-3}
vmms=${BENCH_VMMS:-krunkit qemu-pc}

start_krunkit() {
    KRUNKIT_STARTED=$(lab_now)
    "$KRUNKIT" --cpus 1 --memory "${LAB_MEMORY:-512}" \
        --firmware-path "$CODE" \
        --bootloader "efi,variable-store=$WORK/krunkit-vars.fd,create" \
        --device "virtio-blk,path=$DISK" \
        --device "virtio-serial,logFilePath=$WORK/console.log" \
        --restful-uri "unix://$WORK/rest.sock" \
        >>"$WORK/krunkit.log" 2>&1 </dev/null &
    KRUNKIT_PID=$!
}

start_qemu() {
    cp "$VARS" "$WORK/qemu-vars.fd"
    : >"$WORK/console.log"
    QEMU_STARTED=$(lab_now)
    "$QEMU" -M pc -accel "${BENCH_QEMU_ACCEL:-kvm}" -cpu "${BENCH_QEMU_CPU:-host}" \
        -smp 1 -m "${LAB_MEMORY:-512}" \
        -display none -vga none -nodefaults -no-reboot -no-user-config \
        -drive "if=pflash,format=raw,unit=0,readonly=on,file=$CODE" \
        -drive "if=pflash,format=raw,unit=1,file=$WORK/qemu-vars.fd" \
        -drive "file=$DISK,format=raw,if=none,id=d0,${BENCH_QEMU_DRIVE:-cache=writeback,aio=threads}" \
        -device virtio-blk-pci,drive=d0 \
        -chardev "file,id=ser,path=$WORK/console.log" -serial chardev:ser \
        -device virtio-serial-pci -chardev "file,id=con,path=$WORK/hvc.log" \
        -device virtconsole,chardev=con \
        >"$WORK/qemu.log" 2>&1 </dev/null &
    QEMU_PID=$!
}

# boot_once VMM: one boot to init and power-off; appends "init uptime" to
# $WORK/VMM.times. Each boot starts from a fresh variable store.
boot_once() {
    rm -f "$WORK/krunkit-vars.fd" "$WORK/qemu-vars.fd" "$WORK/rest.sock"
    case "$1" in
    krunkit)
        start_krunkit
        pid=$KRUNKIT_PID started=$KRUNKIT_STARTED
        ;;
    qemu-pc)
        start_qemu
        pid=$QEMU_PID started=$QEMU_STARTED
        ;;
    *) lab_fail "unknown VMM $1 (BENCH_VMMS)" ;;
    esac
    bench_boot_timed "$1" "$pid" "$started"
    echo "$BOOT_SECS ${BOOT_UPTIME:-0}" >>"$WORK/$1.times"
    cp "$WORK/console.log" "$WORK/console-$1.log" 2>/dev/null
    rm -f "$WORK/console.log" "$WORK/hvc.log"
}

i=1
while [ "$i" -le "$reps" ]; do
    for v in $vmms; do
        boot_once "$v"
    done
    i=$((i + 1))
done

for v in $vmms; do
    # shellcheck disable=SC2046
    bench_record "$v" efi-time-to-init "$(bench_median $(cut -d' ' -f1 "$WORK/$v.times"))" s
    # shellcheck disable=SC2046
    bench_record "$v" guest-uptime-at-init "$(bench_median $(cut -d' ' -f2 "$WORK/$v.times"))" s
done
