/*
 * qcow2 refcounts and cluster allocation (qcow2.txt, "Host cluster
 * management"): refcount table and blocks of 1 to 64-bit entries, first-fit
 * allocation, growth of the refcount table, and the metadata flush whose
 * order keeps the image consistent across a crash (references only ever
 * point to clusters whose data and refcount are already on disk; freed
 * clusters are dereferenced only after nothing on disk points to them).
 */
#include "block/qcow2_internal.h"

#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block/block_driver.h"
#include "core/log.h"

static uint64_t refcount_read(const struct qcow2 *q, const void *block, uint64_t i)
{
    const uint8_t *b = block;
    switch (q->h.refcount_order) {
    case 0:
        return (b[i / 8] >> (i % 8)) & 1;
    case 1:
        return (b[i / 4] >> (2 * (i % 4))) & 3;
    case 2:
        return (b[i / 2] >> (4 * (i % 2))) & 15;
    case 3:
        return b[i];
    case 4: {
        uint16_t v;
        memcpy(&v, b + 2 * i, 2);
        return be16toh(v);
    }
    case 5: {
        uint32_t v;
        memcpy(&v, b + 4 * i, 4);
        return be32toh(v);
    }
    default: {
        uint64_t v;
        memcpy(&v, b + 8 * i, 8);
        return be64toh(v);
    }
    }
}

static void refcount_write(const struct qcow2 *q, void *block, uint64_t i, uint64_t value)
{
    uint8_t *b = block;
    switch (q->h.refcount_order) {
    case 0:
        b[i / 8] = (uint8_t)((b[i / 8] & ~(1u << (i % 8))) | (value << (i % 8)));
        break;
    case 1:
        b[i / 4] = (uint8_t)((b[i / 4] & ~(3u << (2 * (i % 4)))) | (value << (2 * (i % 4))));
        break;
    case 2:
        b[i / 2] = (uint8_t)((b[i / 2] & ~(15u << (4 * (i % 2)))) | (value << (4 * (i % 2))));
        break;
    case 3:
        b[i] = (uint8_t)value;
        break;
    case 4: {
        uint16_t v = htobe16((uint16_t)value);
        memcpy(b + 2 * i, &v, 2);
        break;
    }
    case 5: {
        uint32_t v = htobe32((uint32_t)value);
        memcpy(b + 4 * i, &v, 4);
        break;
    }
    default: {
        uint64_t v = htobe64(value);
        memcpy(b + 8 * i, &v, 8);
        break;
    }
    }
}

bool qcow2_overlaps_fixed_metadata(const struct qcow2 *q, uint64_t offset, uint64_t len)
{
    uint64_t cs = q->cluster_size;
    uint64_t l1_len = ((uint64_t)q->h.l1_size * 8 + cs - 1) & ~(cs - 1);
    uint64_t rt_len = (uint64_t)q->h.refcount_table_clusters << q->cluster_bits;

    if (offset < cs)
        return true;
    if (l1_len && offset < q->h.l1_table_offset + l1_len && q->h.l1_table_offset < offset + len)
        return true;
    return offset < q->h.refcount_table_offset + rt_len &&
           q->h.refcount_table_offset < offset + len;
}

/* The cached refcount block covering cluster `index`; NULL table when none exists. */
static int refblock_get(struct qcow2 *q, uint64_t index, uint64_t **table)
{
    uint64_t bi = index >> q->refblock_bits;

    *table = NULL;
    if (bi >= q->reftable_entries || q->reftable[bi] == 0)
        return 0;
    return qcow2_cache_get(q, &q->refblock_cache, q->reftable[bi], false, false, table);
}

int qcow2_refcount_get(struct qcow2 *q, uint64_t index, uint64_t *refcount)
{
    uint64_t *t;
    int r = refblock_get(q, index, &t);

    *refcount = 0;
    if (r < 0 || !t)
        return r;
    *refcount = refcount_read(q, t, index & ((1ull << q->refblock_bits) - 1));
    qcow2_cache_put(&q->refblock_cache, t);
    return 0;
}

