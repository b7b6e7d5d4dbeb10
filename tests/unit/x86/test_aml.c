/*
 * Unit tests of the AML emitter (ACPI 6.4 chapter 20): PkgLength at every
 * width boundary, name strings, integer/string/EISA id encodings, nested
 * scopes, packages, buffers, methods and resource descriptors, and the
 * sticky error.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <errno.h>

#include "arch/x86/aml.h"

static void expect_bytes(const struct aml *a, const uint8_t *want, size_t n)
{
    assert_int_equal(aml_status(a), 0);
    assert_int_equal(a->len, n);
    assert_memory_equal(a->buf, want, n);
}

/* The smallest number of PkgLength bytes that can hold body + itself. */
static int minimal_width(size_t body)
{
    if (body + 1 <= 0x3f)
        return 1;
    if (body + 2 <= 0xfff)
        return 2;
    if (body + 3 <= 0xfffff)
        return 3;
    return 4;
}

static void test_pkglen_boundaries(void **state)
{
    (void)state;
    /* Bodies on each side of the 1/2/3/4-byte limits (63, 4095, 2^20-1, 2^28-1 total). */
    static const size_t bodies[] = {
        0,       1,       61,      62,      63,       64,         4092,
        4093,    4094,    4095,    4096,    0xffffb,  0xffffc,    0xffffd,
        0xffffe, 0xfffff, 0x10000, 0x12345, 0x100000, 0x0ffffffa, 0x0ffffffb,
    };
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        uint8_t out[4];
        int n = aml_pkglen_encode(bodies[i], out);
        assert_int_equal(n, minimal_width(bodies[i]));
        uint32_t v = 0;
        assert_int_equal(aml_pkglen_decode(out, (size_t)n, &v), n);
        assert_int_equal(v, bodies[i] + (size_t)n);
        if (n > 1)
            assert_int_equal(out[0] & 0x30, 0); /* reserved bits */
    }
}

static void test_pkglen_exact_bytes(void **state)
{
    (void)state;
    uint8_t out[4];
    assert_int_equal(aml_pkglen_encode(62, out), 1);
    assert_int_equal(out[0], 0x3f);
    /* 63 bytes of body: total 65 = 0x41 -> lead 0x41 (1 extra byte, low nibble 1), then 0x04. */
    assert_int_equal(aml_pkglen_encode(63, out), 2);
    assert_int_equal(out[0], 0x41);
    assert_int_equal(out[1], 0x04);
    /* Largest two-byte value: 4095 = 0xfff. */
    assert_int_equal(aml_pkglen_encode(4093, out), 2);
    assert_int_equal(out[0], 0x4f);
    assert_int_equal(out[1], 0xff);
    /* 4094 needs three bytes: 4097 = 0x1001. */
    assert_int_equal(aml_pkglen_encode(4094, out), 3);
    assert_int_equal(out[0], 0x81);
    assert_int_equal(out[1], 0x00);
    assert_int_equal(out[2], 0x01);
    /* The largest PkgLength, then one too many. */
    assert_int_equal(aml_pkglen_encode(AML_PKGLEN_MAX - 4, out), 4);
    assert_int_equal(out[0], 0xcf);
    assert_int_equal(out[1], 0xff);
    assert_int_equal(out[2], 0xff);
    assert_int_equal(out[3], 0xff);
    assert_int_equal(aml_pkglen_encode(AML_PKGLEN_MAX - 3, out), -E2BIG);
}

static void test_pkglen_decode_rejects(void **state)
{
    (void)state;
    uint32_t v;
    const uint8_t reserved[] = {0x70, 0x00};
    assert_int_equal(aml_pkglen_decode(reserved, 2, &v), -EINVAL);
    const uint8_t truncated[] = {0xc1, 0x00};
    assert_int_equal(aml_pkglen_decode(truncated, 2, &v), -EINVAL);
    assert_int_equal(aml_pkglen_decode(truncated, 0, &v), -EINVAL);
}

