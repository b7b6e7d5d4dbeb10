# The lab's per-architecture settings, sourced (bash) by run.sh,
# build-l1.sh and build-guest.sh after they set LAB (tests/lab). LAB_ARCH
# picks the architecture of L1 and L2: x86 (default; this machine's own
# kernel and programs) or arm64 (tests/lab/arm64/arch.sh: Debian's arm64
# packages unpacked into a sysroot by tests/lab/arm64/setup.sh). Everything
# else in the lab is shared; what differs is set here:
#   LAB_ARCH_BUILD   where this architecture's images and runs go
#   LAB_SYSROOT      root of this architecture's files (empty: this machine's)
#   LAB_L0_QEMU      the emulator that runs L1 under TCG
#   LAB_L0_MACHINE   (array) its machine, CPU and accelerator options
#   LAB_L1_CONSOLE   L1's console device
#   LAB_L1_MODULES, LAB_L1_OPTIONAL_MODULES, LAB_GUEST_OPTIONAL_MODULES
#   LAB_L1_DATA      (array) data files L1's QEMU needs (firmware ROMs)
#   LAB_QEMU_NAME    the comparison QEMU the scenarios run in L1 ($QEMU)
#   LAB_KRUNKIT_DEFAULT  the VMM tested, relative to the checkout
#   LAB_CC           compiler of the static tools put into L1 and L2
#   LAB_ARCH_PROBE   1 when kvm-probe can tell whether direct mode works
#   LAB_ARCH_EFI     1 when the EFI disks (build-efi.sh) are built
LAB_ARCH=${LAB_ARCH:-x86}
LAB_BUILD_ROOT=${LAB_BUILD:-$(cd "$LAB/../.." && pwd)/build/lab}
case "$LAB_ARCH" in
x86)
    LAB_ARCH_BUILD=$LAB_BUILD_ROOT
    LAB_SYSROOT=""
    LAB_L0_QEMU=qemu-system-x86_64
    LAB_L0_MACHINE=(-accel tcg -cpu max -vga none)
    LAB_L1_CONSOLE=ttyS0
    LAB_L1_MODULES="virtio virtio_ring virtio_pci virtio_pci_modern_dev 9pnet 9pnet_virtio netfs 9p
         irqbypass ccp kvm kvm_amd"
    LAB_L1_OPTIONAL_MODULES="kvm_intel vsock vhost vhost_vsock tun"
    LAB_GUEST_OPTIONAL_MODULES=""
    LAB_L1_DATA=()
    for f in /usr/share/seabios/bios-256k.bin /usr/share/seabios/bios.bin \
        /usr/share/seabios/bios-microvm.bin /usr/share/qemu/linuxboot_dma.bin \
        /usr/share/qemu/linuxboot.bin /usr/share/qemu/kvmvapic.bin /usr/share/qemu/pvh.bin \
        /usr/share/qemu/multiboot_dma.bin /usr/share/qemu/qboot.rom; do
        [ -e "$f" ] && LAB_L1_DATA+=("$f")
    done
    LAB_QEMU_NAME=qemu-system-x86_64
    LAB_KRUNKIT_DEFAULT=build/krunkit
    LAB_CC=${CC:-cc}
    LAB_ARCH_PROBE=1
    LAB_ARCH_EFI=1
    ;;
arm64)
    . "$LAB/arm64/arch.sh"
    ;;
*)
    echo "lab: unknown LAB_ARCH=$LAB_ARCH (x86 or arm64)" >&2
    exit 2
    ;;
esac