/* Adds delta (+1 or -1) to the refcount of cluster `index`, whose block must exist. */
static int refcount_add(struct qcow2 *q, uint64_t index, int delta)
{
    uint64_t *t;
    int r = refblock_get(q, index, &t);

    if (r < 0)
        return r;
    if (!t) {
        log_error("%s: qcow2 cluster %llu has no refcount block", q->name,
                  (unsigned long long)index);
        return -EIO;
    }
    uint64_t i = index & ((1ull << q->refblock_bits) - 1);
    uint64_t v = refcount_read(q, t, i);
    if ((delta > 0 && v == q->refcount_max) || (delta < 0 && v == 0)) {
        log_error("%s: qcow2 refcount %s for cluster %llu (refcount %llu)", q->name,
                  delta > 0 ? "overflow" : "underflow", (unsigned long long)index,
                  (unsigned long long)v);
        qcow2_cache_put(&q->refblock_cache, t);
        return -EIO;
    }
    refcount_write(q, t, i, delta > 0 ? v + 1 : v - 1);
    qcow2_cache_mark_dirty(&q->refblock_cache, t);
    qcow2_cache_put(&q->refblock_cache, t);
    if (delta < 0 && v == 1 && index < q->free_hint)
        q->free_hint = index;
    return 0;
}

static int cluster_is_free(struct qcow2 *q, uint64_t index, bool *is_free)
{
    uint64_t rc;

    *is_free = false;
    if (index == 0 || qcow2_overlaps_fixed_metadata(q, index << q->cluster_bits, q->cluster_size))
        return 0;
    if ((index << q->cluster_bits) >= q->host_end) {
        *is_free = true;
        return 0;
    }
    int r = qcow2_refcount_get(q, index, &rc);
    if (r < 0)
        return r;
    *is_free = rc == 0;
    return 0;
}

static int sync_file(struct qcow2 *q)
{
    return qcow2_sync(q);
}

static void reftable_to_disk(const uint64_t *in, uint64_t *out, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++)
        out[i] = htobe64(in[i]);
}

static bool block_missing(const struct qcow2 *q, uint64_t bi)
{
    return bi >= q->reftable_entries || q->reftable[bi] == 0;
}

/*
 * Replaces the refcount table with a larger one covering block `need`.
 * The new table and the refcount blocks describing it go at the end of the
 * file; the header switches to it only once both are durable.
 */
