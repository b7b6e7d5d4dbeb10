#!/bin/sh
# lab-timeout: 240
# SMBIOS OEM strings through EFI: two --oem-string values (spaces, '=',
# punctuation) come back, in order and byte for byte, from the guest's
# /sys/firmware/dmi/entries/11-0/raw (the guest half prints them). The
# first two strings are krunkit_start_efi's lab.scenario and lab.cpus.
. "$LAB_DIR/lib.sh"
tag=$$-$(cut -d' ' -f1 /proc/uptime | tr -d .)
one="krunkit lab OEM string one: $tag"
two="key=value two; $tag (end)"
krunkit_efi_boot_to_poweroff efi-oem 1 --oem-string "$one" --oem-string "$two"
tr -d '\r' <"$WORK/console.log" | grep -a '^LAB-OEM ' >"$WORK/oem.txt"
cat "$WORK/oem.txt"
printf 'LAB-OEM 1: lab.scenario=efi-oem\nLAB-OEM 2: lab.cpus=1\nLAB-OEM 3: %s\nLAB-OEM 4: %s\n' \
    "$one" "$two" >"$WORK/oem-want.txt"
cmp -s "$WORK/oem.txt" "$WORK/oem-want.txt" ||
    { echo "want:"; cat "$WORK/oem-want.txt"; lab_fail "the guest's OEM strings differ from --oem-string"; }
echo "both OEM strings read back in order"
