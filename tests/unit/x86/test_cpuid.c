/*
 * Guest CPUID rewriting (src/arch/x86/cpuid.c) on a fake
 * KVM_GET_SUPPORTED_CPUID result: topology for 1, 2, 3 and 8 vCPUs as
 * Linux reads it (Intel SDM vol. 2A CPUID leaves 1, 4, 0xB, 0x1F; AMD APM
 * vol. 3 leaf 0x80000008), APIC ids, and SVM/VMX exposure.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "arch/x86/cpuid.h"

#define VMX (1u << 5)
#define HYPERVISOR (1u << 31)
#define HTT (1u << 28)
#define SVM (1u << 2)

/* Host garbage in the fields that must be rewritten. */
#define HOST_LEAF1_EBX 0x2a100800u /* APIC id 0x2a, 16 logical, CLFLUSH 8 */
#define HOST_L4_EAX(level, type) (0xfc0fc000u | (level) << 5 | 1u << 8 | (type))

static struct kvm_cpuid_entry2 entry(uint32_t fn, uint32_t idx, uint32_t eax, uint32_t ebx,
                                     uint32_t ecx, uint32_t edx)
{
    return (struct kvm_cpuid_entry2){
        .function = fn, .index = idx, .eax = eax, .ebx = ebx, .ecx = ecx, .edx = edx};
}

/* The host's supported CPUID; vmx/svm say what the host's KVM offers. */
static struct kvm_cpuid2 *host_cpuid(bool vmx, bool svm)
{
    struct kvm_cpuid_entry2 e[] = {
        entry(0x0, 0, 0x1f, 0x756e6547, 0x6c65746e, 0x49656e69),
        entry(0x1, 0, 0x000906ea, HOST_LEAF1_EBX, 0x7ffafbbf & ~VMX & ~HYPERVISOR, 0xbfebfbff),
        entry(0x4, 0, HOST_L4_EAX(1, 1), 0x01c0003f, 0x3f, 0),   /* L1d */
        entry(0x4, 1, HOST_L4_EAX(1, 2), 0x01c0003f, 0x3f, 0),   /* L1i */
        entry(0x4, 2, HOST_L4_EAX(2, 3), 0x01c0003f, 0x3ff, 0),  /* L2 */
        entry(0x4, 3, HOST_L4_EAX(3, 3), 0x03c0003f, 0x3fff, 6), /* L3 */
        entry(0x4, 4, 0, 0, 0, 0),
        entry(0xb, 0, 1, 2, 0x100, 0x2a),
        entry(0xb, 1, 5, 16, 0x201, 0x2a),
        entry(0xb, 2, 0, 0, 2, 0x2a),
        entry(0x1f, 0, 1, 2, 0x100, 0x2a),
        entry(0x1f, 1, 5, 16, 0x201, 0x2a),
        entry(0x1f, 2, 0, 0, 2, 0x2a),
        entry(0x80000001, 0, 0, 0, 0x121, 0x2c100800),
        entry(0x80000008, 0, 0x3027, 0, 0x700f, 0),
    };
    size_t n = sizeof(e) / sizeof(e[0]);
    struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(e[0]));
    c->nent = (uint32_t)n;
    memcpy(c->entries, e, sizeof(e));
    for (size_t i = 0; i < n; i++) {
        if (vmx && c->entries[i].function == 1)
            c->entries[i].ecx |= VMX;
        if (svm && c->entries[i].function == 0x80000001)
            c->entries[i].ecx |= SVM;
    }
    return c;
}

static const struct kvm_cpuid_entry2 *leaf(const struct kvm_cpuid2 *c, uint32_t fn, uint32_t idx)
{
    for (unsigned i = 0; i < c->nent; i++)
        if (c->entries[i].function == fn && c->entries[i].index == idx)
            return &c->entries[i];
    fail_msg("leaf 0x%x.%u missing", fn, idx);
    return NULL;
}

