/*
 * SMBIOS blobs parsed back structure by structure, and read by Debian's
 * dmidecode from a dump file (entry point at 0, table at 0x20, the layout
 * `dmidecode --dump-bin` writes and `--from-dump` reads).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "arch/x86/smbios.h"
#include "support/fake_guest_mem.h"

struct fixture {
    struct guest_mem gm;
    struct smbios_blobs b;
};

static const uint8_t test_uuid[16] = {0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0,
                                      0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef};

static int setup(void **state)
{
    static struct fixture f;
    memset(&f, 0, sizeof(f));
    /* Two regions, like low RAM and RAM above 4 GiB (only metadata matters). */
    assert_int_equal(fake_guest_mem_init(&f.gm, 0, 1 << 20), 0);
    assert_int_equal(fake_guest_mem_add(&f.gm, 0x100000000ull, 1 << 20), 0);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    smbios_blobs_free(&f->b);
    fake_guest_mem_free(&f->gm);
    return 0;
}

struct found {
    const uint8_t *s[16];
    const char *strings[16][8];
    unsigned nstr[16];
    unsigned n;
};

static unsigned uniq_types(const struct found *fd, uint8_t type)
{
    unsigned c = 0;
    for (unsigned i = 0; i < fd->n; i++)
        c += fd->s[i][0] == type;
    return c;
}

static const uint8_t *by_type(const struct found *fd, uint8_t type, unsigned *idx)
{
    for (unsigned i = 0; i < fd->n; i++)
        if (fd->s[i][0] == type) {
            if (idx)
                *idx = i;
            return fd->s[i];
        }
    return NULL;
}

/* Walk the table as an OS does; every structure must be well formed. */
static void walk(const uint8_t *t, size_t len, struct found *fd)
{
    memset(fd, 0, sizeof(*fd));
    size_t off = 0;
    uint16_t handles[16];
    for (;;) {
        assert_true(off + 4 <= len);
        const uint8_t *s = t + off;
        assert_true(s[1] >= 4);
        assert_true(off + s[1] + 2 <= len);
        assert_true(fd->n < 16);
        uint16_t h = (uint16_t)(s[2] | s[3] << 8);
        for (unsigned i = 0; i < fd->n; i++)
            assert_int_not_equal(handles[i], h);
        handles[fd->n] = h;
        fd->s[fd->n] = s;
        size_t p = off + s[1];
        if (t[p] == 0 && t[p + 1] == 0) {
            p += 2;
        } else {
            while (t[p] != 0) {
                const char *str = (const char *)&t[p];
                size_t sl = strnlen(str, len - p);
                assert_true(p + sl < len);
                if (fd->nstr[fd->n] < 8)
                    fd->strings[fd->n][fd->nstr[fd->n]] = str;
                fd->nstr[fd->n]++;
                p += sl + 1;
            }
            p++;
        }
        fd->n++;
        off = p;
        if (s[0] == 127)
            break;
    }
    assert_int_equal(off, len);
}

static void check_anchor(const struct smbios_blobs *b)
{
    assert_int_equal(b->anchor_len, SMBIOS3_ANCHOR_LEN);
    assert_memory_equal(b->anchor, "_SM3_", 5);
    uint8_t sum = 0;
    for (unsigned i = 0; i < b->anchor_len; i++)
        sum = (uint8_t)(sum + b->anchor[i]);
    assert_int_equal(sum, 0);
    assert_int_equal(b->anchor[6], 0x18);
    assert_int_equal(b->anchor[7], 3);
    assert_int_equal(b->anchor[8], 0);
    uint32_t max;
    memcpy(&max, b->anchor + 0x0c, 4);
    assert_int_equal(max, b->tables_len);
}

static void test_required_structures(void **state)
{
    struct fixture *f = *state;
    char *oem[] = {"io.podman.machine=yes", "second string"};
    struct smbios_info info = {.ncpus = 3, .mem = &f->gm, .oem_strings = oem, .n_oem_strings = 2};
    memcpy(info.uuid, test_uuid, 16);
    assert_int_equal(smbios_build(&info, &f->b), 0);
    check_anchor(&f->b);

    struct found fd;
    walk(f->b.tables, f->b.tables_len, &fd);
    const uint8_t required[] = {0, 1, 3, 4, 16, 17, 32, 127};
    for (unsigned i = 0; i < sizeof(required); i++)
        assert_int_equal(uniq_types(&fd, required[i]), 1);
    assert_int_equal(uniq_types(&fd, 19), 2); /* one per RAM region */
    assert_int_equal(fd.s[fd.n - 1][0], 127);

    unsigned i;
    const uint8_t *t1 = by_type(&fd, 1, &i);
    assert_int_equal(t1[1], 0x1b);
    const uint8_t want_uuid[16] = {0x78, 0x56, 0x34, 0x12, 0xbc, 0x9a, 0xf0, 0xde,
                                   0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef};
    assert_memory_equal(t1 + 8, want_uuid, 16);
    assert_in_range(t1[4], 1, fd.nstr[i]); /* manufacturer names a string */

    const uint8_t *t11 = by_type(&fd, 11, &i);
    assert_int_equal(t11[1], 5);
    assert_int_equal(t11[4], 2);
    assert_int_equal(fd.nstr[i], 2);
    assert_string_equal(fd.strings[i][0], "io.podman.machine=yes");
    assert_string_equal(fd.strings[i][1], "second string");

    const uint8_t *t4 = by_type(&fd, 4, NULL);
    assert_int_equal(t4[1], 0x30);
    assert_int_equal(t4[0x23], 3); /* cores */
    assert_int_equal(t4[0x2a] | t4[0x2b] << 8, 3);

    /* Type 19 ranges in KiB, inclusive ends, for both regions. */
    const uint8_t *t19 = by_type(&fd, 19, &i);
    uint32_t start, end;
    memcpy(&start, t19 + 4, 4);
    memcpy(&end, t19 + 8, 4);
    assert_int_equal(start, 0);
    assert_int_equal(end, 1023);
    memcpy(&start, fd.s[i + 1] + 4, 4);
    assert_int_equal(start, 0x100000000ull >> 10);

    /* Type 32 and 127 carry no strings: double NUL right after. */
    const uint8_t *t127 = by_type(&fd, 127, NULL);
    assert_int_equal(t127[1], 4);
    assert_int_equal(t127[4], 0);
    assert_int_equal(t127[5], 0);
}

