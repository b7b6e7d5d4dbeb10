/*
 * The qcow2 on-disk format (QEMU docs/interop/qcow2.txt, versions 2 and 3):
 * header layout, feature bits, table entry bits, and the header parser.
 * All fields on disk are big-endian.
 */
#ifndef KRUNKIT_BLOCK_QCOW2_FORMAT_H
#define KRUNKIT_BLOCK_QCOW2_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define QCOW2_MAGIC 0x514649fbu /* "QFI\xfb" */
#define QCOW2_V2_HEADER_LEN 72u
#define QCOW2_V3_HEADER_LEN 104u
#define QCOW2_MIN_CLUSTER_BITS 9u
#define QCOW2_MAX_CLUSTER_BITS 21u
#define QCOW2_MAX_BACKING_NAME 1023u
/* QEMU's limits: anything larger is refused as hostile. */
#define QCOW2_MAX_L1_BYTES (32u << 20)
#define QCOW2_MAX_REFTABLE_BYTES (8u << 20)
#define QCOW2_MAX_SNAPSHOTS 65536u
/*
 * Ours: header extensions are read in place (nothing is allocated for
 * them) but a header of thousands of them, or one claiming megabytes, is
 * not an image QEMU writes. The feature name table of every known feature
 * is under 1 KiB.
 */
#define QCOW2_MAX_EXTENSIONS 64u
#define QCOW2_MAX_EXT_BYTES 65536u

/* Header field offsets. */
#define QCOW2_OFF_REFTABLE 48u /* refcount_table_offset, then _clusters */
#define QCOW2_OFF_INCOMPAT 72u
#define QCOW2_OFF_AUTOCLEAR 88u

#define QCOW2_INCOMPAT_DIRTY (1ull << 0)
#define QCOW2_INCOMPAT_CORRUPT (1ull << 1)
#define QCOW2_INCOMPAT_DATA_FILE (1ull << 2)
#define QCOW2_INCOMPAT_COMPRESSION (1ull << 3)
#define QCOW2_INCOMPAT_EXTL2 (1ull << 4)
#define QCOW2_COMPAT_LAZY_REFCOUNTS (1ull << 0)

#define QCOW2_EXT_END 0x00000000u
#define QCOW2_EXT_BACKING_FORMAT 0xe2792acau
#define QCOW2_EXT_FEATURE_TABLE 0x6803f857u
#define QCOW2_EXT_BITMAPS 0x23852875u
#define QCOW2_EXT_CRYPTO 0x0537be77u
#define QCOW2_EXT_DATA_FILE 0x44415441u

/* L1 and L2 entries. */
#define QCOW2_OFLAG_COPIED (1ull << 63) /* refcount is exactly 1: write in place */
#define QCOW2_OFLAG_COMPRESSED (1ull << 62)
#define QCOW2_OFLAG_ZERO (1ull << 0) /* v3: reads as zeroes */
#define QCOW2_OFFSET_MASK 0x00fffffffffffe00ull
#define QCOW2_L1_RESERVED 0x7f000000000001ffull
#define QCOW2_L2_STD_RESERVED 0x3f000000000001feull

enum qcow2_backing_fmt { QCOW2_BACKING_PROBE = -1, QCOW2_BACKING_RAW = 0, QCOW2_BACKING_QCOW2 = 1 };

struct qcow2_header {
    uint32_t version;
    uint32_t header_length;
    uint32_t cluster_bits;
    uint64_t size; /* virtual */
    uint32_t l1_size;
    uint64_t l1_table_offset;
    uint64_t refcount_table_offset;
    uint32_t refcount_table_clusters;
    uint32_t refcount_order;
    uint32_t nb_snapshots;
    uint64_t incompatible_features;
    uint64_t compatible_features;
    uint64_t autoclear_features;
    bool has_backing;
    char backing_file[QCOW2_MAX_BACKING_NAME + 1];
    int backing_fmt; /* enum qcow2_backing_fmt */
};

/*
 * Parses and validates the header in buf (the first min(file size, 2 MiB)
 * bytes of the file) against the file size. Refuses, with a log_error
 * naming `name`, anything this driver cannot handle safely: bad magic or
 * version, encryption, unknown or unsupported incompatible features, a
 * corrupt image opened for writing, internal snapshots opened for
 * writing, tables outside the file or overlapping each other, sizes past
 * QEMU's limits or ours (header extensions, see docs/qcow2.md "Limits"). Returns 0 or -errno
 * (-EINVAL, -ENOTSUP, -EROFS).
 */
int qcow2_parse_header(const uint8_t *buf, size_t len, uint64_t file_size, const char *name,
                       bool readonly, struct qcow2_header *h);

#endif