/* Bits needed to number ncpus cores (what Linux derives from the shifts). */
static unsigned bits_for(unsigned n)
{
    unsigned b = 0;
    while ((1u << b) < n)
        b++;
    return b;
}

static void check_topology(unsigned ncpus)
{
    for (unsigned idx = 0; idx < ncpus; idx++) {
        struct kvm_cpuid2 *c = host_cpuid(true, false);
        assert_int_equal(cpuid_for_vcpu(c, idx, ncpus, false), 0);

        const struct kvm_cpuid_entry2 *l1 = leaf(c, 1, 0);
        assert_int_equal(l1->ebx >> 24, idx);                        /* initial APIC id */
        assert_int_equal((l1->ebx >> 16) & 0xff, ncpus);             /* logical processors */
        assert_int_equal(l1->ebx & 0xffff, HOST_LEAF1_EBX & 0xffff); /* brand, CLFLUSH kept */
        assert_true(l1->ecx & HYPERVISOR);
        assert_false(l1->ecx & VMX);
        assert_int_equal(!!(l1->edx & HTT), ncpus > 1);
        assert_int_equal(l1->eax, 0x000906ea);

        unsigned shift = bits_for(ncpus);
        for (uint32_t sub = 0; sub < 4; sub++) {
            const struct kvm_cpuid_entry2 *l4 = leaf(c, 4, sub);
            /* Cores per package - 1 in 31:26; the cache description kept. */
            assert_int_equal(l4->eax >> 26, (1u << shift) - 1);
            static const uint32_t host_eax[] = {HOST_L4_EAX(1, 1), HOST_L4_EAX(1, 2),
                                                HOST_L4_EAX(2, 3), HOST_L4_EAX(3, 3)};
            assert_int_equal(l4->eax & 0x3fff, host_eax[sub] & 0x3fff);
            unsigned sharing = (l4->eax >> 14) & 0xfff;
            /* One thread per core: L1/L2 private, L3 shared by the package. */
            assert_int_equal(sharing, sub == 3 ? (1u << shift) - 1 : 0);
        }

        for (uint32_t fn = 0xb; fn <= 0x1f; fn += 0x14) {
            const struct kvm_cpuid_entry2 *smt = leaf(c, fn, 0), *core = leaf(c, fn, 1),
                                          *end = leaf(c, fn, 2);
            /* x2APIC id everywhere, equal to the leaf 1 APIC id. */
            assert_int_equal(smt->edx, idx);
            assert_int_equal(core->edx, idx);
            assert_int_equal(end->edx, idx);
            assert_int_equal(smt->edx, l1->ebx >> 24);
            /* SMT level: one thread, no id bits. */
            assert_int_equal(smt->eax & 0x1f, 0);
            assert_int_equal(smt->ebx & 0xffff, 1);
            assert_int_equal(smt->ecx, 0x100);
            /* Core level: all vCPUs, and the shift covers every APIC id. */
            assert_int_equal(core->ebx & 0xffff, ncpus);
            assert_int_equal(core->ecx, 0x201);
            assert_int_equal((ncpus - 1) >> (core->eax & 0x1f), 0);
            assert_true((1u << (core->eax & 0x1f)) < 2 * ncpus);
            assert_int_equal(idx >> (core->eax & 0x1f), 0); /* all in package 0 */
            /* Then the end of the list. */
            assert_int_equal((end->ecx >> 8) & 0xff, 0);
            assert_int_equal(end->ecx & 0xff, 2);
            assert_int_equal(end->ebx, 0);
        }

        const struct kvm_cpuid_entry2 *amd = leaf(c, 0x80000008, 0);
        assert_int_equal(amd->ecx & 0xff, ncpus - 1);
        assert_int_equal(amd->ecx & 0xff00, 0x7000);
        assert_int_equal(amd->eax, 0x3027);
        assert_false(leaf(c, 0x80000001, 0)->ecx & SVM);
        /* Leaves we do not own are untouched. */
        assert_int_equal(leaf(c, 0, 0)->ebx, 0x756e6547);
        free(c);
    }
}

