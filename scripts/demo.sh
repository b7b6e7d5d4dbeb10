#!/bin/bash
# `make demo`: build an EFI-bootable demo disk from Debian packages and boot
# it with a podman-machine-shaped krunkit command line, the guest's console
# on this terminal (a busybox shell; `poweroff` ends the VM, so does
# `curl --unix-socket build/demo/rest.sock -X POST -d '{"state":"Stop"}' localhost/vm/state`).
#
# Where /dev/kvm really runs guests (tests/lab/kvm-probe), krunkit runs here
# with Debian's x86-64 OVMF and a GRUB x86_64-efi disk. Otherwise it runs in
# the nested lab: L1 boots under QEMU's software CPU and runs the same
# command line with 32-bit OVMF and a GRUB i386-efi disk (x86-64 OVMF cannot
# run there, see NESTED-LAB.md "The CR8 trap").
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
OUT=$REPO/build/demo
mkdir -p "$OUT"

make --no-print-directory build/krunkit
tests/lab/setup.sh >&2
scripts/deps.sh grub-efi-ia32-bin grub-efi-amd64-bin mtools dosfstools fdisk ovmf ovmf-ia32
tests/lab/build-guest.sh >&2
tests/lab/build-probe.sh >&2

if build/lab/kvm-probe >/dev/null 2>&1 && [ -z "${LAB_FORCE_NESTED:-}" ]; then
    mode=direct arch=x64
else
    mode=nested arch=ia32
fi
tests/efi/build-disk.sh --arch "$arch" --kernel build/lab/guest/vmlinuz \
    --initrd build/lab/guest/initrd.img --cmdline "console=hvc0 quiet" -o "$OUT/disk-$arch.raw" >&2

if [ "$mode" = direct ]; then
    echo "demo: booting on this machine's KVM; type 'poweroff' in the guest to end" >&2
    exec scripts/demo-run.sh "$REPO/build/krunkit" "$OUT" x64
fi

echo "demo: no usable /dev/kvm here: booting the nested lab (L1 under QEMU TCG) first" >&2
cp /usr/share/OVMF/OVMF32_CODE_4M.fd /usr/share/OVMF/OVMF32_VARS_4M.fd "$OUT/"
tests/lab/build-l1.sh >&2
exec qemu-system-x86_64 -accel tcg -cpu max -m 2048 -smp 2 -nographic -no-reboot \
    -kernel build/lab/l1/vmlinuz -initrd build/lab/l1/initrd.img \
    -append "console=ttyS0 quiet panic=-1 lab.demo=1" \
    -virtfs "local,path=$REPO,mount_tag=lab,security_model=none"
