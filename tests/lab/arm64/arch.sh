# arm64 settings of the lab (sourced by tests/lab/arch.sh; the variables
# are described there). L1 and L2 run Debian's arm64 kernel and programs
# from the sysroot tests/lab/arm64/setup.sh unpacks; L0 runs L1 with
# NESTED-LAB.md's measured machine ("The arm64 lab"): virt with EL2
# (virtualization=on) and GICv3, so L1's kernel starts KVM in VHE mode.
LAB_ARCH_BUILD=$LAB_BUILD_ROOT/arm64
LAB_SYSROOT=$LAB_ARCH_BUILD/sysroot
LAB_L0_QEMU=qemu-system-aarch64
LAB_L0_MACHINE=(-M virt,virtualization=on,gic-version=3 -cpu max,pauth-impdef=on
    -accel tcg,thread=multi)
# The virt machine's PL011.
LAB_L1_CONSOLE=ttyAMA0
# KVM is built into Debian's arm64 kernel; virtio and 9p for the share.
LAB_L1_MODULES="virtio virtio_ring virtio_pci virtio_pci_modern_dev 9pnet 9pnet_virtio netfs 9p"
LAB_L1_OPTIONAL_MODULES="vsock vhost vhost_vsock tun"
# gpio_keys: the power button of a device-tree machine (QEMU virt's PL061).
LAB_GUEST_OPTIONAL_MODULES="gpio_keys"
# -M virt with -kernel needs no firmware; L1's QEMU runs with -nic none.
LAB_L1_DATA=()
LAB_QEMU_NAME=qemu-system-aarch64
# What the arm64 port builds (make ARCH=arm64); LAB_KRUNKIT overrides.
LAB_KRUNKIT_DEFAULT=build/arm64/krunkit
LAB_CC=aarch64-linux-gnu-gcc
# kvm-probe's guest code is x86; an x86 machine runs arm64 guests only
# nested under TCG.
LAB_ARCH_PROBE=""
LAB_ARCH_EFI=""
# The cross objdump follows arm64 ELF files' NEEDED entries (initramfs.sh).
LAB_OBJDUMP=aarch64-linux-gnu-objdump