static int grow_reftable(struct qcow2 *q, uint64_t need)
{
    uint64_t cs = q->cluster_size;
    uint32_t cb = q->cluster_bits, rb = q->refblock_bits;
    int r = qcow2_flush_metadata(q);

    if (r < 0)
        return r;
    uint64_t first = q->host_end >> cb;
    uint64_t entries = need + 1 > q->reftable_entries * 2 ? need + 1 : q->reftable_entries * 2;
    uint64_t n, m;
    for (;;) {
        n = (entries * 8 + cs - 1) / cs;
        entries = n * cs / 8;
        m = 0;
        for (;;) {
            uint64_t last = first + n + m - 1, missing = 0;
            for (uint64_t bi = first >> rb; bi <= last >> rb; bi++)
                missing += block_missing(q, bi);
            if (missing == m)
                break;
            m = missing;
        }
        uint64_t last_block = (first + n + m - 1) >> rb;
        if (last_block < entries)
            break;
        entries = last_block + 1;
    }
    if (n * cs > QCOW2_MAX_REFTABLE_BYTES) {
        log_error("%s: qcow2 refcount table would exceed %u bytes", q->name,
                  QCOW2_MAX_REFTABLE_BYTES);
        return -EFBIG;
    }

    uint64_t *table = calloc(entries, 8);
    uint8_t *blocks = m ? calloc(m, cs) : NULL;
    uint64_t *disk = calloc(entries, 8);
    if (!table || (m && !blocks) || !disk) {
        r = -ENOMEM;
        goto out;
    }
    memcpy(table, q->reftable, q->reftable_entries * 8);
    uint64_t k = 0;
    uint64_t first_new_block = first >> rb;
    for (uint64_t bi = first >> rb; bi <= (first + n + m - 1) >> rb; bi++)
        if (block_missing(q, bi))
            table[bi] = (first + n + k++) << cb;
    for (uint64_t c = first; c < first + n + m; c++) {
        uint64_t bi = c >> rb;
        if (block_missing(q, bi)) {
            uint64_t slot = (table[bi] >> cb) - (first + n);
            refcount_write(q, blocks + slot * cs, c & ((1ull << rb) - 1), 1);
        } else if ((r = refcount_add(q, c, +1)) < 0) {
            goto out;
        }
    }
    (void)first_new_block;
    if ((r = blk_file_pwrite(q->fd, blocks, m * cs, (first + n) << cb)) < 0 ||
        (r = qcow2_cache_write_dirty(q, &q->refblock_cache)) < 0)
        goto out;
    q->data_written = true;
    reftable_to_disk(table, disk, entries);
    if ((r = sync_file(q)) < 0 || (r = blk_file_pwrite(q->fd, disk, n * cs, first << cb)) < 0)
        goto out;
    q->data_written = true;
    if ((r = sync_file(q)) < 0)
        goto out;
    uint8_t hdr[12];
    uint64_t off_be = htobe64(first << cb);
    uint32_t clusters_be = htobe32((uint32_t)n);
    memcpy(hdr, &off_be, 8);
    memcpy(hdr + 8, &clusters_be, 4);
    if ((r = blk_file_pwrite(q->fd, hdr, sizeof(hdr), QCOW2_OFF_REFTABLE)) < 0)
        goto out;
    q->data_written = true;
    if ((r = sync_file(q)) < 0)
        goto out;

    uint64_t old_offset = q->h.refcount_table_offset;
    uint64_t old_clusters = q->h.refcount_table_clusters;
    free(q->reftable);
    q->reftable = table;
    table = NULL;
    q->reftable_entries = entries;
    q->h.refcount_table_offset = first << cb;
    q->h.refcount_table_clusters = (uint32_t)n;
    q->host_end = (first + n + m) << cb;
    /* Nothing on disk refers to the old table any more. */
    for (uint64_t c = 0; c < old_clusters; c++)
        if ((r = refcount_add(q, (old_offset >> cb) + c, -1)) < 0)
            goto out;
    log_debug("%s: qcow2 refcount table grown to %llu clusters", q->name, (unsigned long long)n);
out:
    free(table);
    free(blocks);
    free(disk);
    return r;
}

/* Creates refcount block `bi` in the first usable cluster it describes. */
static int create_refblock(struct qcow2 *q, uint64_t bi)
{
    uint64_t per = 1ull << q->refblock_bits;
    uint64_t *t;
    bool is_free;
    int r;

    for (uint64_t c = bi * per; c < (bi + 1) * per; c++) {
        if ((r = cluster_is_free(q, c, &is_free)) < 0)
            return r;
        if (!is_free)
            continue;
        uint64_t off = c << q->cluster_bits;
        r = qcow2_cache_get(q, &q->refblock_cache, off, true, false, &t);
        if (r < 0)
            return r;
        refcount_write(q, t, c - bi * per, 1);
        qcow2_cache_put(&q->refblock_cache, t);
        q->reftable[bi] = off;
        q->reftable_dirty = true;
        if (off + q->cluster_size > q->host_end)
            q->host_end = off + q->cluster_size;
        return 0;
    }
    log_error("%s: no room for qcow2 refcount block %llu", q->name, (unsigned long long)bi);
    return -ENOSPC;
}

int64_t qcow2_alloc_clusters(struct qcow2 *q, uint64_t n)
{
    uint32_t rb = q->refblock_bits;
    bool is_free;
    int r;

retry:;
    uint64_t start = q->free_hint, run = 0;
    bool seen_free = false;
    for (uint64_t i = q->free_hint; run < n; i++) {
        if ((r = cluster_is_free(q, i, &is_free)) < 0)
            return r;
        if (is_free) {
            if (!seen_free)
                q->free_hint = i; /* nothing free below it */
            seen_free = true;
            run++;
        } else {
            run = 0;
            start = i + 1;
        }
    }
    for (uint64_t bi = start >> rb; bi <= (start + n - 1) >> rb; bi++) {
        if (bi >= q->reftable_entries) {
            if ((r = grow_reftable(q, bi)) < 0)
                return r;
            goto retry;
        }
        if (q->reftable[bi] == 0) {
            if ((r = create_refblock(q, bi)) < 0)
                return r;
            goto retry;
        }
    }
    for (uint64_t c = start; c < start + n; c++)
        if ((r = refcount_add(q, c, +1)) < 0)
            return r;
    if (start == q->free_hint)
        q->free_hint = start + n;
    uint64_t end = (start + n) << q->cluster_bits;
    if (end > q->host_end)
        q->host_end = end;
    return (int64_t)(start << q->cluster_bits);
}

