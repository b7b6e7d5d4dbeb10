#!/bin/sh
# Guest half of efi-oem-strings: print every SMBIOS OEM string (type 11)
# as `LAB-OEM N: VALUE`, N counting from 1 as SMBIOS numbers strings; the
# host compares them with what it passed with --oem-string.
found=0
for raw in /sys/firmware/dmi/entries/11-*/raw; do
    [ -r "$raw" ] || continue
    # Header byte 1: the formatted area's length; the strings follow it.
    len=$(od -An -tu1 -j1 -N1 "$raw" | tr -d ' ')
    echo "guest: $raw: $(od -An -tu1 -j4 -N1 "$raw" | tr -d ' ') strings"
    tail -c +$((len + 1)) "$raw" | tr '\0' '\n' >/tmp/oem
    i=0
    while IFS= read -r line; do
        [ -n "$line" ] || continue
        i=$((i + 1))
        echo "LAB-OEM $i: $line"
    done </tmp/oem
    found=$((found + i))
done
echo "oem-strings=$found" >>"$LAB_DETAIL"
[ "$found" -gt 0 ]
