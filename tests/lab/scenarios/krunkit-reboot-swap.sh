#!/bin/sh
# lab-timeout: 240
# Host files are opened once: a guest reboot reopens nothing by path. The
# data disk and the console log live in $WORK/vm/; while the first boot
# runs, we move them away and put symlinks to $WORK/victim-disk and
# $WORK/victim.txt in their place. The guest (guest/reboot-swap.sh) reboots;
# its second boot must see its own data disk (its marker), the console
# output must keep going to the file krunkit opened first, both victim
# files must stay byte for byte as they were, and krunkit exits 0.
. "$LAB_DIR/lib.sh"
lab_need_krunkit
VM=$WORK/vm
mkdir -p "$VM"
lab_disk "$VM/root.img" 64
lab_disk "$VM/data.img" 4
yes "LAB-SWAP-VICTIM-DISK" | head -c 4194304 >"$WORK/victim-disk"
echo "victim text: must never change" >"$WORK/victim.txt"
cp "$WORK/victim-disk" "$WORK/victim-disk.orig"
cp "$WORK/victim.txt" "$WORK/victim.orig"
CON=$VM/console.log
# Keep the moved console for the run's logs.
keep_logs() {
    cp "$VM/console.orig.log" "$WORK/console.log" 2>/dev/null ||
        cp "$CON" "$WORK/console.log" 2>/dev/null
    cp "$WORK/victim.txt" "$WORK/victim-after.log" 2>/dev/null
    lab_cleanup
}
trap keep_logs EXIT

KRUNKIT_STARTED=$(lab_now)
"$KRUNKIT" --cpus 1 --memory "${LAB_MEMORY:-512}" \
    --bootloader "linux,kernel=$GUEST_KERNEL,initrd=$GUEST_INITRD,cmdline=\"console=hvc0 quiet lab.scenario=reboot-swap lab.cpus=1\"" \
    --device "virtio-serial,logFilePath=$CON" \
    --device "virtio-blk,path=$VM/root.img" \
    --device "virtio-blk,path=$VM/data.img" \
    --restful-uri "unix://$WORK/rest.sock" >>"$WORK/krunkit.log" 2>&1 </dev/null &
KRUNKIT_PID=$!
lab_wait_log "$CON" 'LAB-STEP swap-now' 150 "$KRUNKIT_PID" ||
    { cp "$CON" "$WORK/console.log"; lab_show_logs; lab_fail "the first boot never reached swap-now"; }
mv "$VM/data.img" "$VM/data.orig.img" && ln -s "$WORK/victim-disk" "$VM/data.img" &&
    mv "$CON" "$VM/console.orig.log" && ln -s "$WORK/victim.txt" "$CON" ||
    lab_fail "cannot swap the files"
echo "swapped data.img and console.log for symlinks to the victims after $(lab_since "$KRUNKIT_STARTED") s"
lab_wait_logs 'LAB-STEP rebooting' 30 "$KRUNKIT_PID" "$VM/console.orig.log" "$WORK/victim.txt" ||
    lab_fail "the first boot never asked for the reboot (the swap took too long?)"
lab_wait_logs 'LAB-RESULT reboot-swap (PASS|FAIL)' 150 "$KRUNKIT_PID" "$VM/console.orig.log" "$WORK/victim.txt"
wrc=$?
BAD=""
bad() {
    echo "BAD: $*"
    BAD="$BAD; $*"
}
res=$(lab_result_line reboot-swap "$VM/console.orig.log" "$WORK/victim.txt")
echo "guest: ${res:-no result}"
case "$wrc:$res" in
0:*" PASS"*) ;;
0:*) bad "guest: $res" ;;
1:*) bad "no second-boot result within 150 s" ;;
*) bad "krunkit exited before the second boot's result" ;;
esac
grep -aq 'LAB-STEP second-boot' "$WORK/victim.txt" &&
    bad "the second boot's console output went to victim.txt (the console log was reopened by path)"
grep -aq 'LAB-STEP second-boot' "$VM/console.orig.log" ||
    bad "the second boot's console output is not in the console log krunkit opened first"
if lab_wait_exit "$KRUNKIT_PID" 30; then
    [ "$LAB_EXIT_RC" = 0 ] || bad "krunkit exited with $LAB_EXIT_RC, want 0"
else
    bad "krunkit still running 30 s after the result"
fi
cmp -s "$WORK/victim-disk" "$WORK/victim-disk.orig" || bad "victim-disk changed"
cmp -s "$WORK/victim.txt" "$WORK/victim.orig" ||
    bad "victim.txt changed ($(wc -c <"$WORK/victim.orig") -> $(wc -c <"$WORK/victim.txt") bytes)"
[ "$(head -c 17 "$VM/data.orig.img")" = LAB-SWAP-OWN-DISK ] ||
    bad "the original data.img does not hold the guest's marker"
if [ -n "$BAD" ]; then
    cp "$VM/console.orig.log" "$WORK/console.log" 2>/dev/null
    lab_show_logs
    lab_fail "${BAD#; }"
fi
echo "second boot saw its own disk; console stayed on the first file; victims unchanged; exit 0"
