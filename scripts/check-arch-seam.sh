#!/bin/sh
# The arch seam stays one: x86's KVM set-up, its PCI configuration ports and
# its boot formats appear only under src/arch/x86 (docs/porting.md). Run by
# `make lint`; prints each offending line and fails.
set -eu
cd "$(dirname "$0")/.."
pattern='KVM_CREATE_PIT2|KVM_SET_CPUID2|KVM_SET_MSRS|KVM_SET_TSS_ADDR|KVM_SET_IDENTITY_MAP_ADDR|KVM_IRQ_LINE\b|\b0x[cC][fF][89cC]\b|bzImage|e820'
found=$(grep -rnE "$pattern" src --include='*.c' --include='*.h' | grep -v '^src/arch/x86/' || true)
if [ -n "$found" ]; then
    echo "check-arch-seam: x86 code outside src/arch/x86:" >&2
    echo "$found" >&2
    exit 1
fi
echo "check-arch-seam: clean"
