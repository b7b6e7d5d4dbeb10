/*
 * ACPI Machine Language emitter (ACPI 6.4 chapter 20 for the grammar,
 * 6.4.2 and 6.4.3 for resource descriptors).
 *
 * Objects with a PkgLength (scopes, devices, methods, packages, buffers) are
 * emitted body first: *_begin() writes the opcode and remembers where the
 * PkgLength goes, aml_end() measures the body and inserts the encoded length
 * there. Nested objects close before their parents, so an insertion never
 * moves a mark that is still open.
 */
#include "arch/x86/aml.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum {
    AML_OP_ZERO = 0x00,
    AML_OP_ONE = 0x01,
    AML_OP_NAME = 0x08,
    AML_PREFIX_BYTE = 0x0a,
    AML_PREFIX_WORD = 0x0b,
    AML_PREFIX_DWORD = 0x0c,
    AML_PREFIX_STRING = 0x0d,
    AML_PREFIX_QWORD = 0x0e,
    AML_OP_SCOPE = 0x10,
    AML_OP_BUFFER = 0x11,
    AML_OP_PACKAGE = 0x12,
    AML_OP_METHOD = 0x14,
    AML_PREFIX_DUAL_NAME = 0x2e,
    AML_PREFIX_MULTI_NAME = 0x2f,
    AML_PREFIX_EXT_OP = 0x5b,
    AML_EXT_OP_DEVICE = 0x82,
    AML_CHAR_ROOT = 0x5c,
    AML_CHAR_PARENT = 0x5e,
    AML_OP_RETURN = 0xa4,
};

/* Small and large resource item tags (6.4.2, 6.4.3). */
enum {
    AML_RES_IRQ_NOFLAGS = 0x22,
    AML_RES_IO = 0x47,
    AML_RES_END = 0x79,
    AML_RES_DWORD = 0x87,
    AML_RES_WORD = 0x88,
    AML_RES_QWORD = 0x8a,
};

/* General flags of an address space descriptor: producer, positive decode, _MIF, _MAF. */
#define AML_ADDR_FIXED_WINDOW 0x0cu

enum aml_kind {
    AML_KIND_PKG, /* PkgLength only: scope, device, method, package */
    AML_KIND_BUFFER,
};

/* A name has at most this many segments here; deeper paths are a caller bug. */
#define AML_NAME_MAX_SEGS 16

static void aml_fail(struct aml *a, int err)
{
    if (!a->err)
        a->err = err;
}

void aml_init(struct aml *a)
{
    memset(a, 0, sizeof(*a));
}

void aml_release(struct aml *a)
{
    free(a->buf);
    aml_init(a);
}

int aml_status(const struct aml *a)
{
    return a->err;
}

static bool aml_reserve(struct aml *a, size_t extra)
{
    if (a->err)
        return false;
    if (extra > AML_PKGLEN_MAX || a->len + extra > AML_PKGLEN_MAX) {
        aml_fail(a, -E2BIG);
        return false;
    }
    if (a->len + extra <= a->cap)
        return true;
    size_t cap = a->cap ? a->cap : 256;
    while (cap < a->len + extra)
        cap *= 2;
    uint8_t *p = realloc(a->buf, cap);
    if (!p) {
        aml_fail(a, -ENOMEM);
        return false;
    }
    a->buf = p;
    a->cap = cap;
    return true;
}

void aml_raw(struct aml *a, const void *p, size_t n)
{
    if (n == 0 || !aml_reserve(a, n))
        return;
    memcpy(a->buf + a->len, p, n);
    a->len += n;
}

void aml_byte(struct aml *a, uint8_t b)
{
    aml_raw(a, &b, 1);
}

