/*
 * The CPUID a vCPU sees: what the host's KVM supports, with a consistent
 * topology (one package, ncpus cores, one thread each; APIC id = vCPU index),
 * the hypervisor bit, and SVM/VMX exposed only with --nested.
 */
#ifndef KRUNKIT_ARCH_X86_CPUID_H
#define KRUNKIT_ARCH_X86_CPUID_H

#include <linux/kvm.h>
#include <stdbool.h>

/*
 * Rewrite `c` (a copy of the supported CPUID) for vCPU `index` of `ncpus`.
 * Returns -ENOTSUP when nested is asked but the host's KVM does not offer it.
 */
int cpuid_for_vcpu(struct kvm_cpuid2 *c, unsigned index, unsigned ncpus, bool nested);

/* Offer the TSC-deadline mode of the LAPIC timer (leaf 0x1 ECX bit 24). */
void cpuid_add_tsc_deadline(struct kvm_cpuid2 *supported);

/* Whether the host's KVM can expose SVM or VMX to guests. */
bool cpuid_has_nested(const struct kvm_cpuid2 *supported);

#endif
