#!/bin/sh
# lab-timeout: 240
# virtio-vsock through the muxer, both directions, 1 MiB each way:
# - port 1024, listen mode (the default): the guest connects to the host;
#   krunkit connects to our socat listener on a UNIX socket; the guest's
#   data arrives intact and our answer, sent after its EOF, reaches it.
# - port 1025, connect mode: krunkit creates a UNIX socket; socat connects
#   there, krunkit opens a connection to the guest's listener, 1 MiB goes
#   in and comes back unchanged after a half-close.
# Then the guest powers off, krunkit exits 0 and has removed its socket.
. "$LAB_DIR/lib.sh"
command -v socat >/dev/null || lab_skip "no socat"
g2h=$WORK/g2h.sock
h2g=$WORK/h2g.sock
socat -t 30 UNIX-LISTEN:"$g2h" SYSTEM:"cat >$WORK/from-guest.bin; echo host-reply" &
SOCAT_PID=$!
krunkit_start vsock 1 --device "virtio-vsock,port=1024,socketURL=$g2h" \
    --device "virtio-vsock,port=1025,socketURL=$h2g,connect"
krunkit_expect_boot 120
[ -S "$h2g" ] || { lab_show_logs; lab_fail "krunkit did not create $h2g"; }
lab_wait_log "$WORK/console.log" 'LAB-STEP vsock-listening|LAB-RESULT vsock' 90 "$KRUNKIT_PID" ||
    { lab_show_logs; lab_fail "the guest never listened on port 1025"; }
grep -q 'LAB-RESULT vsock' "$WORK/console.log" && { lab_show_logs; lab_fail "guest failed early"; }
want=$(sed -n 's/.*LAB-STEP guest-sent-md5 \([0-9a-f]*\).*/\1/p' "$WORK/console.log" | head -1)
got=$(md5sum <"$WORK/from-guest.bin" | cut -d' ' -f1)
[ -n "$want" ] && [ "$want" = "$got" ] ||
    { lab_show_logs; lab_fail "guest -> host: md5 $got, guest sent $want"; }
echo "guest -> host: 1 MiB arrived intact on port 1024"
head -c 1048576 /dev/urandom >"$WORK/to-guest.bin"
t0=$(lab_now)
timeout 60 socat -t 30 - UNIX-CONNECT:"$h2g" <"$WORK/to-guest.bin" >"$WORK/echoed.bin" ||
    { lab_show_logs; lab_fail "socat to $h2g failed"; }
cmp -s "$WORK/to-guest.bin" "$WORK/echoed.bin" ||
    { lab_show_logs; lab_fail "host -> guest: $(wc -c <"$WORK/echoed.bin") bytes came back, not the 1 MiB sent"; }
echo "host -> guest: 1 MiB echoed back intact on port 1025 in $(lab_since "$t0") s"
krunkit_expect_result vsock 60
krunkit_expect_exit 30 0
[ -e "$h2g" ] && lab_fail "krunkit left $h2g behind"
echo "krunkit removed $h2g"
kill "$SOCAT_PID" 2>/dev/null
exit 0