int qcow2_free_later(struct qcow2 *q, uint64_t offset, uint64_t len)
{
    if (q->n_pending_free) {
        struct qcow2_free *last = &q->pending_free[q->n_pending_free - 1];
        if (last->offset + last->len == offset) {
            last->len += len; /* a discard of a contiguous run stays one entry */
            return 0;
        }
    }
    if (q->n_pending_free == QCOW2_MAX_PENDING_FREE) {
        /*
         * A guest discarding a whole fragmented disk would grow the list
         * without end: flush now. The earlier entries' tables are updated
         * (the callers change an L2 entry after calling us), this one's
         * is not yet, so it waits for the next flush as it must.
         */
        int r = qcow2_flush_metadata(q);
        if (r < 0)
            return r;
    }
    if (q->n_pending_free == q->cap_pending_free) {
        size_t cap = q->cap_pending_free ? q->cap_pending_free * 2 : 64;
        struct qcow2_free *p = realloc(q->pending_free, cap * sizeof(*p));
        if (!p)
            return -ENOMEM;
        q->pending_free = p;
        q->cap_pending_free = cap;
    }
    q->pending_free[q->n_pending_free++] = (struct qcow2_free){offset, len};
    return 0;
}

/* Writes a host-order table in disk order, through a small buffer (an L1 table may be 32 MiB). */
static int write_table(struct qcow2 *q, const uint64_t *table, uint64_t entries, uint64_t offset)
{
    uint64_t disk[512];
    int r = 0;

    for (uint64_t i = 0; i < entries && r == 0; i += 512) {
        uint64_t n = entries - i < 512 ? entries - i : 512;
        reftable_to_disk(table + i, disk, n);
        r = blk_file_pwrite(q->fd, disk, n * 8, offset + i * 8);
    }
    if (r < 0)
        log_error("%s: writing qcow2 table at %llu failed: %s", q->name, (unsigned long long)offset,
                  strerror(-r));
    q->data_written = true;
    return r;
}

int qcow2_flush_metadata(struct qcow2 *q)
{
    int r;

    if (q->readonly)
        return 0;
    /* 1. Refcount increments: harmless before anything uses the clusters. */
    if ((r = qcow2_cache_write_dirty(q, &q->refblock_cache)) < 0)
        return r;
    if (q->reftable_dirty) {
        if ((r = sync_file(q)) < 0 ||
            (r = write_table(q, q->reftable, q->reftable_entries, q->h.refcount_table_offset)) < 0)
            return r;
        q->reftable_dirty = false;
    }
    /* 2. Tables pointing to new clusters, once data and refcounts are durable. */
    if (qcow2_cache_has_dirty(&q->l2_cache) || q->l1_dirty) {
        if ((r = sync_file(q)) < 0 || (r = qcow2_cache_write_dirty(q, &q->l2_cache)) < 0)
            return r;
        if (q->l1_dirty) {
            if ((r = sync_file(q)) < 0 ||
                (r = write_table(q, q->l1, q->h.l1_size, q->h.l1_table_offset)) < 0)
                return r;
            q->l1_dirty = false;
        }
    }
    /* 3. Dereference what the durable tables no longer point to. */
    if (q->n_pending_free) {
        if ((r = sync_file(q)) < 0)
            return r;
        /* No request may still be reading or writing a cluster freed here. */
        pthread_rwlock_wrlock(&q->io_barrier);
        uint64_t cs = q->cluster_size;
        for (size_t i = 0; i < q->n_pending_free; i++) {
            uint64_t start = q->pending_free[i].offset & ~(cs - 1);
            uint64_t end = q->pending_free[i].offset + q->pending_free[i].len;
            for (uint64_t off = start; off < end; off += cs) {
                qcow2_cache_discard(&q->l2_cache, off);
                r = refcount_add(q, off >> q->cluster_bits, -1);
                if (r < 0)
                    log_warn("%s: leaking qcow2 cluster at %llu", q->name, (unsigned long long)off);
            }
        }
        q->n_pending_free = 0;
        pthread_rwlock_unlock(&q->io_barrier);
        if ((r = qcow2_cache_write_dirty(q, &q->refblock_cache)) < 0)
            return r;
    }
    return 0;
}

