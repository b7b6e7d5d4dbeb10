#!/bin/sh
# lab-timeout: 240
# virtio-net on an inherited socket (`type=unixstream,fd=3`) survives a
# guest reboot. socat makes a socketpair, runs krunkit with one end as fd 3
# (EXEC fdin=3,fdout=3) and relays the other end to passt's socket,
# which it connects to first
# (lib-net.sh). The guest (guest/net-reboot.sh) gets its DHCP lease
# through it, reboots, and must get it again on the second boot; krunkit
# exits 0.
. "$LAB_DIR/lib.sh"
. "$LAB_DIR/lib-net.sh"
lab_need_krunkit
net_start_passt
lab_disk "$WORK/root.img" 64
lab_disk "$WORK/flag.img" 4
cat >"$WORK/run-krunkit.sh" <<X
#!/bin/sh
"$KRUNKIT" --cpus 1 --memory 512 \\
    --bootloader "linux,kernel=$GUEST_KERNEL,initrd=$GUEST_INITRD,cmdline=\\"console=hvc0 quiet lab.scenario=net-reboot lab.cpus=1 lab.ip=$IP lab.gw=$GW lab.mac=$MAC\\"" \\
    --device "virtio-serial,logFilePath=$WORK/console.log" \\
    --device "virtio-blk,path=$WORK/root.img" \\
    --device "virtio-blk,path=$WORK/flag.img" \\
    --restful-uri "unix://$WORK/rest.sock" \\
    --device "virtio-net,type=unixstream,fd=3,mac=$MAC" >>"$WORK/krunkit.log" 2>&1 </dev/null
echo \$? >"$WORK/krunkit.rc"
X
chmod +x "$WORK/run-krunkit.sh"
KRUNKIT_STARTED=$(lab_now)
# passt's socket exists a moment before it accepts: connect first (with
# retries), then start krunkit.
socat -d UNIX-CONNECT:"$NET/passt.sock",retry=50,interval=0.2 EXEC:"$WORK/run-krunkit.sh",fdin=3,fdout=3 \
    2>"$WORK/socat-net.log" &
KRUNKIT_PID=$!
SOCAT_PIDS=$KRUNKIT_PID
fail_net() {
    net_show_logs
    lab_fail "$*"
}
lab_wait_log "$WORK/console.log" 'LAB-STEP first-boot network ok' 150 "$KRUNKIT_PID" ||
    fail_net "no network on the first boot (fd=3 from socat's socketpair)"
echo "first boot: network ok after $(lab_since "$KRUNKIT_STARTED") s"
lab_wait_log "$WORK/console.log" 'LAB-STEP rebooting' 30 "$KRUNKIT_PID" ||
    fail_net "the first boot never asked for the reboot"
lab_wait_log "$WORK/console.log" 'LAB-STEP second-boot' 150 "$KRUNKIT_PID" ||
    fail_net "no second boot (krunkit: $(grep -i 'error\|fd=3\|reboot' "$WORK/krunkit.log" | tail -3 | tr '\n' ' '))"
lab_wait_log "$WORK/console.log" 'LAB-RESULT net-reboot (PASS|FAIL)' 90 "$KRUNKIT_PID"
res=$(lab_result_line net-reboot)
echo "guest: ${res:-no result}"
case "$res" in
*" PASS"*) ;;
*) fail_net "the network is gone after the reboot: ${res:-no result} (krunkit: $(grep -i 'error\|fd=3' "$WORK/krunkit.log" | tail -3 | tr '\n' ' '))" ;;
esac
lab_wait_exit "$KRUNKIT_PID" 30 || fail_net "krunkit (under socat) still running 30 s after the result"
SOCAT_PIDS=""
rc=$(cat "$WORK/krunkit.rc" 2>/dev/null)
[ "$rc" = 0 ] || fail_net "krunkit exited with ${rc:-?}, want 0"
echo "network through the inherited fd works before and after the reboot; exit 0"
