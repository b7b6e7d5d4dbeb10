#!/bin/sh
# lab-timeout: 360
# The EFI variable store persists across runs: `efi,variable-store=F,create`
# makes F from the OVMF32 template (it did not exist); the guest writes a
# non-volatile variable through efivarfs and powers off; the value is in F;
# a second krunkit on the same F (without create) boots and the guest reads
# the value back. First: a run with create that fails (corrupt firmware)
# exits non-zero and creates no F.
. "$LAB_DIR/lib.sh"
lab_need_krunkit
lab_need_efi
store=$WORK/vars.fd
value=lab$$x$(cut -d' ' -f1 /proc/uptime | tr -d .)

# A failing run creates nothing: the firmware is not a firmware volume.
mkdir -p "$WORK/bad"
head -c 65536 /dev/zero >"$WORK/bad/OVMF32_CODE_4M.fd"
cp "$EFI_VARS_TEMPLATE" "$WORK/bad/OVMF32_VARS_4M.fd"
timeout 30 "$KRUNKIT" --cpus 1 --memory 256 --firmware-path "$WORK/bad/OVMF32_CODE_4M.fd" \
    --bootloader "efi,variable-store=$store,create" \
    --device "virtio-blk,path=$EFI_DISK" >"$WORK/bad.log" 2>&1 </dev/null
rc=$?
echo "create with a corrupt firmware: exit $rc: $(head -2 "$WORK/bad.log" | tr '\n' ' ')"
[ "$rc" != 0 ] && [ "$rc" != 124 ] || lab_fail "want a quick non-zero exit, got $rc"
[ ! -e "$store" ] || lab_fail "the failed run created $store"
for f in "$WORK"/vars.fd*; do
    [ ! -e "$f" ] || lab_fail "the failed run left $f"
done

# First boot: create the store, write the variable.
LAB_EFI_BOOTLOADER="efi,variable-store=$store,create" \
    krunkit_efi_boot_to_poweroff efi-var 1 --oem-string lab.step=write --oem-string "lab.value=$value"
[ -f "$store" ] || lab_fail "create did not make $store"
[ "$(wc -c <"$store")" = "$(wc -c <"$EFI_VARS_TEMPLATE")" ] ||
    lab_fail "$store is not the template's size"
grep -aq "$value" "$store" || lab_fail "the value is not in the variable store file"
echo "first run: store created, variable written, the value is in $store"

# Second boot: the same store, no create; the guest reads the variable.
mv "$WORK/console.log" "$WORK/console-first.log"
rm -f "$WORK/rest.sock"
LAB_EFI_BOOTLOADER="efi,variable-store=$store" \
    krunkit_efi_boot_to_poweroff efi-var 1 --oem-string lab.step=read --oem-string "lab.value=$value"
echo "second run read the variable back"