static int write_durably(struct qcow2 *q, const void *buf, size_t len, uint64_t off)
{
    int r = blk_file_pwrite(q->fd, buf, len, off);
    q->data_written = true;
    return r < 0 ? r : sync_file(q);
}

/* Adds one reference to every cluster overlapping [off, off+len); -EIO past the end. */
static int count_refs(struct qcow2 *q, uint32_t *counts, uint64_t nclusters, uint64_t off,
                      uint64_t len)
{
    uint64_t first = off >> q->cluster_bits, last = (off + len - 1) >> q->cluster_bits;

    if (len == 0)
        return 0;
    if (last >= nclusters) {
        log_error("%s: qcow2 reference to %llu is past the end of the file; cannot repair", q->name,
                  (unsigned long long)off);
        return -EIO;
    }
    for (uint64_t c = first; c <= last; c++)
        counts[c]++;
    return 0;
}

static int count_l2_table(struct qcow2 *q, uint64_t *table, uint32_t *counts, uint64_t nclusters)
{
    uint64_t cs = q->cluster_size;
    int r = 0;

    for (uint64_t i = 0; i < (cs / 8) && r == 0; i++) {
        uint64_t e = be64toh(table[i]);
        if (e & QCOW2_OFLAG_COMPRESSED) {
            uint64_t coff = e & q->coffset_mask;
            uint64_t span = (((e >> q->csize_shift) & q->csize_mask) + 1) * 512;
            r = count_refs(q, counts, nclusters, coff & ~511ull, span);
        } else if (e & QCOW2_OFFSET_MASK) {
            uint64_t h = e & QCOW2_OFFSET_MASK;
            if (h & (cs - 1)) {
                log_error("%s: qcow2 data cluster offset %llu misaligned; cannot repair", q->name,
                          (unsigned long long)h);
                return -EIO;
            }
            r = count_refs(q, counts, nclusters, h, cs);
        }
    }
    return r;
}

