#!/bin/sh
# Guest half of efi-varstore: an EFI variable through efivarfs (UEFI
# runtime SetVariable/GetVariable, here in EFI mixed mode).
#   lab.step=write  the variable must not exist yet; write LAB_VALUE to it
#                   (non-volatile) and read it back
#   lab.step=read   the variable must hold LAB_VALUE (a previous boot wrote it)
# An efivarfs file is 4 bytes of attributes (little endian) then the data.
vars=/sys/firmware/efi/efivars
var=$vars/KrunkitLab-4b52554e-4b49-5400-0000-00000000ab01
fail() {
    echo "guest: $*"
    echo "$*" >>"$LAB_DETAIL"
    exit 1
}
[ -d /sys/firmware/efi ] || fail "not booted through EFI (no /sys/firmware/efi)"
[ -n "${LAB_VALUE:-}" ] || fail "no lab.value"
grep -q " $vars " /proc/mounts || mount -t efivarfs efivarfs $vars || fail "cannot mount efivarfs"
echo "guest: EFI runtime: $(cat /sys/firmware/efi/runtime 2>/dev/null || echo ?)," \
    "fw_platform_size=$(cat /sys/firmware/efi/fw_platform_size 2>/dev/null)"

value_of() {
    tail -c +5 "$var"
}

case "${LAB_STEP:-}" in
write)
    [ ! -e "$var" ] || fail "variable exists before the first write: $(value_of)"
    # Attributes 7: non-volatile, boot service and runtime access. efivarfs
    # takes attributes and data in one write(), hence dd with one block.
    printf '\007\000\000\000%s' "$LAB_VALUE" >/tmp/var
    dd if=/tmp/var of="$var" bs=4096 count=1 2>/dev/null || fail "writing $var failed"
    got=$(value_of)
    [ "$got" = "$LAB_VALUE" ] || fail "read back '$got' right after writing '$LAB_VALUE'"
    echo "LAB-STEP var-written $LAB_VALUE"
    echo "written" >>"$LAB_DETAIL"
    ;;
read)
    [ -e "$var" ] || fail "variable missing after the restart"
    got=$(value_of)
    echo "LAB-STEP var-read $got"
    [ "$got" = "$LAB_VALUE" ] || fail "read '$got', want '$LAB_VALUE'"
    echo "read back" >>"$LAB_DETAIL"
    ;;
*) fail "lab.step must be write or read" ;;
esac
