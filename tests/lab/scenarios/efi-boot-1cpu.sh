#!/bin/sh
# lab-timeout: 240
# EFI boot with 1 vCPU: OVMF32 -> GRUB (i386-efi, mixed mode) -> Linux from
# the GPT disk of build-efi.sh; the guest's init marker and its `boot`
# result reach the console log; the guest powers off; krunkit exits 0 and
# its REST socket is gone.
. "$LAB_DIR/lib.sh"
krunkit_efi_boot_to_poweroff boot 1
grep -aq KRUNKIT-GUEST-INIT "$WORK/console.log" || lab_fail "no init marker in the console log"
[ ! -S "$WORK/rest.sock" ] || lab_fail "REST socket $WORK/rest.sock left behind"