int qcow2_rebuild_refcounts(struct qcow2 *q)
{
    uint64_t cs = q->cluster_size, per = 1ull << q->refblock_bits;
    uint32_t cb = q->cluster_bits;
    uint64_t nclusters = q->host_end >> cb;
    uint32_t *counts = NULL;
    uint64_t *table = NULL, *disk = NULL;
    uint8_t *blocks = NULL;
    int r;

    if (nclusters > QCOW2_MAX_REPAIR_CLUSTERS) {
        log_error("%s: dirty qcow2 image has %llu clusters, more than the %llu krunkit repairs "
                  "(a %u MiB count table); run qemu-img check -r all",
                  q->name, (unsigned long long)nclusters,
                  (unsigned long long)QCOW2_MAX_REPAIR_CLUSTERS,
                  (unsigned)((QCOW2_MAX_REPAIR_CLUSTERS * sizeof(*counts)) >> 20));
        return -EFBIG;
    }
    /* Room for the new refcount structure after the file's current end. */
    uint64_t n = 1, m = 1;
    for (;;) {
        uint64_t total = nclusters + n + m;
        uint64_t blocks_needed = (total + per - 1) / per;
        uint64_t tn = (blocks_needed * 8 + cs - 1) / cs;
        if (tn == n && blocks_needed == m)
            break;
        n = tn;
        m = blocks_needed;
    }
    uint64_t total = nclusters + n + m;
    if (n * cs > QCOW2_MAX_REFTABLE_BYTES) {
        log_error("%s: qcow2 refcount table would exceed %u bytes", q->name,
                  QCOW2_MAX_REFTABLE_BYTES);
        return -EFBIG;
    }
    counts = calloc(total, sizeof(*counts));
    table = malloc(cs);
    if (!counts || !table) {
        r = -ENOMEM;
        goto out;
    }

    /* Everything the image references: header, L1, L2 tables, data. */
    if ((r = count_refs(q, counts, nclusters, 0, cs)) < 0 ||
        (r = count_refs(q, counts, nclusters, q->h.l1_table_offset, (uint64_t)q->h.l1_size * 8)) <
            0)
        goto out;
    for (uint64_t i = 0; i < q->h.l1_size; i++) {
        uint64_t off = q->l1[i] & QCOW2_OFFSET_MASK;
        if (!off)
            continue;
        if ((off & (cs - 1)) || off + cs > q->host_end ||
            qcow2_overlaps_fixed_metadata(q, off, cs)) {
            log_error("%s: qcow2 L2 table at %llu is invalid; cannot repair", q->name,
                      (unsigned long long)off);
            r = -EIO;
            goto out;
        }
        if (counts[off >> cb]) {
            /* Without snapshots nothing is shared; also bounds the work. */
            log_error("%s: qcow2 L2 table at %llu is referenced twice; cannot repair", q->name,
                      (unsigned long long)off);
            r = -EIO;
            goto out;
        }
        if ((r = count_refs(q, counts, nclusters, off, cs)) < 0 ||
            (r = blk_file_pread(q->fd, table, cs, off)) < 0 ||
            (r = count_l2_table(q, table, counts, nclusters)) < 0)
            goto out;
    }
    for (uint64_t c = nclusters; c < total; c++)
        counts[c] = 1;

    /*
     * The new refcount table at `nclusters`, its blocks right after it.
     * The blocks are built and written one cluster at a time, so the
     * repair holds the counts and the table, never all the blocks.
     */
    blocks = malloc(cs);
    uint64_t entries = n * cs / 8;
    uint64_t *newtable = calloc(entries, 8);
    disk = calloc(entries, 8);
    if (!blocks || !newtable || !disk) {
        free(newtable);
        r = -ENOMEM;
        goto out;
    }
    for (uint64_t b = 0; b < m; b++) {
        memset(blocks, 0, cs);
        for (uint64_t c = b * per; c < total && c < (b + 1) * per; c++) {
            if (counts[c] > q->refcount_max) {
                log_error("%s: qcow2 cluster %llu has %u references, more than %u-bit "
                          "refcounts hold",
                          q->name, (unsigned long long)c, counts[c], 1u << q->h.refcount_order);
                free(newtable);
                r = -EIO;
                goto out;
            }
            refcount_write(q, blocks, c % per, counts[c]);
        }
        newtable[b] = (nclusters + n + b) << cb;
        if ((r = blk_file_pwrite(q->fd, blocks, cs, newtable[b])) < 0) {
            log_error("%s: writing the repaired qcow2 refcounts failed: %s", q->name, strerror(-r));
            free(newtable);
            goto out;
        }
    }
    reftable_to_disk(newtable, disk, entries);

    uint8_t hdr[12];
    uint64_t off_be = htobe64(nclusters << cb);
    uint32_t clusters_be = htobe32((uint32_t)n);
    memcpy(hdr, &off_be, 8);
    memcpy(hdr + 8, &clusters_be, 4);
    uint64_t incompat = htobe64(q->h.incompatible_features & ~QCOW2_INCOMPAT_DIRTY);
    /* Blocks and table durable before the header points to them; the dirty bit goes last. */
    r = write_durably(q, disk, n * cs, nclusters << cb);
    if (r == 0)
        r = write_durably(q, hdr, sizeof(hdr), QCOW2_OFF_REFTABLE);
    if (r == 0)
        r = write_durably(q, &incompat, 8, QCOW2_OFF_INCOMPAT);
    if (r < 0) {
        log_error("%s: writing the repaired qcow2 refcounts failed: %s", q->name, strerror(-r));
        free(newtable);
        goto out;
    }
    free(q->reftable);
    q->reftable = newtable;
    q->reftable_entries = entries;
    q->h.refcount_table_offset = nclusters << cb;
    q->h.refcount_table_clusters = (uint32_t)n;
    q->h.incompatible_features &= ~QCOW2_INCOMPAT_DIRTY;
    q->host_end = total << cb;
    q->free_hint = 1;
    log_info("%s: repaired the refcounts of a dirty qcow2 image", q->name);
out:
    free(counts);
    free(table);
    free(disk);
    free(blocks);
    return r;
}