static void test_namestrings(void **state)
{
    (void)state;
    struct aml a;

    aml_init(&a);
    aml_namestring(&a, "_S5");
    expect_bytes(&a, (const uint8_t *)"_S5_", 4);
    aml_release(&a);

    aml_init(&a);
    aml_namestring(&a, "\\_SB.PCI0");
    expect_bytes(&a, (const uint8_t *)"\x5c\x2e_SB_PCI0", 10);
    aml_release(&a);

    aml_init(&a);
    aml_namestring(&a, "\\_SB.PCI0.ISA");
    expect_bytes(&a, (const uint8_t *)"\x5c\x2f\x03_SB_PCI0ISA_", 15);
    aml_release(&a);

    aml_init(&a);
    aml_namestring(&a, "\\");
    expect_bytes(&a, (const uint8_t *)"\x5c\x00", 2);
    aml_release(&a);

    aml_init(&a);
    aml_namestring(&a, "^^C001");
    expect_bytes(&a, (const uint8_t *)"^^C001", 6);
    aml_release(&a);
}

static void test_bad_names(void **state)
{
    (void)state;
    static const char *const bad[] = {"pci0", "TOOLONG", "A..B", "1ABC", "_SB.", ".X", "A-B", ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct aml a;
        aml_init(&a);
        aml_name_decl(&a, bad[i]);
        if (bad[i][0] == '\0') {
            /* An empty name is the NullName, valid in the grammar. */
            assert_int_equal(aml_status(&a), 0);
        } else {
            assert_int_equal(aml_status(&a), -EINVAL);
        }
        aml_release(&a);
    }
}

static void test_integers(void **state)
{
    (void)state;
    static const struct {
        uint64_t v;
        size_t n;
        uint8_t bytes[9];
    } cases[] = {
        {0, 1, {0x00}},
        {1, 1, {0x01}},
        {2, 2, {0x0a, 0x02}},
        {0xff, 2, {0x0a, 0xff}},
        {0x100, 3, {0x0b, 0x00, 0x01}},
        {0xffff, 3, {0x0b, 0xff, 0xff}},
        {0x10000, 5, {0x0c, 0x00, 0x00, 0x01, 0x00}},
        {0xfebfffff, 5, {0x0c, 0xff, 0xff, 0xbf, 0xfe}},
        {0x100000000ull, 9, {0x0e, 0, 0, 0, 0, 1, 0, 0, 0}},
        {0x8000000000ull, 9, {0x0e, 0, 0, 0, 0, 0x80, 0, 0, 0}},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct aml a;
        aml_init(&a);
        aml_integer(&a, cases[i].v);
        expect_bytes(&a, cases[i].bytes, cases[i].n);
        aml_release(&a);
    }
}

static void test_string_and_eisaid(void **state)
{
    (void)state;
    struct aml a;
    aml_init(&a);
    aml_string(&a, "ACPI0007");
    expect_bytes(&a,
                 (const uint8_t *)"\x0d"
                                  "ACPI0007\0",
                 10);
    aml_release(&a);

    aml_init(&a);
    aml_string(&a, "caf\xc3\xa9");
    assert_int_equal(aml_status(&a), -EINVAL);
    aml_release(&a);

    assert_int_equal(aml_eisaid_value("PNP0A03"), 0x030ad041);
    assert_int_equal(aml_eisaid_value("PNP0501"), 0x0105d041);
    assert_int_equal(aml_eisaid_value("pnp0a03"), -EINVAL);
    assert_int_equal(aml_eisaid_value("PNP0A0"), -EINVAL);
    assert_int_equal(aml_eisaid_value("PNP0A0G"), -EINVAL);

    aml_init(&a);
    aml_eisaid(&a, "PNP0A03");
    expect_bytes(&a, (const uint8_t *)"\x0c\x41\xd0\x0a\x03", 5);
    aml_release(&a);
}

static void test_nested_scope_device(void **state)
{
    (void)state;
    struct aml a;
    aml_init(&a);
    struct aml_mark sb = aml_scope_begin(&a, "\\_SB");
    struct aml_mark dev = aml_device_begin(&a, "FOO");
    aml_name_decl(&a, "_UID");
    aml_integer(&a, 1);
    aml_end(&a, dev);
    aml_end(&a, sb);
    static const uint8_t want[] = {
        0x10, 0x13, 0x5c, '_', 'S', 'B',  '_', /* Scope (\_SB) */
        0x5b, 0x82, 0x0b, 'F', 'O', 'O',  '_', /* Device (FOO) */
        0x08, '_',  'U',  'I', 'D', 0x01,      /* Name (_UID, One) */
    };
    expect_bytes(&a, want, sizeof(want));
    aml_release(&a);
}

