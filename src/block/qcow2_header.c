/*
 * qcow2 header and header-extension parsing (qcow2.txt, "Header" and
 * "Header extensions"). Everything read here is untrusted: each field is
 * range-checked against the spec, QEMU's limits and the file size before
 * the driver uses it.
 */
#include "block/qcow2_format.h"

#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/log.h"

static uint32_t get32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return be32toh(v);
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return be64toh(v);
}

struct feature_names {
    const uint8_t *table; /* 48-byte entries: type, bit, name[46] */
    size_t count;
};

/* Appends the names of the bits set in `bits` (type 0 = incompatible) to out. */
static void describe_features(const struct feature_names *fn, int type, uint64_t bits, char *out,
                              size_t outlen)
{
    size_t used = 0;

    out[0] = '\0';
    for (int bit = 0; bit < 64; bit++) {
        if (!(bits & (1ull << bit)))
            continue;
        char name[47] = "";
        for (size_t i = 0; i < fn->count; i++) {
            const uint8_t *e = fn->table + i * 48;
            if (e[0] == type && e[1] == bit) {
                memcpy(name, e + 2, 46);
                name[46] = '\0';
                for (char *c = name; *c; c++)
                    if (*c < 0x20 || *c > 0x7e)
                        *c = '?';
                break;
            }
        }
        int n = snprintf(out + used, outlen - used, "%sbit %d%s%s%s", used ? ", " : "", bit,
                         name[0] ? " (" : "", name, name[0] ? ")" : "");
        if (n < 0 || (size_t)n >= outlen - used)
            break;
        used += (size_t)n;
    }
}

static bool ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
    return alen && blen && a < b + blen && b < a + alen;
}

static int parse_extensions(const uint8_t *buf, size_t start, size_t end, const char *name,
                            struct qcow2_header *h, struct feature_names *fn, bool *has_data_file)
{
    size_t pos = start;
    unsigned count = 0;

    while (pos + 8 <= end) {
        uint32_t type = get32(buf + pos);
        uint32_t len = get32(buf + pos + 4);
        pos += 8;
        if (type == QCOW2_EXT_END)
            return 0;
        if (++count > QCOW2_MAX_EXTENSIONS) {
            log_error("%s: qcow2 header has more than %u header extensions (the limit)", name,
                      QCOW2_MAX_EXTENSIONS);
            return -EINVAL;
        }
        if (len > QCOW2_MAX_EXT_BYTES) {
            log_error("%s: qcow2 header extension 0x%08x is %u bytes, more than the limit of %u",
                      name, type, len, QCOW2_MAX_EXT_BYTES);
            return -EINVAL;
        }
        if (len > end - pos) {
            log_error("%s: qcow2 header extension 0x%08x (%u bytes) runs past the header "
                      "cluster",
                      name, type, len);
            return -EINVAL;
        }
        const uint8_t *data = buf + pos;
        switch (type) {
        case QCOW2_EXT_BACKING_FORMAT: {
            char fmt[32];
            if (len >= sizeof(fmt)) {
                log_error("%s: qcow2 backing format name too long (%u bytes)", name, len);
                return -EINVAL;
            }
            memcpy(fmt, data, len);
            fmt[len] = '\0';
            if (strcmp(fmt, "raw") == 0) {
                h->backing_fmt = QCOW2_BACKING_RAW;
            } else if (strcmp(fmt, "qcow2") == 0) {
                h->backing_fmt = QCOW2_BACKING_QCOW2;
            } else {
                for (char *c = fmt; *c; c++)
                    if (*c < 0x20 || *c > 0x7e)
                        *c = '?';
                log_error("%s: backing file format \"%s\" is not supported (raw and qcow2 are)",
                          name, fmt);
                return -ENOTSUP;
            }
            break;
        }
        case QCOW2_EXT_FEATURE_TABLE:
            fn->table = data;
            fn->count = len / 48;
            break;
        case QCOW2_EXT_DATA_FILE:
            *has_data_file = true;
            break;
        default:
            /* Bitmaps, encryption pointer, unknown: nothing we need to read. */
            break;
        }
        size_t padded = ((size_t)len + 7) & ~(size_t)7;
        if (padded > end - pos)
            return 0;
        pos += padded;
    }
    return 0;
}

