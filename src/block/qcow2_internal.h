/*
 * State of an open qcow2 image, shared by the qcow2 driver's files:
 * qcow2.c (mapping and I/O), qcow2_refcount.c (refcounts and cluster
 * allocation), qcow2_cache.c (bounded L2 / refcount block caches).
 */
#ifndef KRUNKIT_BLOCK_QCOW2_INTERNAL_H
#define KRUNKIT_BLOCK_QCOW2_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "block/qcow2_format.h"

struct blk_image;

/* Deferred frees held between flushes (16 bytes each: 1 MiB). */
#define QCOW2_MAX_PENDING_FREE 65536u
/*
 * Dirty images (lazy refcounts, writer killed) are repaired on a
 * read-write open only up to this many clusters in the file (a 32 MiB
 * count table; 512 GiB of file at 64 KiB clusters).
 */
#define QCOW2_MAX_REPAIR_CLUSTERS (1ull << 23)

struct qcow2_cache_entry {
    uint64_t offset; /* host offset of the table; 0: slot empty */
    uint64_t *data;  /* one cluster, in disk (big-endian) order */
    uint64_t last_use;
    unsigned pins;
    bool dirty;
};

struct qcow2_cache {
    struct qcow2_cache_entry *entries;
    unsigned count;
    uint64_t clock;
};

struct qcow2 {
    pthread_mutex_t lock;        /* everything below, and the file's metadata */
    pthread_rwlock_t io_barrier; /* held for reading by I/O running without `lock` */
    struct blk_image *img;
    int fd;
    const char *name;
    bool readonly;
    struct qcow2_header h;

    uint32_t cluster_bits;
    uint64_t cluster_size;
    uint32_t l2_bits; /* log2 of entries per L2 table */

    uint64_t *l1; /* host order */
    bool l1_dirty;

    uint64_t *reftable; /* host order */
    uint64_t reftable_entries;
    bool reftable_dirty;
    uint32_t refblock_bits; /* log2 of refcounts per refcount block */
    uint64_t refcount_max;

    struct qcow2_cache l2_cache;
    struct qcow2_cache refblock_cache;

    uint64_t host_end;  /* cluster-aligned end of the used file */
    uint64_t free_hint; /* no free cluster below this index */

    /*
     * Clusters to dereference once the tables no longer pointing to them
     * are durable; at most QCOW2_MAX_PENDING_FREE runs (a flush empties it).
     */
    struct qcow2_free {
        uint64_t offset, len;
    } * pending_free;
    size_t n_pending_free, cap_pending_free;
    bool data_written; /* since the last fdatasync */

    /* Compressed entries: offset bits and sector count field (qcow2.txt, "Compressed"). */
    uint32_t csize_shift;
    uint64_t csize_mask;
    uint64_t coffset_mask;
    uint8_t *cbuf;         /* compressed input, 2 clusters */
    uint8_t *ccache;       /* last decompressed cluster */
    uint64_t ccache_entry; /* its L2 entry; 0: none */

    uint8_t *cow_buf; /* one cluster for copy-on-write */

    struct blk_image *backing;
    uint64_t backing_size;
};

/* qcow2_cache.c */
int qcow2_cache_init(struct qcow2_cache *c, unsigned count, uint64_t cluster_size);
void qcow2_cache_fini(struct qcow2_cache *c);
/*
 * Returns the pinned table at host offset `offset` (read from the file, or
 * zero-filled and dirty when `fresh`). Evicting a dirty table calls
 * qcow2_flush_metadata when is_l2, else writes it.
 */
int qcow2_cache_get(struct qcow2 *q, struct qcow2_cache *c, uint64_t offset, bool fresh, bool is_l2,
                    uint64_t **table);
void qcow2_cache_put(struct qcow2_cache *c, uint64_t *table);
void qcow2_cache_mark_dirty(struct qcow2_cache *c, uint64_t *table);
/* Writes every dirty table; returns 0 or -errno. */
int qcow2_cache_write_dirty(struct qcow2 *q, struct qcow2_cache *c);
bool qcow2_cache_has_dirty(const struct qcow2_cache *c);
/* Forgets a table (freed cluster) without writing it. */
void qcow2_cache_discard(struct qcow2_cache *c, uint64_t offset);

/* qcow2_refcount.c */
int qcow2_refcount_get(struct qcow2 *q, uint64_t cluster_index, uint64_t *refcount);
/* Allocates n contiguous clusters with refcount 1; returns the host offset or -errno. */
int64_t qcow2_alloc_clusters(struct qcow2 *q, uint64_t n);
/* Dereferences host bytes [offset, offset+len) after the next metadata flush. */
int qcow2_free_later(struct qcow2 *q, uint64_t offset, uint64_t len);
/*
 * Makes metadata durable in crash-safe order: refcount increments, then
 * (after the data) L2 tables, then L1, then deferred frees.
 */
int qcow2_flush_metadata(struct qcow2 *q);
/* True when [offset, offset+len) overlaps the header, L1 or refcount table. */
bool qcow2_overlaps_fixed_metadata(const struct qcow2 *q, uint64_t offset, uint64_t len);
int qcow2_sync(struct qcow2 *q);
/*
 * Recounts every reference of a dirty image (lazy refcounts, not closed
 * cleanly), writes a fresh refcount table and blocks after the end of the
 * file, switches the header to them and clears the dirty bit, as QEMU does
 * when it opens such an image read-write. Call before any other access.
 */
int qcow2_rebuild_refcounts(struct qcow2 *q);

#endif
