#!/bin/sh
# The demo's krunkit command line (podman machine's shape, with the console on
# this terminal). Run by scripts/demo.sh here, or inside the lab's L1 host.
# usage: demo-run.sh KRUNKIT DIR ia32|x64
set -eu
krunkit=$1 dir=$2 arch=$3
fw="" cpus=2
if [ "$arch" = ia32 ]; then
    # OVMF32 with 2 vCPUs hangs in the nested lab, with QEMU as well.
    fw="--firmware-path $dir/OVMF32_CODE_4M.fd" cpus=1
fi
# shellcheck disable=SC2086
exec "$krunkit" --cpus "$cpus" --memory 1024 $fw \
    --bootloader "efi,variable-store=$dir/vars-$arch.fd,create" \
    --device "virtio-blk,path=$dir/disk-$arch.raw" \
    --device virtio-serial,stdio --device virtio-rng \
    --restful-uri "unix://$dir/rest.sock" --pidfile "$dir/krunkit.pid"