/* A scope whose body is exactly body_len bytes: its PkgLength must widen at 63. */
static void scope_with_body(size_t body_len, struct aml *a)
{
    aml_init(a);
    struct aml_mark m = aml_scope_begin(a, "ABCD");
    uint8_t zeros[8192] = {0};
    aml_raw(a, zeros, body_len - 4); /* ZeroOps after the 4-byte name */
    aml_end(a, m);
}

static void test_scope_pkglen_widens(void **state)
{
    (void)state;
    static const size_t bodies[] = {62, 63, 4093, 4094};
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        struct aml a;
        scope_with_body(bodies[i], &a);
        assert_int_equal(aml_status(&a), 0);
        uint32_t v;
        int n = aml_pkglen_decode(a.buf + 1, a.len - 1, &v);
        assert_int_equal(n, minimal_width(bodies[i]));
        assert_int_equal(v, bodies[i] + (size_t)n);
        assert_int_equal(a.len, 1 + v); /* opcode + the whole package */
        assert_memory_equal(a.buf + 1 + n, "ABCD", 4);
        aml_release(&a);
    }
}

static void test_package(void **state)
{
    (void)state;
    struct aml a;
    aml_init(&a);
    struct aml_mark p = aml_package_begin(&a, 2);
    aml_integer(&a, 1);
    aml_integer(&a, 2);
    aml_end(&a, p);
    expect_bytes(&a, (const uint8_t *)"\x12\x05\x02\x01\x0a\x02", 6);
    aml_release(&a);

    aml_init(&a);
    aml_package_begin(&a, 256);
    assert_int_equal(aml_status(&a), -EINVAL);
    aml_release(&a);
}

static void test_buffers(void **state)
{
    (void)state;
    struct aml a;
    aml_init(&a);
    struct aml_mark b = aml_buffer_begin(&a);
    aml_end(&a, b);
    expect_bytes(&a, (const uint8_t *)"\x11\x02\x00", 3); /* Buffer (Zero) {} */
    aml_release(&a);

    aml_init(&a);
    b = aml_buffer_begin(&a);
    aml_raw(&a, "\xaa\xbb\xcc", 3);
    aml_end(&a, b);
    expect_bytes(&a, (const uint8_t *)"\x11\x06\x0a\x03\xaa\xbb\xcc", 7);
    aml_release(&a);

    /* 64 data bytes: BufferSize 0x0a 0x40, body 66, two-byte PkgLength of 68. */
    aml_init(&a);
    b = aml_buffer_begin(&a);
    uint8_t data[64];
    memset(data, 0x5a, sizeof(data));
    aml_raw(&a, data, sizeof(data));
    aml_end(&a, b);
    assert_int_equal(aml_status(&a), 0);
    assert_int_equal(a.len, 1 + 2 + 2 + 64);
    assert_memory_equal(a.buf, "\x11\x44\x04\x0a\x40", 5);
    assert_memory_equal(a.buf + 5, data, 64);
    aml_release(&a);
}

static void test_method_return(void **state)
{
    (void)state;
    struct aml a;
    aml_init(&a);
    struct aml_mark m = aml_method_begin(&a, "_STA", 0, false);
    aml_return(&a);
    aml_integer(&a, 0x0f);
    aml_end(&a, m);
    expect_bytes(&a, (const uint8_t *)"\x14\x09_STA\x00\xa4\x0a\x0f", 10);
    aml_release(&a);

    aml_init(&a);
    m = aml_method_begin(&a, "FOO", 2, true);
    aml_end(&a, m);
    expect_bytes(&a,
                 (const uint8_t *)"\x14\x06"
                                  "FOO_\x0a",
                 7);
    aml_release(&a);

    aml_init(&a);
    aml_method_begin(&a, "FOO", 8, false);
    assert_int_equal(aml_status(&a), -EINVAL);
    aml_release(&a);
}

static void test_resource_template(void **state)
{
    (void)state;
    struct aml a;
    aml_init(&a);
    struct aml_mark r = aml_restemplate_begin(&a);
    aml_res_io(&a, 0x3f8, 0x3f8, 0x00, 0x08);
    aml_res_irq_noflags(&a, 1u << 4);
    aml_restemplate_end(&a, r);
    static const uint8_t want[] = {
        0x11, 0x10, 0x0a, 0x0d,                         /* Buffer (13) */
        0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x00, 0x08, /* IO (Decode16, 0x3f8, ...) */
        0x22, 0x10, 0x00,                               /* IRQNoFlags () {4} */
        0x79, 0x00,                                     /* End Tag */
    };
    expect_bytes(&a, want, sizeof(want));
    aml_release(&a);
}

