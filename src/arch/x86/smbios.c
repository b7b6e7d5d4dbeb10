/*
 * SMBIOS structure table and 3.0 entry point (DMTF DSP0134 3.0.0: 5.2.2
 * "SMBIOS 3.0 Entry Point", 6.1.2 "Structure header format", 6.1.3 "Text
 * strings", 6.2 "Required structures", 7.x for each type's layout).
 * Handles follow QEMU's numbering (type << 8 | instance), so tools that
 * compare against a QEMU guest see familiar values.
 */
#include "arch/x86/smbios.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

#define SMBIOS_MAJOR 3
#define SMBIOS_MINOR 0
#define SMBIOS_MAX_STRINGS_PER_STRUCT 255

struct table_buf {
    uint8_t *p;
    size_t len, cap;
    int err;
};

/* A structure being built: formatted area plus its string set. */
struct smbios_struct {
    uint8_t f[0x30]; /* largest formatted area we emit (type 4, 3.0) */
    unsigned flen;
    const char *strings[SMBIOS_MAX_STRINGS_PER_STRUCT];
    unsigned nstr;
};

static void buf_put(struct table_buf *b, const void *data, size_t n)
{
    if (b->err)
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n)
            cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p) {
            b->err = -ENOMEM;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void put8(struct smbios_struct *s, unsigned off, uint8_t v)
{
    s->f[off] = v;
}

static void put16(struct smbios_struct *s, unsigned off, uint16_t v)
{
    s->f[off] = (uint8_t)v;
    s->f[off + 1] = (uint8_t)(v >> 8);
}

static void put32(struct smbios_struct *s, unsigned off, uint32_t v)
{
    for (unsigned i = 0; i < 4; i++)
        s->f[off + i] = (uint8_t)(v >> (8 * i));
}

static void put64(struct smbios_struct *s, unsigned off, uint64_t v)
{
    for (unsigned i = 0; i < 8; i++)
        s->f[off + i] = (uint8_t)(v >> (8 * i));
}

static void begin(struct smbios_struct *s, uint8_t type, unsigned flen, uint16_t handle)
{
    memset(s, 0, sizeof(*s));
    s->flen = flen;
    put8(s, 0, type);
    put8(s, 1, (uint8_t)flen);
    put16(s, 2, handle);
}

/* String reference for a field: 1-based index in the set, 0 for "none". */
static uint8_t str(struct smbios_struct *s, const char *text)
{
    if (!text || !text[0] || s->nstr == SMBIOS_MAX_STRINGS_PER_STRUCT)
        return 0;
    s->strings[s->nstr++] = text;
    return (uint8_t)s->nstr;
}

static void emit(struct table_buf *b, const struct smbios_struct *s)
{
    buf_put(b, s->f, s->flen);
    for (unsigned i = 0; i < s->nstr; i++)
        buf_put(b, s->strings[i], strlen(s->strings[i]) + 1);
    /* The set ends with an extra NUL; with no strings, two NULs. */
    static const uint8_t zeros[2];
    buf_put(b, zeros, s->nstr ? 1 : 2);
}

static int check_oem_strings(const struct smbios_info *info)
{
    if (info->n_oem_strings > SMBIOS_MAX_OEM_STRINGS) {
        log_error("--oem-string: at most %d strings fit in SMBIOS type 11 (got %zu)",
                  SMBIOS_MAX_OEM_STRINGS, info->n_oem_strings);
        return -EINVAL;
    }
    for (size_t i = 0; i < info->n_oem_strings; i++) {
        size_t n = strlen(info->oem_strings[i]);
        /* An empty string would end the string set early (DSP0134 6.1.3). */
        if (n == 0 || n > SMBIOS_MAX_STRING) {
            log_error("--oem-string #%zu: SMBIOS strings must be 1..%d bytes (got %zu)", i + 1,
                      SMBIOS_MAX_STRING, n);
            return -EINVAL;
        }
    }
    return 0;
}

int smbios_build(const struct smbios_info *info, struct smbios_blobs *out)
{
    memset(out, 0, sizeof(*out));
    if (!info->mem || info->mem->nr_regions == 0 || info->ncpus == 0)
        return -EINVAL;
    int rc = check_oem_strings(info);
    if (rc)
        return rc;

    struct table_buf b = {0};
    struct smbios_struct *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;

    /* Type 0: BIOS information (7.1), 2.4+ layout. */
    begin(s, 0, 0x18, 0x0000);
    put8(s, 0x04, str(s, "krunkit"));
    put8(s, 0x05, str(s, "1.0"));
    put16(s, 0x06, 0xe800);              /* starting segment: meaningless under UEFI */
    put8(s, 0x08, str(s, "01/01/2025")); /* mm/dd/yyyy */
    put8(s, 0x09, 0);                    /* ROM size 64 KiB */
    put64(s, 0x0a, 1ull << 3);           /* characteristics not supported */
    put8(s, 0x12, 0);
    put8(s, 0x13, (1u << 3) | (1u << 4)); /* UEFI supported, virtual machine */
    put8(s, 0x14, 1);                     /* BIOS release 1.0 */
    put8(s, 0x15, 0);
    put8(s, 0x16, 0xff); /* no embedded controller */
    put8(s, 0x17, 0xff);
    emit(&b, s);

    /* Type 1: system information (7.2), UUID with its first three fields little-endian. */
    begin(s, 1, 0x1b, 0x0100);
    put8(s, 0x04, str(s, "krunkit"));
    put8(s, 0x05, str(s, "krunkit virtual machine"));
    put8(s, 0x06, str(s, "1.0"));
    const uint8_t *u = info->uuid;
    const uint8_t swapped[16] = {u[3], u[2], u[1],  u[0],  u[5],  u[4],  u[7],  u[6],
                                 u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]};
    memcpy(&s->f[0x08], swapped, 16);
    put8(s, 0x18, 6); /* woken by the power switch */
    put8(s, 0x1a, str(s, "Virtual Machine"));
    emit(&b, s);

    /* Type 3: system enclosure (7.4), no contained elements, SKU string absent. */
    begin(s, 3, 0x16, 0x0300);
    put8(s, 0x04, str(s, "krunkit"));
    put8(s, 0x05, 0x01); /* other */
    put8(s, 0x09, 0x03); /* boot-up, power supply, thermal: safe */
    put8(s, 0x0a, 0x03);
    put8(s, 0x0b, 0x03);
    put8(s, 0x0c, 0x02); /* security status unknown */
    emit(&b, s);

    /* Type 4: processor (7.5), one populated socket holding every vCPU as a core. */
    begin(s, 4, 0x30, 0x0400);
    put8(s, 0x04, str(s, "CPU 0"));
    put8(s, 0x05, 0x03); /* central processor */
    put8(s, 0x06, 0x01); /* family: other */
    put8(s, 0x10, str(s, "krunkit virtual CPU"));
    put16(s, 0x14, 2000); /* max and current speed in MHz; 0 would mean unknown */
    put16(s, 0x16, 2000);
    put8(s, 0x18, 0x41); /* socket populated, CPU enabled */
    put8(s, 0x19, 0x01); /* upgrade: other */
    put16(s, 0x1a, 0xffff);
    put16(s, 0x1c, 0xffff);
    put16(s, 0x1e, 0xffff);
    unsigned n = info->ncpus;
    uint8_t n8 = n > 255 ? 0xff : (uint8_t)n;
    put8(s, 0x23, n8);
    put8(s, 0x24, n8);
    put8(s, 0x25, n8);
    put16(s, 0x26, 0x0004); /* 64-bit capable */
    put16(s, 0x28, 0x0001);
    put16(s, 0x2a, (uint16_t)n);
    put16(s, 0x2c, (uint16_t)n);
    put16(s, 0x2e, (uint16_t)n);
    emit(&b, s);

    /* Type 11: OEM strings (7.12). */
    if (info->n_oem_strings) {
        begin(s, 11, 0x05, 0x0b00);
        for (size_t i = 0; i < info->n_oem_strings; i++)
            str(s, info->oem_strings[i]);
        put8(s, 0x04, (uint8_t)info->n_oem_strings);
        emit(&b, s);
    }

    /* Type 16: physical memory array (7.17), 2.7+ layout. */
    uint64_t ram = info->mem->ram_size;
    uint64_t ram_kib = ram >> 10;
    begin(s, 16, 0x17, 0x1000);
    put8(s, 0x04, 0x01); /* location: other */
    put8(s, 0x05, 0x03); /* system memory */
    put8(s, 0x06, 0x06); /* multi-bit ECC, as QEMU says */
    if (ram_kib < 0x80000000ull) {
        put32(s, 0x07, (uint32_t)ram_kib);
    } else {
        put32(s, 0x07, 0x80000000u);
        put64(s, 0x0f, ram);
    }
    put16(s, 0x0b, 0xfffe); /* no error information */
    put16(s, 0x0d, 1);
    emit(&b, s);

    /* Type 17: memory device (7.18), 2.8+ layout, one device holding all RAM. */
    uint64_t ram_mib = ram >> 20;
    begin(s, 17, 0x28, 0x1100);
    put16(s, 0x04, 0x1000);
    put16(s, 0x06, 0xfffe);
    put16(s, 0x08, 0xffff); /* widths unknown */
    put16(s, 0x0a, 0xffff);
    if (ram_mib < 0x7fff) {
        put16(s, 0x0c, (uint16_t)ram_mib);
    } else {
        put16(s, 0x0c, 0x7fff);
        put32(s, 0x1c, (uint32_t)(ram_mib > 0x7fffffff ? 0x7fffffff : ram_mib));
    }
    put8(s, 0x0e, 0x09); /* DIMM */
    put8(s, 0x10, str(s, "DIMM 0"));
    put8(s, 0x12, 0x07);    /* RAM */
    put16(s, 0x13, 0x0002); /* type detail: other */
    put8(s, 0x17, str(s, "krunkit"));
    emit(&b, s);

    /* Type 19: memory array mapped address (7.20), one per RAM region. */
    for (unsigned i = 0; i < info->mem->nr_regions; i++) {
        const struct guest_mem_region *r = &info->mem->regions[i];
        uint64_t start = r->gpa, end = r->gpa + r->size - 1;
        begin(s, 19, 0x1f, (uint16_t)(0x1300 + i));
        if ((end >> 10) < 0xffffffffull) {
            put32(s, 0x04, (uint32_t)(start >> 10));
            put32(s, 0x08, (uint32_t)(end >> 10));
        } else {
            put32(s, 0x04, 0xffffffffu);
            put32(s, 0x08, 0xffffffffu);
            put64(s, 0x0f, start);
            put64(s, 0x17, end);
        }
        put16(s, 0x0c, 0x1000);
        put8(s, 0x0e, 1); /* partition width */
        emit(&b, s);
    }

    /* Type 32: system boot information (7.33): no errors. */
    begin(s, 32, 0x0b, 0x2000);
    emit(&b, s);

    /* Type 127: end of table (7.45). */
    begin(s, 127, 0x04, 0x7f00);
    emit(&b, s);
    free(s);

    if (b.err) {
        free(b.p);
        return b.err;
    }

    uint8_t *ep = calloc(1, SMBIOS3_ANCHOR_LEN);
    if (!ep) {
        free(b.p);
        return -ENOMEM;
    }
    memcpy(ep, "_SM3_", 5);
    ep[0x06] = SMBIOS3_ANCHOR_LEN;
    ep[0x07] = SMBIOS_MAJOR;
    ep[0x08] = SMBIOS_MINOR;
    ep[0x09] = 0; /* docrev */
    ep[0x0a] = 1; /* entry point revision 3.0 */
    uint32_t max = (uint32_t)b.len;
    memcpy(&ep[0x0c], &max, 4); /* little-endian host (x86) */
    /* 0x10: table address, filled in by the firmware that places the table. */
    uint8_t sum = 0;
    for (unsigned i = 0; i < SMBIOS3_ANCHOR_LEN; i++)
        sum = (uint8_t)(sum + ep[i]);
    ep[0x05] = (uint8_t)(0x100 - sum);

    out->anchor = ep;
    out->anchor_len = SMBIOS3_ANCHOR_LEN;
    out->tables = b.p;
    out->tables_len = b.len;
    return 0;
}

void smbios_blobs_free(struct smbios_blobs *b)
{
    free(b->anchor);
    free(b->tables);
    memset(b, 0, sizeof(*b));
}
