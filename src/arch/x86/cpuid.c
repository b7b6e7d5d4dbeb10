/*
 * Guest CPUID (Intel SDM vol. 2A "CPUID"; AMD APM vol. 3 appendix E).
 * Leaves touched: 0x1 (APIC id, logical count, HTT, TSC deadline, hypervisor, VMX),
 * 0x4 (cores per package), 0xB/0x1F (x2APIC topology), 0x80000001 (SVM),
 * 0x80000008 (AMD core count).
 */
#include "arch/x86/cpuid.h"

#include <errno.h>

#define CPUID_1_ECX_VMX (1u << 5)
#define CPUID_1_ECX_TSC_DEADLINE (1u << 24)
#define CPUID_1_ECX_HYPERVISOR (1u << 31)
#define CPUID_1_EDX_HTT (1u << 28)
#define CPUID_80000001_ECX_SVM (1u << 2)

static unsigned order_base_2(unsigned n)
{
    unsigned s = 0;
    while ((1u << s) < n)
        s++;
    return s;
}

void cpuid_add_tsc_deadline(struct kvm_cpuid2 *c)
{
    for (unsigned i = 0; i < c->nent; i++)
        if (c->entries[i].function == 1)
            c->entries[i].ecx |= CPUID_1_ECX_TSC_DEADLINE;
}

bool cpuid_has_nested(const struct kvm_cpuid2 *c)
{
    for (unsigned i = 0; i < c->nent; i++) {
        const struct kvm_cpuid_entry2 *e = &c->entries[i];
        if (e->function == 1 && (e->ecx & CPUID_1_ECX_VMX))
            return true;
        if (e->function == 0x80000001 && (e->ecx & CPUID_80000001_ECX_SVM))
            return true;
    }
    return false;
}

int cpuid_for_vcpu(struct kvm_cpuid2 *c, unsigned index, unsigned ncpus, bool nested)
{
    if (nested && !cpuid_has_nested(c))
        return -ENOTSUP;
    unsigned core_shift = order_base_2(ncpus);
    for (unsigned i = 0; i < c->nent; i++) {
        struct kvm_cpuid_entry2 *e = &c->entries[i];
        switch (e->function) {
        case 0x1:
            e->ebx = (e->ebx & 0xffff) | ((ncpus & 0xff) << 16) | (index << 24);
            e->ecx |= CPUID_1_ECX_HYPERVISOR;
            if (!nested)
                e->ecx &= ~CPUID_1_ECX_VMX;
            if (ncpus > 1)
                e->edx |= CPUID_1_EDX_HTT;
            else
                e->edx &= ~CPUID_1_EDX_HTT;
            break;
        case 0x4: {
            unsigned level = (e->eax >> 5) & 7;
            e->eax &= 0x3fff;
            e->eax |= ((1u << core_shift) - 1) << 26;
            if (level == 3)
                e->eax |= ((1u << core_shift) - 1) << 14;
            break;
        }
        case 0xb:
        case 0x1f:
            e->edx = index;
            if (e->index == 0) {
                e->eax = 0;
                e->ebx = 1;
                e->ecx = (1u << 8) | 0;
            } else if (e->index == 1) {
                e->eax = core_shift;
                e->ebx = ncpus;
                e->ecx = (2u << 8) | 1;
            } else {
                e->eax = 0;
                e->ebx = 0;
                e->ecx = e->index;
            }
            break;
        case 0x80000001:
            if (!nested)
                e->ecx &= ~CPUID_80000001_ECX_SVM;
            break;
        case 0x80000008:
            e->ecx = (e->ecx & ~0xffu) | ((ncpus - 1) & 0xff);
            break;
        default:
            break;
        }
    }
    return 0;
}
