#!/bin/sh
# Decode our generated ACPI tables with ACPICA's tools (Debian acpica-tools):
# `iasl -d` must disassemble every table without complaint and show the
# objects we put there, the disassembled DSDT must compile back cleanly, and
# acpiexec must load the tables and evaluate the DSDT's objects.
# (A bare RSDP is not something iasl decodes; acpi_gen checks it instead.)
#
# usage: check-acpi.sh ACPI_GEN WORKDIR
set -u
gen=$1
work=$2
failures=0

fail() {
    echo "FAILED: check-acpi $case: $*" >&2
    failures=$((failures + 1))
}

# expect FILE COUNT STRING: STRING occurs on exactly COUNT lines of FILE.
expect() {
    n=$(grep -c -F -- "$3" "$1" || true)
    [ "$n" -eq "$2" ] || fail "$(basename "$1"): expected $2 line(s) with '$3', found $n"
}

# has FILE STRING: STRING occurs at least once.
has() {
    grep -q -F -- "$2" "$1" || fail "$(basename "$1"): no '$2'"
}

run_case() {
    case=$1
    ncpus=$2
    before=$failures
    shift 2
    dir=$work/$case
    rm -rf "$dir"
    mkdir -p "$dir"
    if ! "$gen" "$dir" "$ncpus" "$@"; then
        fail "acpi_gen $ncpus $*"
        return
    fi
    for t in facs dsdt facp apic xsdt; do
        if ! (cd "$dir" && iasl -d "$t.dat" >"$t.log" 2>&1); then
            fail "iasl -d $t.dat: $(tail -3 "$dir/$t.log")"
            continue
        fi
        if grep -i -E 'error|warning|incorrect|invalid|unknown' "$dir/$t.log" "$dir/$t.dsl" >&2; then
            fail "iasl -d $t.dat complained (above)"
        fi
    done

    d=$dir/dsdt.dsl
    expect "$d" 1 'Device (PCI0)'
    expect "$d" 1 'EisaId ("PNP0A03")'
    expect "$d" 1 'Name (_BBN, Zero)'
    expect "$d" 1 'WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode,'
    expect "$d" 2 'WordIO (ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange,'
    expect "$d" 1 '0x0CF8,             // Range Minimum'
    expect "$d" 1 '0xFEBFFFFF,         // Range Maximum'
    if [ $# -gt 0 ]; then
        expect "$d" 1 'QWordMemory (ResourceProducer'
    else
        expect "$d" 0 'QWordMemory'
    fi
    expect "$d" 1 'Name (_PRT, Package (0x7C)'
    expect "$d" 1 'Device (COM1)'
    expect "$d" 1 'EisaId ("PNP0501")'
    expect "$d" 1 'EisaId ("PNP0B00")'
    expect "$d" 1 'EisaId ("PNP0303")'
    expect "$d" 1 'Name (\_S5, Package (0x04)'
    expect "$d" "$ncpus" 'Name (_HID, "ACPI0007"'

    f=$dir/facp.dsl
    has "$f" 'Revision : 06'
    has "$f" 'FACS Address : 000E0'
    has "$f" 'SCI Interrupt : 0009'
    has "$f" 'SMI Command Port : 00000000'
    has "$f" 'PM1A Event Block Address : 00000600'
    has "$f" 'PM1A Control Block Address : 00000604'
    has "$f" 'PM Timer Block Address : 00000608'
    has "$f" 'GPE0 Block Address : 0000AFE0'
    has "$f" 'RTC Century Index : 32'
    has "$f" '8042 Present on ports 60/64 (V2) : 1'
    has "$f" 'Control Method Power Button (V1) : 0'
    has "$f" 'Reset Register Supported (V2) : 1'
    has "$f" 'Address : 0000000000000CF9'
    has "$f" 'Value to cause reset : 06'
    has "$f" 'Hardware Reduced (V5) : 0'

    a=$dir/apic.dsl
    xapic=$ncpus
    [ "$xapic" -gt 255 ] && xapic=255
    expect "$a" "$xapic" 'Subtable Type : 00 [Processor Local APIC]'
    expect "$a" $((ncpus - xapic)) 'Subtable Type : 09 [Processor Local x2APIC]'
    expect "$a" 1 'Subtable Type : 01 [I/O APIC]'
    expect "$a" 2 'Subtable Type : 02 [Interrupt Source Override]'
    expect "$a" 1 'Subtable Type : 04 [Local APIC NMI]'
    has "$a" 'Address : FEC00000'

    expect "$dir/xsdt.dsl" 2 'ACPI Table Address'

    # The disassembly must compile back without errors or warnings.
    if ! (cd "$dir" && iasl -p recompiled dsdt.dsl >recompile.log 2>&1); then
        fail "dsdt.dsl does not compile: $(grep -i error "$dir/recompile.log" | head -3)"
    fi
    has "$dir/recompile.log" '0 Errors, 0 Warnings'

    # ACPICA's interpreter loads the tables and evaluates the objects. Its
    # built-in self tests poke a PM2 block and GPEs this machine does not have
    # (PIIX4 has neither); those "Unexpected ... (aetests-NNN)" lines are not ours.
    (cd "$dir" && timeout 60 acpiexec -b \
        'evaluate \_SB.PCI0._CRS; evaluate \_SB.PCI0._PRT; evaluate \_S5; evaluate \_SB.PCI0.ISA.COM1._STA' \
        facp.dat dsdt.dat apic.dat facs.dat >acpiexec.log 2>&1) || fail "acpiexec failed"
    if grep -v 'aetests-' "$dir/acpiexec.log" | grep -i -E 'error|warning|exception|unexpected' >&2; then
        fail "acpiexec complained (above)"
    fi
    has "$dir/acpiexec.log" 'Evaluation of \_SB.PCI0._CRS returned object'
    has "$dir/acpiexec.log" '[Package] Contains 124 Elements:'
    has "$dir/acpiexec.log" '[Package] Contains 4 Elements:'
    has "$dir/acpiexec.log" '[Integer] = 000000000000000F'
    [ "$failures" -eq "$before" ] && echo "check-acpi: $case ok"
}

if ! command -v iasl >/dev/null || ! command -v acpiexec >/dev/null; then
    echo "FAILED: check-acpi: iasl/acpiexec not found (Debian package acpica-tools)" >&2
    exit 1
fi
run_case "cpus1" 1
run_case "cpus2-mmio64" 2 0x8000000000 0x8000000000
run_case "cpus255" 255
run_case "cpus300-x2apic" 300 0x10000000000 0x40000000
[ "$failures" -eq 0 ] || exit 1