static void test_one_cpu(void **state)
{
    (void)state;
    check_topology(1);
}

static void test_two_cpus(void **state)
{
    (void)state;
    check_topology(2);
}

static void test_three_cpus(void **state)
{
    (void)state;
    check_topology(3);
}

static void test_eight_cpus(void **state)
{
    (void)state;
    check_topology(8);
}

static void test_nested_vmx_kept(void **state)
{
    (void)state;
    struct kvm_cpuid2 *c = host_cpuid(true, false);
    assert_true(cpuid_has_nested(c));
    assert_int_equal(cpuid_for_vcpu(c, 1, 2, true), 0);
    assert_true(leaf(c, 1, 0)->ecx & VMX);
    assert_int_equal(leaf(c, 1, 0)->ebx >> 24, 1);
    free(c);
}

static void test_nested_svm_kept(void **state)
{
    (void)state;
    struct kvm_cpuid2 *c = host_cpuid(false, true);
    assert_true(cpuid_has_nested(c));
    assert_int_equal(cpuid_for_vcpu(c, 0, 4, true), 0);
    assert_true(leaf(c, 0x80000001, 0)->ecx & SVM);
    assert_false(leaf(c, 1, 0)->ecx & VMX);
    free(c);
    /* Without --nested SVM is hidden. */
    c = host_cpuid(false, true);
    assert_int_equal(cpuid_for_vcpu(c, 0, 4, false), 0);
    assert_false(leaf(c, 0x80000001, 0)->ecx & SVM);
    assert_int_equal(leaf(c, 0x80000001, 0)->ecx, 0x121);
    free(c);
}

static void test_tsc_deadline_added(void **state)
{
    (void)state;
    struct kvm_cpuid2 *c = host_cpuid(false, false);
    for (unsigned i = 0; i < c->nent; i++) /* KVM's supported list leaves it out */
        if (c->entries[i].function == 1)
            c->entries[i].ecx &= ~(1u << 24);
    uint32_t before = leaf(c, 1, 0)->ecx;
    cpuid_add_tsc_deadline(c);
    assert_int_equal(leaf(c, 1, 0)->ecx, before | 1u << 24);
    /* The per-vCPU rewrite keeps it. */
    assert_int_equal(cpuid_for_vcpu(c, 0, 2, false), 0);
    assert_true(leaf(c, 1, 0)->ecx & (1u << 24));
    assert_int_equal(leaf(c, 0x80000001, 0)->ecx, 0x121);
    free(c);
}

static void test_nested_absent_refused(void **state)
{
    (void)state;
    struct kvm_cpuid2 *c = host_cpuid(false, false);
    assert_false(cpuid_has_nested(c));
    assert_int_equal(cpuid_for_vcpu(c, 0, 1, true), -ENOTSUP);
    /* Refused before touching anything. */
    assert_int_equal(leaf(c, 1, 0)->ebx, HOST_LEAF1_EBX);
    assert_false(leaf(c, 1, 0)->ecx & HYPERVISOR);
    free(c);
    /* An empty table has nothing to offer either. */
    struct kvm_cpuid2 empty = {.nent = 0};
    assert_false(cpuid_has_nested(&empty));
    assert_int_equal(cpuid_for_vcpu(&empty, 0, 1, true), -ENOTSUP);
    assert_int_equal(cpuid_for_vcpu(&empty, 0, 1, false), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_cpu),
        cmocka_unit_test(test_two_cpus),
        cmocka_unit_test(test_three_cpus),
        cmocka_unit_test(test_eight_cpus),
        cmocka_unit_test(test_nested_vmx_kept),
        cmocka_unit_test(test_nested_svm_kept),
        cmocka_unit_test(test_nested_absent_refused),
        cmocka_unit_test(test_tsc_deadline_added),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
