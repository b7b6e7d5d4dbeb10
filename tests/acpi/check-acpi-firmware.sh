#!/bin/sh
# Hand our fw_cfg table-loader files (etc/acpi/rsdp, etc/acpi/tables,
# etc/table-loader) to stock firmware under QEMU with QEMU's own ACPI
# tables turned off, boot the Debian kernel, and check from its log that the
# firmware ran our loader script and Linux took our tables: SeaBIOS on
# i440FX (-M pc) and x86-64 OVMF (on -M q35, whose ICH9 PM block sits at our
# PM base 0x600 under OVMF; with acpi=off the i440FX machine has no PIIX4 PM
# function and OVMF needs its PM timer). Software CPU (TCG), no KVM needed.
# No root filesystem: the kernel panics after ACPI and PCI init and QEMU exits.
#
# usage: check-acpi-firmware.sh ACPI_GEN WORKDIR
set -u
gen=$1
work=$2
failures=0

fail() {
    echo "FAILED: check-acpi-firmware $case: $*" >&2
    failures=$((failures + 1))
}

has() {
    grep -a -q -F -- "$2" "$1" || fail "$(basename "$1"): no '$2'"
}

kernel=$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -1)
if [ -z "$kernel" ]; then
    echo "FAILED: check-acpi-firmware: no kernel in /boot (Debian linux-image-amd64)" >&2
    exit 1
fi

rm -rf "$work"
mkdir -p "$work"
if ! "$gen" --fwcfg "$work" 2; then
    echo "FAILED: check-acpi-firmware: acpi_gen --fwcfg" >&2
    exit 1
fi

# boot NAME LOG QEMU-ARGS...: boot the kernel with our tables, serial to LOG.
boot() {
    case=$1
    log=$2
    shift 2
    timeout -s KILL 300 qemu-system-x86_64 -accel tcg -cpu max -smp 2 -m 512 \
        -nographic -no-reboot -monitor none -net none -serial "file:$log" \
        -kernel "$kernel" -append "console=ttyS0 panic=-1" \
        -fw_cfg "name=etc/acpi/rsdp,file=$work/etc-acpi-rsdp.dat" \
        -fw_cfg "name=etc/acpi/tables,file=$work/etc-acpi-tables.dat" \
        -fw_cfg "name=etc/table-loader,file=$work/etc-table-loader.dat" \
        "$@" >"$log.qemu" 2>&1
    rc=$?
    [ $rc -eq 137 ] && fail "QEMU did not finish within 300 s"
}

# What Linux must report when it runs on our tables.
check_linux() {
    log=$1
    has "$log" 'ACPI: RSDP'
    for sig in FACP DSDT APIC; do
        grep -a -q -E "ACPI: $sig 0x[0-9A-F]+ [0-9A-F]+ \\(v0[0-9] KRNKIT KRUNKIT " "$log" ||
            fail "$(basename "$log"): Linux did not take our $sig"
    done
    has "$log" 'ACPI: FACS'
    has "$log" 'ACPI: PM-Timer IO Port: 0x608'
    has "$log" 'IOAPIC[0]: apic_id 0, version'
    has "$log" 'ACPI: INT_SRC_OVR (bus 0 bus_irq 0 global_irq 2 dfl dfl)'
    has "$log" 'ACPI: INT_SRC_OVR (bus 0 bus_irq 9 global_irq 9 high level)'
    has "$log" 'ACPI: Using ACPI (MADT) for SMP configuration information'
    has "$log" 'smp: Brought up 1 node, 2 CPUs'
    has "$log" 'ACPI: Interpreter enabled'
    has "$log" 'ACPI: PM: (supports S0 S5)'
    has "$log" 'ACPI: PCI Root Bridge [PCI0] (domain 0000 [bus 00-ff])'
    has "$log" 'root bus resource [mem 0x80000000-0xfebfffff window]'
    has "$log" 'pnp: PnP ACPI: found 3 devices'
    has "$log" 'ttyS0 at I/O 0x3f8 (irq = 4'
    has "$log" 'i8042: PNP: PS/2 Controller [PNP0303:KBD] at 0x60,0x64 irq 1'
}

# SeaBIOS (the default -bios) on the i440FX machine.
boot seabios-pc "$work/seabios.log" -M pc,acpi=off
check_linux "$work/seabios.log"
# No PIIX4 PM function exists with acpi=off, so this one complaint is expected here.
if grep -a -E 'ACPI (BIOS )?(Error|Warning)|Firmware Bug' "$work/seabios.log" |
    grep -v 'Could not disable RealTimeClock events' >&2; then
    fail "Linux complained about the tables (above)"
fi
[ "$failures" -eq 0 ] && echo "check-acpi-firmware: seabios-pc ok"

before=$failures
code=/usr/share/OVMF/OVMF_CODE_4M.fd
cp /usr/share/OVMF/OVMF_VARS_4M.fd "$work/vars.fd"
boot ovmf-q35 "$work/ovmf.log" -M q35,acpi=off \
    -drive "if=pflash,format=raw,readonly=on,file=$code" \
    -drive "if=pflash,format=raw,file=$work/vars.fd"
has "$work/ovmf.log" 'efi: EFI v'
check_linux "$work/ovmf.log"
has "$work/ovmf.log" 'clocksource: acpi_pm: mask: 0xffffff'
if grep -a -E 'ACPI (BIOS )?(Error|Warning)|Firmware Bug' "$work/ovmf.log" >&2; then
    fail "Linux complained about the tables (above)"
fi
[ "$failures" -eq "$before" ] && echo "check-acpi-firmware: ovmf-q35 ok"
[ "$failures" -eq 0 ] || exit 1