static void aml_le(struct aml *a, uint64_t v, unsigned nbytes)
{
    uint8_t b[8];
    for (unsigned i = 0; i < nbytes; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    aml_raw(a, b, nbytes);
}

static void aml_insert(struct aml *a, size_t pos, const uint8_t *p, size_t n)
{
    if (pos > a->len) {
        aml_fail(a, -EINVAL);
        return;
    }
    if (!aml_reserve(a, n))
        return;
    memmove(a->buf + pos + n, a->buf + pos, a->len - pos);
    memcpy(a->buf + pos, p, n);
    a->len += n;
}

int aml_pkglen_encode(size_t body_len, uint8_t out[4])
{
    /* The encoded length includes the PkgLength bytes themselves (20.2.4). */
    if (body_len + 1 <= 0x3f) {
        out[0] = (uint8_t)(body_len + 1);
        return 1;
    }
    for (unsigned extra = 1; extra <= 3; extra++) {
        size_t total = body_len + 1 + extra;
        if (total >> (4 + 8 * extra))
            continue;
        out[0] = (uint8_t)((extra << 6) | (total & 0x0f));
        for (unsigned i = 0; i < extra; i++)
            out[1 + i] = (uint8_t)(total >> (4 + 8 * i));
        return (int)(1 + extra);
    }
    return -E2BIG;
}

int aml_pkglen_decode(const uint8_t *p, size_t avail, uint32_t *value)
{
    if (avail < 1)
        return -EINVAL;
    unsigned extra = p[0] >> 6;
    if (extra == 0) {
        *value = p[0] & 0x3f;
        return 1;
    }
    /* Bits 4-5 of a multi-byte lead byte are reserved and must be zero. */
    if ((p[0] & 0x30) || avail < 1 + extra)
        return -EINVAL;
    uint32_t v = p[0] & 0x0f;
    for (unsigned i = 0; i < extra; i++)
        v |= (uint32_t)p[1 + i] << (4 + 8 * i);
    *value = v;
    return (int)(1 + extra);
}

static bool aml_lead_name_char(char c)
{
    return (c >= 'A' && c <= 'Z') || c == '_';
}

static bool aml_name_char(char c)
{
    return aml_lead_name_char(c) || (c >= '0' && c <= '9');
}

void aml_namestring(struct aml *a, const char *path)
{
    if (a->err)
        return;
    if (!path) {
        aml_fail(a, -EINVAL);
        return;
    }
    uint8_t prefix[1 + 255];
    size_t nprefix = 0;
    if (*path == '\\') {
        prefix[nprefix++] = AML_CHAR_ROOT;
        path++;
    } else {
        while (*path == '^' && nprefix < sizeof(prefix)) {
            prefix[nprefix++] = AML_CHAR_PARENT;
            path++;
        }
    }

    char segs[AML_NAME_MAX_SEGS][4];
    unsigned nsegs = 0;
    while (*path) {
        if (nsegs == AML_NAME_MAX_SEGS) {
            aml_fail(a, -EINVAL);
            return;
        }
        size_t n = 0;
        while (path[n] && path[n] != '.')
            n++;
        if (n == 0 || n > 4 || !aml_lead_name_char(path[0])) {
            aml_fail(a, -EINVAL);
            return;
        }
        for (size_t i = 0; i < 4; i++) {
            char c = i < n ? path[i] : '_';
            if (!aml_name_char(c)) {
                aml_fail(a, -EINVAL);
                return;
            }
            segs[nsegs][i] = c;
        }
        nsegs++;
        path += n;
        if (*path == '.') {
            path++;
            if (!*path) {
                aml_fail(a, -EINVAL);
                return;
            }
        }
    }

    aml_raw(a, prefix, nprefix);
    if (nsegs == 0) {
        aml_byte(a, 0x00); /* NullName */
        return;
    }
    if (nsegs == 2) {
        aml_byte(a, AML_PREFIX_DUAL_NAME);
    } else if (nsegs > 2) {
        aml_byte(a, AML_PREFIX_MULTI_NAME);
        aml_byte(a, (uint8_t)nsegs);
    }
    aml_raw(a, segs, 4 * (size_t)nsegs);
}

void aml_integer(struct aml *a, uint64_t v)
{
    if (v == 0) {
        aml_byte(a, AML_OP_ZERO);
    } else if (v == 1) {
        aml_byte(a, AML_OP_ONE);
    } else if (v <= 0xff) {
        aml_byte(a, AML_PREFIX_BYTE);
        aml_le(a, v, 1);
    } else if (v <= 0xffff) {
        aml_byte(a, AML_PREFIX_WORD);
        aml_le(a, v, 2);
    } else if (v <= 0xffffffffu) {
        aml_byte(a, AML_PREFIX_DWORD);
        aml_le(a, v, 4);
    } else {
        aml_byte(a, AML_PREFIX_QWORD);
        aml_le(a, v, 8);
    }
}

void aml_string(struct aml *a, const char *s)
{
    if (a->err)
        return;
    if (!s) {
        aml_fail(a, -EINVAL);
        return;
    }
    /* AsciiCharList: 0x01-0x7F, NUL terminated. */
    for (const char *c = s; *c; c++) {
        if ((unsigned char)*c > 0x7f) {
            aml_fail(a, -EINVAL);
            return;
        }
    }
    aml_byte(a, AML_PREFIX_STRING);
    aml_raw(a, s, strlen(s) + 1);
}

static int aml_hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int64_t aml_eisaid_value(const char *id)
{
    /* Three letters of 5 bits, four hex digits; stored big-endian (19.6.35). */
    if (!id || strlen(id) != 7)
        return -EINVAL;
    uint32_t v = 0;
    for (int i = 0; i < 3; i++) {
        if (id[i] < 'A' || id[i] > 'Z')
            return -EINVAL;
        v = (v << 5) | (uint32_t)(id[i] - '@');
    }
    for (int i = 3; i < 7; i++) {
        int d = aml_hex_digit(id[i]);
        if (d < 0)
            return -EINVAL;
        v = (v << 4) | (uint32_t)d;
    }
    return (int64_t)__builtin_bswap32(v);
}

void aml_eisaid(struct aml *a, const char *id)
{
    int64_t v = aml_eisaid_value(id);
    if (v < 0) {
        aml_fail(a, (int)v);
        return;
    }
    /* Always a DWordConst, as ASL's EISAID() compiles. */
    aml_byte(a, AML_PREFIX_DWORD);
    aml_le(a, (uint64_t)v, 4);
}

void aml_name_decl(struct aml *a, const char *name)
{
    aml_byte(a, AML_OP_NAME);
    aml_namestring(a, name);
}

void aml_return(struct aml *a)
{
    aml_byte(a, AML_OP_RETURN);
}

static struct aml_mark aml_open(struct aml *a, int kind)
{
    return (struct aml_mark){.pos = a->len, .kind = kind};
}

struct aml_mark aml_scope_begin(struct aml *a, const char *name)
{
    aml_byte(a, AML_OP_SCOPE);
    struct aml_mark m = aml_open(a, AML_KIND_PKG);
    aml_namestring(a, name);
    return m;
}

struct aml_mark aml_device_begin(struct aml *a, const char *name)
{
    aml_byte(a, AML_PREFIX_EXT_OP);
    aml_byte(a, AML_EXT_OP_DEVICE);
    struct aml_mark m = aml_open(a, AML_KIND_PKG);
    aml_namestring(a, name);
    return m;
}

struct aml_mark aml_method_begin(struct aml *a, const char *name, unsigned nargs, bool serialized)
{
    aml_byte(a, AML_OP_METHOD);
    struct aml_mark m = aml_open(a, AML_KIND_PKG);
    aml_namestring(a, name);
    if (nargs > 7)
        aml_fail(a, -EINVAL);
    /* MethodFlags: ArgCount in bits 0-2, SerializeFlag bit 3, SyncLevel 0. */
    aml_byte(a, (uint8_t)((nargs & 7) | (serialized ? 0x08 : 0)));
    return m;
}

struct aml_mark aml_package_begin(struct aml *a, unsigned nelems)
{
    aml_byte(a, AML_OP_PACKAGE);
    struct aml_mark m = aml_open(a, AML_KIND_PKG);
    if (nelems > 0xff)
        aml_fail(a, -EINVAL); /* would need VarPackageOp */
    aml_byte(a, (uint8_t)nelems);
    return m;
}

struct aml_mark aml_buffer_begin(struct aml *a)
{
    aml_byte(a, AML_OP_BUFFER);
    return aml_open(a, AML_KIND_BUFFER);
}

void aml_end(struct aml *a, struct aml_mark m)
{
    if (a->err)
        return;
    if (m.pos > a->len) {
        aml_fail(a, -EINVAL);
        return;
    }
    size_t body = a->len - m.pos;
    uint8_t head[4 + 9];
    size_t nhead = 0;
    if (m.kind == AML_KIND_BUFFER) {
        /* BufferSize is a TermArg inside the package: encode it, then measure. */
        struct aml size = {0};
        aml_integer(&size, body);
        if (size.err) {
            aml_fail(a, size.err);
            aml_release(&size);
            return;
        }
        int n = aml_pkglen_encode(body + size.len, head);
        if (n < 0) {
            aml_release(&size);
            aml_fail(a, n);
            return;
        }
        memcpy(head + n, size.buf, size.len);
        nhead = (size_t)n + size.len;
        aml_release(&size);
    } else {
        int n = aml_pkglen_encode(body, head);
        if (n < 0) {
            aml_fail(a, n);
            return;
        }
        nhead = (size_t)n;
    }
    aml_insert(a, m.pos, head, nhead);
}

struct aml_mark aml_restemplate_begin(struct aml *a)
{
    return aml_buffer_begin(a);
}

void aml_restemplate_end(struct aml *a, struct aml_mark m)
{
    /* End Tag with checksum 0: "treated as if the checksum operation succeeded". */
    aml_byte(a, AML_RES_END);
    aml_byte(a, 0x00);
    aml_end(a, m);
}

void aml_res_io(struct aml *a, uint16_t min, uint16_t max, uint8_t align, uint8_t len)
{
    if (max < min) {
        aml_fail(a, -EINVAL);
        return;
    }
    aml_byte(a, AML_RES_IO);
    aml_byte(a, 0x01); /* decodes 16 address bits */
    aml_le(a, min, 2);
    aml_le(a, max, 2);
    aml_byte(a, align);
    aml_byte(a, len);
}

void aml_res_irq_noflags(struct aml *a, uint16_t mask)
{
    aml_byte(a, AML_RES_IRQ_NOFLAGS);
    aml_le(a, mask, 2);
}

/* The common body of Word/DWord/QWord address space descriptors (6.4.3.5.1-3). */
static void aml_res_addr(struct aml *a, uint8_t tag, unsigned width, enum aml_addr_space type,
                         uint8_t type_flags, uint64_t min, uint64_t max)
{
    uint64_t limit = width == 8 ? UINT64_MAX : (1ull << (8 * width)) - 1;
    if (max < min || max > limit || (max - min) >= limit) {
        aml_fail(a, -EINVAL);
        return;
    }
    aml_byte(a, tag);
    aml_le(a, 3 + 5 * width, 2); /* length of what follows the 3-byte header */
    aml_byte(a, (uint8_t)type);
    aml_byte(a, AML_ADDR_FIXED_WINDOW);
    aml_byte(a, type_flags);
    aml_le(a, 0, width); /* granularity */
    aml_le(a, min, width);
    aml_le(a, max, width);
    aml_le(a, 0, width); /* translation offset */
    aml_le(a, max - min + 1, width);
}

void aml_res_word(struct aml *a, enum aml_addr_space type, uint8_t type_flags, uint16_t min,
                  uint16_t max)
{
    aml_res_addr(a, AML_RES_WORD, 2, type, type_flags, min, max);
}

void aml_res_dword(struct aml *a, enum aml_addr_space type, uint8_t type_flags, uint32_t min,
                   uint32_t max)
{
    aml_res_addr(a, AML_RES_DWORD, 4, type, type_flags, min, max);
}

void aml_res_qword(struct aml *a, enum aml_addr_space type, uint8_t type_flags, uint64_t min,
                   uint64_t max)
{
    aml_res_addr(a, AML_RES_QWORD, 8, type, type_flags, min, max);
}
