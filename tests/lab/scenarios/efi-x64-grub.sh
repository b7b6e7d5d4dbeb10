#!/bin/sh
# lab-timeout: 240
# lab-own-l1: 4
# x86-64 OVMF (Debian's default firmware) -> GRUB x86_64-efi -> Linux from
# the GPT disk of build-efi.sh, with 1 vCPU: the guest's init marker, the
# guest powers off, krunkit exits 0. In the nested lab L0
# QEMU may abort under x86-64 OVMF (NESTED-LAB.md, "The CR8 trap"), so this
# runs in an L1 boot of its own and is retried when that happens.
. "$LAB_DIR/lib.sh"
lab_need_efi x64 grub
krunkit_efi_boot_to_poweroff boot 1
