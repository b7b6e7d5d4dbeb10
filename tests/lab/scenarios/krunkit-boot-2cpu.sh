#!/bin/sh
# lab-timeout: 180
# krunkit boots the test guest with 2 vCPU(s) by direct Linux boot: the guest
# reaches init, sees all 2 vCPU(s) online, powers off; krunkit then exits 0
# and its REST socket refuses connections.
. "$LAB_DIR/lib.sh"
krunkit_start boot 2
krunkit_expect_boot 120
krunkit_expect_result boot 60
krunkit_expect_exit 30 0
if lab_rest GET /vm/state >/dev/null 2>&1; then
    lab_fail "REST still answers after krunkit exited"
fi
