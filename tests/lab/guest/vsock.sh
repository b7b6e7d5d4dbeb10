#!/bin/sh
# Guest half of krunkit-vsock (tools/vsock-echo.c does the AF_VSOCK part):
# - port 1024 (listen mode): connect to the host (CID 2), send 1 MiB, shut
#   our write side; the host's listener answers "host-reply" once it has
#   read everything up to our EOF. The md5 of what we sent goes to the
#   console so the host can check what arrived.
# - port 1025 (connect mode): listen; the host connects through the socket
#   krunkit made, sends 1 MiB and half-closes; we echo it all back.
detail() { echo "$*" >>"$LAB_DETAIL"; }

head -c 1048576 /dev/urandom >/tmp/g2h.bin
echo "LAB-STEP guest-sent-md5 $(md5sum </tmp/g2h.bin | cut -d' ' -f1)"
reply=$(timeout 60 vsock-echo connect 2 1024 </tmp/g2h.bin) || {
    detail "guest -> host on port 1024 failed"
    exit 1
}
if [ "$reply" != host-reply ]; then
    detail "host answered '$reply' on port 1024"
    exit 1
fi
echo "guest: 1 MiB sent on port 1024, host answered"

timeout 60 vsock-echo listen 1025 2>/tmp/listen.log &
pid=$!
# The listener binds at once; give it a moment before telling the host.
sleep 1
echo "LAB-STEP vsock-listening"
wait $pid || {
    cat /tmp/listen.log
    detail "echo server on port 1025 failed or had no host connection within 60 s"
    exit 1
}
cat /tmp/listen.log
detail "1 MiB each way over vsock ports 1024 and 1025"
