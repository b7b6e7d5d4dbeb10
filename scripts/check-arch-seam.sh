#!/bin/sh
# The arch seam stays one: x86's KVM set-up, its PCI configuration ports and
# its boot formats appear only under src/arch/x86, wired IRQ lines only
# under src/arch/ (docs/porting.md). Run by `make lint`; prints each
# offending line and fails.
set -eu
cd "$(dirname "$0")/.."
# x86's own, only in src/arch/x86; wired IRQ lines (KVM_IRQ_LINE) in any arch.
pattern='KVM_CREATE_PIT2|KVM_SET_CPUID2|KVM_SET_MSRS|KVM_SET_TSS_ADDR|KVM_SET_IDENTITY_MAP_ADDR|\b0x[cC][fF][89cC]\b|bzImage|e820'
found=$( (grep -rnE "$pattern" src --include='*.c' --include='*.h' | grep -v '^src/arch/x86/'
    grep -rnE 'KVM_IRQ_LINE\b' src --include='*.c' --include='*.h' | grep -v '^src/arch/') || true)
if [ -n "$found" ]; then
    echo "check-arch-seam: x86 code outside src/arch/x86:" >&2
    echo "$found" >&2
    exit 1
fi
echo "check-arch-seam: clean"
