#!/bin/sh
# lab-timeout: 180
# virtio-rng: the guest's current hw_random source is virtio_rng and
# /dev/hwrng yields 4 KiB with more than 200 distinct byte values.
. "$LAB_DIR/lib.sh"
krunkit_start hwrng 1 --device virtio-rng
krunkit_expect_boot 120
krunkit_expect_result hwrng 60
krunkit_expect_exit 30 0
