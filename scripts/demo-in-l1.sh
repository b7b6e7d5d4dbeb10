#!/bin/sh
# Inside the lab's L1 host (tests/lab/l1/init with lab.demo=1): copy the demo
# to tmpfs and run its krunkit command line on the console.
set -eu
d=/tmp/demo
mkdir -p $d
cp /lab/build/krunkit /lab/build/demo/disk-ia32.raw /usr/share/OVMF/OVMF32_CODE_4M.fd \
    /usr/share/OVMF/OVMF32_VARS_4M.fd $d/ 2>/dev/null ||
    cp /lab/build/krunkit /lab/build/demo/disk-ia32.raw /lab/build/demo/OVMF32_CODE_4M.fd \
        /lab/build/demo/OVMF32_VARS_4M.fd $d/
echo "demo: krunkit is booting the EFI demo disk; 'poweroff' in the guest ends it"
sh /lab/scripts/demo-run.sh $d/krunkit $d ia32 || echo "demo: krunkit exited with status $?"