static void test_address_descriptors(void **state)
{
    (void)state;
    struct aml a;
    aml_init(&a);
    aml_res_word(&a, AML_ADDR_BUS, 0, 0x00, 0xff);
    static const uint8_t word[] = {0x88, 0x0d, 0x00, 0x02, 0x0c, 0x00, 0x00, 0x00,
                                   0x00, 0x00, 0xff, 0x00, 0x00, 0x00, 0x00, 0x01};
    expect_bytes(&a, word, sizeof(word));
    aml_release(&a);

    aml_init(&a);
    aml_res_dword(&a, AML_ADDR_MEMORY, AML_MEM_READWRITE, 0x80000000u, 0xfebfffffu);
    assert_int_equal(aml_status(&a), 0);
    assert_int_equal(a.len, 3 + 23);
    assert_memory_equal(a.buf, "\x87\x17\x00\x00\x0c\x01", 6);
    assert_memory_equal(a.buf + 10, "\x00\x00\x00\x80", 4); /* min */
    assert_memory_equal(a.buf + 14, "\xff\xff\xbf\xfe", 4); /* max */
    assert_memory_equal(a.buf + 22, "\x00\x00\xc0\x7e", 4); /* length */
    aml_release(&a);

    aml_init(&a);
    aml_res_qword(&a, AML_ADDR_MEMORY, AML_MEM_READWRITE | AML_MEM_CACHEABLE, 0x8000000000ull,
                  0xffffffffffull);
    assert_int_equal(aml_status(&a), 0);
    assert_int_equal(a.len, 3 + 43);
    assert_memory_equal(a.buf, "\x8a\x2b\x00\x00\x0c\x03", 6);
    assert_memory_equal(a.buf + 38, "\x00\x00\x00\x00\x80\x00\x00\x00", 8); /* length */
    aml_release(&a);

    /* A window whose length does not fit the descriptor, or is inverted. */
    aml_init(&a);
    aml_res_word(&a, AML_ADDR_IO, AML_IO_ENTIRE_RANGE, 0x0000, 0xffff);
    assert_int_equal(aml_status(&a), -EINVAL);
    aml_release(&a);
    aml_init(&a);
    aml_res_dword(&a, AML_ADDR_MEMORY, 0, 0x2000, 0x1000);
    assert_int_equal(aml_status(&a), -EINVAL);
    aml_release(&a);
    aml_init(&a);
    aml_res_qword(&a, AML_ADDR_MEMORY, 0, 0, UINT64_MAX);
    assert_int_equal(aml_status(&a), -EINVAL);
    aml_release(&a);
    aml_init(&a);
    aml_res_io(&a, 0x70, 0x60, 1, 1);
    assert_int_equal(aml_status(&a), -EINVAL);
    aml_release(&a);
}

static void test_error_is_sticky(void **state)
{
    (void)state;
    struct aml a;
    aml_init(&a);
    aml_integer(&a, 5);
    size_t len = a.len;
    aml_name_decl(&a, "bad!");
    assert_int_equal(aml_status(&a), -EINVAL);
    size_t after = a.len;
    aml_integer(&a, 7);
    struct aml_mark m = aml_scope_begin(&a, "GOOD");
    aml_end(&a, m);
    aml_package_begin(&a, 300); /* a second, different error is not recorded */
    assert_int_equal(aml_status(&a), -EINVAL);
    assert_int_equal(a.len, after);
    assert_true(after >= len);
    aml_release(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pkglen_boundaries),
        cmocka_unit_test(test_pkglen_exact_bytes),
        cmocka_unit_test(test_pkglen_decode_rejects),
        cmocka_unit_test(test_namestrings),
        cmocka_unit_test(test_bad_names),
        cmocka_unit_test(test_integers),
        cmocka_unit_test(test_string_and_eisaid),
        cmocka_unit_test(test_nested_scope_device),
        cmocka_unit_test(test_scope_pkglen_widens),
        cmocka_unit_test(test_package),
        cmocka_unit_test(test_buffers),
        cmocka_unit_test(test_method_return),
        cmocka_unit_test(test_resource_template),
        cmocka_unit_test(test_address_descriptors),
        cmocka_unit_test(test_error_is_sticky),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
