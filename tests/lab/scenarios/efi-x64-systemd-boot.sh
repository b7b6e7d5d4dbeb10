#!/bin/sh
# lab-timeout: 240
# lab-own-l1: 6
# x86-64 OVMF -> systemd-boot (a loader.conf and one loader entry on the
# ESP; Debian ships systemd-boot for x64 only) -> Linux: the guest's init
# marker (that disk has no other loader), the guest powers off, krunkit
# exits 0. In the nested
# lab L0 QEMU often aborts on the CR8 trap while systemd-boot starts
# (NESTED-LAB.md), so this runs in L1 boots of its own, retried.
. "$LAB_DIR/lib.sh"
lab_need_efi x64 systemd-boot
krunkit_efi_boot_to_poweroff boot 1
