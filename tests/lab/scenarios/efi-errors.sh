#!/bin/sh
# lab-timeout: 120
# EFI start-up errors are clear and leave nothing behind: a corrupt
# firmware file, a missing firmware file, and a missing variable store
# without `create` each make krunkit exit non-zero at once with a message
# naming the file; no console log, REST socket, pidfile or store appears.
. "$LAB_DIR/lib.sh"
lab_need_krunkit
lab_need_efi

# Every case runs; the failures are collected and reported together.
failures=""
bad() {
    echo "FAIL: $*"
    failures="$failures
    $*"
}

# try WHAT FIRMWARE STORE BOOTLOADER-FLAGS NAMED: one failing start.
try() {
    what=$1 fw=$2 store=$3 flags=$4 named=$5
    out=$WORK/$what
    mkdir -p "$out"
    timeout 30 "$KRUNKIT" --cpus 1 --memory 256 --firmware-path "$fw" \
        --bootloader "efi,variable-store=$store$flags" \
        --device "virtio-blk,path=$EFI_DISK" \
        --device "virtio-serial,logFilePath=$out/console.log" \
        --restful-uri "unix://$out/rest.sock" --pidfile "$out/krunkit.pid" \
        >"$WORK/$what.err" 2>&1 </dev/null
    rc=$?
    echo "$what: exit $rc: $(head -3 "$WORK/$what.err" | tr '\n' ' ')"
    if [ "$rc" = 0 ] || [ "$rc" = 124 ]; then
        bad "$what: want a quick non-zero exit, got $rc"
    fi
    grep -q -- "$named" "$WORK/$what.err" || bad "$what: the message does not name $named"
    left=$(ls -A "$out")
    [ -z "$left" ] || bad "$what: krunkit created: $left"
}

# Corrupt: the real firmware with its volume header overwritten.
mkdir -p "$WORK/fw"
cp "$EFI_CODE" "$WORK/fw/OVMF32_CODE_4M.fd"
cp "$EFI_VARS_TEMPLATE" "$WORK/fw/OVMF32_VARS_4M.fd"
yes corrupt | head -c 64 >"$WORK/junk"
dd if="$WORK/junk" of="$WORK/fw/OVMF32_CODE_4M.fd" bs=64 count=1 conv=notrunc 2>/dev/null
try corrupt-firmware "$WORK/fw/OVMF32_CODE_4M.fd" "$WORK/corrupt-firmware/vars.fd" ,create \
    "$WORK/fw/OVMF32_CODE_4M.fd"
try missing-firmware "$WORK/no-such-firmware.fd" "$WORK/missing-firmware/vars.fd" ,create \
    "$WORK/no-such-firmware.fd"
[ ! -e "$WORK/no-such-firmware.fd" ] || bad "krunkit created the missing firmware file"
try missing-store "$EFI_CODE" "$WORK/no-such-vars.fd" "" "$WORK/no-such-vars.fd"
[ ! -e "$WORK/no-such-vars.fd" ] || bad "krunkit created the store without create"
[ -z "$failures" ] || lab_fail "$failures"
