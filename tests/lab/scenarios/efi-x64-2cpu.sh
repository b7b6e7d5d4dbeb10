#!/bin/sh
# lab-timeout: 240
# lab-own-l1: 6
# x86-64 OVMF -> GRUB x86_64-efi -> Linux with 2 vCPUs: OVMF's MP services
# start the AP, Linux brings both vCPUs online (the guest checks), the
# guest powers off, krunkit exits 0. OVMF32 cannot boot 2 vCPUs in the lab
# under either VMM (efi-boot-2cpu); x86-64 OVMF can, but L0 QEMU aborts on
# the CR8 trap more often with two vCPUs (NESTED-LAB.md, docs/efi.md), so
# this runs in L1 boots of its own, retried.
. "$LAB_DIR/lib.sh"
lab_need_efi x64 grub
krunkit_efi_boot_to_poweroff boot 2