int qcow2_parse_header(const uint8_t *buf, size_t len, uint64_t file_size, const char *name,
                       bool readonly, struct qcow2_header *h)
{
    struct feature_names fn = {0};
    bool has_data_file = false;
    char feat[512];
    int r;

    memset(h, 0, sizeof(*h));
    h->backing_fmt = QCOW2_BACKING_PROBE;
    if (len > file_size)
        len = (size_t)file_size;
    if (len < QCOW2_V2_HEADER_LEN) {
        log_error("%s: file too short for a qcow2 header (%zu bytes)", name, len);
        return -EINVAL;
    }
    if (get32(buf) != QCOW2_MAGIC) {
        log_error("%s: not a qcow2 image (bad magic)", name);
        return -EINVAL;
    }
    h->version = get32(buf + 4);
    if (h->version != 2 && h->version != 3) {
        log_error("%s: qcow2 version %u is not supported (2 and 3 are)", name, h->version);
        return -ENOTSUP;
    }
    uint64_t backing_offset = get64(buf + 8);
    uint32_t backing_size = get32(buf + 16);
    h->cluster_bits = get32(buf + 20);
    h->size = get64(buf + 24);
    uint32_t crypt = get32(buf + 32);
    h->l1_size = get32(buf + 36);
    h->l1_table_offset = get64(buf + 40);
    h->refcount_table_offset = get64(buf + 48);
    h->refcount_table_clusters = get32(buf + 56);
    h->nb_snapshots = get32(buf + 60);

    if (h->cluster_bits < QCOW2_MIN_CLUSTER_BITS || h->cluster_bits > QCOW2_MAX_CLUSTER_BITS) {
        log_error("%s: qcow2 cluster size 2^%u is out of range (512 bytes to 2 MiB)", name,
                  h->cluster_bits);
        return -EINVAL;
    }
    uint64_t cs = 1ull << h->cluster_bits;

    if (h->version == 2) {
        h->header_length = QCOW2_V2_HEADER_LEN;
        h->refcount_order = 4;
    } else {
        if (len < QCOW2_V3_HEADER_LEN) {
            log_error("%s: file too short for a qcow2 v3 header", name);
            return -EINVAL;
        }
        h->incompatible_features = get64(buf + 72);
        h->compatible_features = get64(buf + 80);
        h->autoclear_features = get64(buf + 88);
        h->refcount_order = get32(buf + 96);
        h->header_length = get32(buf + 100);
        if (h->header_length < QCOW2_V3_HEADER_LEN || h->header_length > cs ||
            h->header_length > len || (h->header_length & 7)) {
            log_error("%s: qcow2 header length %u is invalid", name, h->header_length);
            return -EINVAL;
        }
        if (h->refcount_order > 6) {
            log_error("%s: qcow2 refcount width 2^%u bits is invalid (at most 64)", name,
                      h->refcount_order);
            return -EINVAL;
        }
    }
    if (crypt != 0) {
        log_error("%s: encrypted qcow2 images are not supported", name);
        return -ENOTSUP;
    }

    /* Header extensions end where the backing file name starts, or at the cluster end. */
    size_t ext_end = len < cs ? len : (size_t)cs;
    if (backing_offset) {
        if (backing_size == 0 || backing_size > QCOW2_MAX_BACKING_NAME ||
            backing_offset < h->header_length || backing_offset > cs ||
            backing_size > cs - backing_offset || backing_offset + backing_size > len) {
            log_error("%s: qcow2 backing file name (offset %llu, %u bytes) is outside the "
                      "header cluster or too long",
                      name, (unsigned long long)backing_offset, backing_size);
            return -EINVAL;
        }
        if (backing_offset < ext_end)
            ext_end = (size_t)backing_offset;
        memcpy(h->backing_file, buf + backing_offset, backing_size);
        h->backing_file[backing_size] = '\0';
        if (strlen(h->backing_file) != backing_size) {
            log_error("%s: qcow2 backing file name contains a NUL byte", name);
            return -EINVAL;
        }
        h->has_backing = true;
    }
    r = parse_extensions(buf, h->header_length, ext_end, name, h, &fn, &has_data_file);
    if (r < 0)
        return r;

    /* Incompatible features: the ones we cannot honour refuse the open. */
    uint64_t known = QCOW2_INCOMPAT_DIRTY | QCOW2_INCOMPAT_CORRUPT | QCOW2_INCOMPAT_COMPRESSION;
    uint64_t unsupported = h->incompatible_features & ~known;
    if (h->incompatible_features & QCOW2_INCOMPAT_COMPRESSION) {
        if (h->header_length <= QCOW2_V3_HEADER_LEN) {
            log_error("%s: qcow2 compression type bit set without a compression type field", name);
            return -EINVAL;
        }
        if (buf[104] != 0) {
            log_error("%s: qcow2 compression type %u is not supported (only deflate)", name,
                      buf[104]);
            return -ENOTSUP;
        }
    }
    if (unsupported) {
        describe_features(&fn, 0, unsupported, feat, sizeof(feat));
        log_error("%s: qcow2 image uses unsupported incompatible features: %s%s", name, feat,
                  (unsupported & (QCOW2_INCOMPAT_DATA_FILE | QCOW2_INCOMPAT_EXTL2))
                      ? " (external data files and extended L2 entries are not supported)"
                      : "");
        return -ENOTSUP;
    }
    (void)has_data_file;
    if (!readonly && (h->incompatible_features & QCOW2_INCOMPAT_CORRUPT)) {
        log_error("%s: qcow2 image is marked corrupt; it can only be opened read-only "
                  "(repair it with qemu-img check -r all)",
                  name);
        return -EROFS;
    }
    if (h->nb_snapshots > QCOW2_MAX_SNAPSHOTS) {
        log_error("%s: qcow2 image claims %u internal snapshots", name, h->nb_snapshots);
        return -EINVAL;
    }
    if (!readonly && h->nb_snapshots) {
        log_error("%s: qcow2 image has %u internal snapshots; such images can only be opened "
                  "read-only",
                  name, h->nb_snapshots);
        return -EROFS;
    }

    /* Virtual size and the L1 table that must cover it. */
    uint32_t l2_bits = h->cluster_bits - 3;
    uint32_t l1_shift = h->cluster_bits + l2_bits;
    if (h->size > (uint64_t)INT64_MAX - cs) {
        log_error("%s: qcow2 virtual size %llu is too large", name, (unsigned long long)h->size);
        return -EINVAL;
    }
    uint64_t l1_needed = (h->size + (1ull << l1_shift) - 1) >> l1_shift;
    if ((uint64_t)h->l1_size * 8 > QCOW2_MAX_L1_BYTES || l1_needed > h->l1_size) {
        log_error("%s: qcow2 L1 table size %u does not fit the virtual size %llu (needs %llu, "
                  "at most %u)",
                  name, h->l1_size, (unsigned long long)h->size, (unsigned long long)l1_needed,
                  QCOW2_MAX_L1_BYTES / 8);
        return -EINVAL;
    }
    uint64_t l1_bytes = (uint64_t)h->l1_size * 8;
    if (l1_bytes && ((h->l1_table_offset & (cs - 1)) || h->l1_table_offset < cs ||
                     h->l1_table_offset > file_size || l1_bytes > file_size - h->l1_table_offset)) {
        log_error("%s: qcow2 L1 table (offset %llu, %llu bytes) is misaligned or outside the "
                  "file (%llu bytes)",
                  name, (unsigned long long)h->l1_table_offset, (unsigned long long)l1_bytes,
                  (unsigned long long)file_size);
        return -EINVAL;
    }

    /* Refcount table. */
    uint64_t rt_bytes = (uint64_t)h->refcount_table_clusters << h->cluster_bits;
    if (h->refcount_table_clusters == 0 || rt_bytes > QCOW2_MAX_REFTABLE_BYTES ||
        (h->refcount_table_offset & (cs - 1)) || h->refcount_table_offset < cs ||
        h->refcount_table_offset > file_size || rt_bytes > file_size - h->refcount_table_offset) {
        log_error("%s: qcow2 refcount table (offset %llu, %u clusters) is empty, too large, "
                  "misaligned or outside the file (%llu bytes)",
                  name, (unsigned long long)h->refcount_table_offset, h->refcount_table_clusters,
                  (unsigned long long)file_size);
        return -EINVAL;
    }
    uint64_t l1_span = (l1_bytes + cs - 1) & ~(cs - 1);
    if (ranges_overlap(h->l1_table_offset, l1_span, h->refcount_table_offset, rt_bytes)) {
        log_error("%s: qcow2 L1 table and refcount table overlap", name);
        return -EINVAL;
    }
    return 0;
}