static void test_no_oem_strings_no_type_11(void **state)
{
    struct fixture *f = *state;
    struct smbios_info info = {.ncpus = 300, .mem = &f->gm};
    assert_int_equal(smbios_build(&info, &f->b), 0);
    struct found fd;
    walk(f->b.tables, f->b.tables_len, &fd);
    assert_int_equal(uniq_types(&fd, 11), 0);
    const uint8_t *t4 = by_type(&fd, 4, NULL);
    assert_int_equal(t4[0x23], 0xff); /* more than 255: see core count 2 */
    assert_int_equal(t4[0x2a] | t4[0x2b] << 8, 300);
}

static void test_bad_oem_strings(void **state)
{
    struct fixture *f = *state;
    char *empty[] = {"ok", ""};
    struct smbios_info info = {.ncpus = 1, .mem = &f->gm, .oem_strings = empty, .n_oem_strings = 2};
    assert_int_equal(smbios_build(&info, &f->b), -EINVAL);
    assert_null(f->b.tables);

    char **many = calloc(256, sizeof(*many));
    assert_non_null(many);
    for (unsigned i = 0; i < 256; i++)
        many[i] = "x";
    info.oem_strings = many;
    info.n_oem_strings = 256;
    assert_int_equal(smbios_build(&info, &f->b), -EINVAL);
    info.n_oem_strings = 255;
    assert_int_equal(smbios_build(&info, &f->b), 0);
    struct found fd;
    walk(f->b.tables, f->b.tables_len, &fd);
    assert_int_equal(by_type(&fd, 11, NULL)[4], 255);
    free(many);
}

static const char *find_dmidecode(void)
{
    static const char *paths[] = {"/usr/sbin/dmidecode", "/sbin/dmidecode", "/usr/bin/dmidecode"};
    for (unsigned i = 0; i < 3; i++)
        if (access(paths[i], X_OK) == 0)
            return paths[i];
    return NULL;
}

static void test_dmidecode_reads_dump(void **state)
{
    struct fixture *f = *state;
    const char *dmi = find_dmidecode();
    if (!dmi) {
        if (getenv("SMBIOS_REQUIRE_DMIDECODE"))
            fail_msg("dmidecode is not installed");
        skip();
    }
    char *oem[] = {"krunkit-oem-marker", "key=value with spaces"};
    struct smbios_info info = {.ncpus = 2, .mem = &f->gm, .oem_strings = oem, .n_oem_strings = 2};
    memcpy(info.uuid, test_uuid, 16);
    assert_int_equal(smbios_build(&info, &f->b), 0);

    /* The dump's entry point points at the table's file offset. */
    uint8_t ep[0x20] = {0};
    memcpy(ep, f->b.anchor, f->b.anchor_len);
    uint64_t addr = 0x20;
    memcpy(ep + 0x10, &addr, 8);
    ep[5] = 0;
    uint8_t sum = 0;
    for (unsigned i = 0; i < f->b.anchor_len; i++)
        sum = (uint8_t)(sum + ep[i]);
    ep[5] = (uint8_t)(0x100 - sum);

    char path[] = "/tmp/test-smbios-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, ep, sizeof(ep)), (ssize_t)sizeof(ep));
    assert_int_equal(write(fd, f->b.tables, f->b.tables_len), (ssize_t)f->b.tables_len);
    close(fd);

    char cmd[256];
    snprintf(cmd, sizeof(cmd), "%s --from-dump %s 2>&1", dmi, path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    static char out[65536];
    size_t n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = 0;
    int status = pclose(p);
    unlink(path);
    if (status != 0)
        fail_msg("dmidecode failed:\n%s", out);
    if (!strstr(out, "SMBIOS 3.0.0 present") || !strstr(out, "String 1: krunkit-oem-marker") ||
        !strstr(out, "String 2: key=value with spaces") ||
        !strstr(out, "UUID: 12345678-9abc-def0-0123-456789abcdef") ||
        !strstr(out, "Core Count: 2") || !strstr(out, "Manufacturer: krunkit") ||
        !strstr(out, "End Of Table") || strstr(out, "BAD INDEX") || strstr(out, "Invalid") ||
        strstr(out, "wrong"))
        fail_msg("unexpected dmidecode output:\n%s", out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_required_structures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_oem_strings_no_type_11, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_oem_strings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dmidecode_reads_dump, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
