/*
 * qcow2 image driver (QEMU docs/interop/qcow2.txt, versions 2 and 3):
 * two-level cluster mapping (L1 -> L2 -> host cluster), zero clusters,
 * deflate-compressed clusters (read; rewritten uncompressed on write),
 * backing files with copy-on-write, discard and write-zeroes.
 *
 * Writes never modify a cluster that something else references: a cluster
 * is written in place only when its L2 entry carries the COPIED flag
 * (refcount 1); otherwise a new cluster is allocated, filled (old contents
 * around the written bytes), and the L2 entry updated in the cache. The
 * metadata reaches the disk in qcow2_flush_metadata's crash-safe order.
 *
 * Requests may come from several threads: the tables and caches are under
 * one lock, while reads and in-place writes of allocated clusters (the
 * common case once an image is populated) do their file I/O without it.
 */
#include "block/block_driver.h"
#include "block/qcow2_internal.h"

#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "core/log.h"

#define QCOW2_HEADER_READ_MAX (2u << 20)
/* Largest bounce buffer a read allocates; longer reads go through it in chunks. */
#define QCOW2_BOUNCE_MAX (1u << 20)

/*
 * Cache sizes: about 4 MiB of L2 tables (512 at most) and 1 MiB of refcount
 * blocks (64 at most), never fewer than 4 tables each: at 2 MiB clusters
 * that is 8 MiB each, the most an image can ask for.
 */
#define QCOW2_L2_CACHE_BYTES (4u << 20)
#define QCOW2_REFBLOCK_CACHE_BYTES (1u << 20)
static unsigned cache_slots(uint64_t cluster_size, uint64_t bytes, unsigned min, unsigned max)
{
    uint64_t n = bytes / cluster_size;
    return n < min ? min : n > max ? max : (unsigned)n;
}

int qcow2_sync(struct qcow2 *q)
{
    if (!q->data_written)
        return 0;
    if (fdatasync(q->fd) < 0) {
        int r = -errno;
        log_error("%s: fdatasync failed: %s", q->name, strerror(errno));
        return r;
    }
    q->data_written = false;
    return 0;
}

/* Checks a host cluster offset taken from an L1 or L2 entry. */
static int check_host_cluster(struct qcow2 *q, uint64_t off, const char *what)
{
    if ((off & (q->cluster_size - 1)) || off + q->cluster_size > q->host_end ||
        qcow2_overlaps_fixed_metadata(q, off, q->cluster_size)) {
        log_error("%s: qcow2 %s at host offset %llu is misaligned, past the end of the file or "
                  "overlaps the header or tables",
                  q->name, what, (unsigned long long)off);
        return -EIO;
    }
    return 0;
}

/*
 * The pinned L2 table for L1 index l1i. Without `alloc`, *table is NULL
 * when the L1 entry is unallocated; with it, the table is created, or copied
 * when shared.
 */
static int get_l2(struct qcow2 *q, uint64_t l1i, bool alloc, uint64_t **table)
{
    uint64_t l1e = q->l1[l1i];
    uint64_t off = l1e & QCOW2_OFFSET_MASK;
    int r;

    *table = NULL;
    if (off == 0) {
        if (!alloc)
            return 0;
        int64_t n = qcow2_alloc_clusters(q, 1);
        if (n < 0)
            return (int)n;
        r = qcow2_cache_get(q, &q->l2_cache, (uint64_t)n, true, true, table);
        if (r < 0)
            return r;
        q->l1[l1i] = (uint64_t)n | QCOW2_OFLAG_COPIED;
        q->l1_dirty = true;
        return 0;
    }
    if ((r = check_host_cluster(q, off, "L2 table")) < 0)
        return r;
    if ((r = qcow2_cache_get(q, &q->l2_cache, off, false, true, table)) < 0)
        return r;
    if (!alloc || (l1e & QCOW2_OFLAG_COPIED))
        return 0;

    /* Shared with a snapshot: write a private copy. */
    uint64_t *copy;
    int64_t n = qcow2_alloc_clusters(q, 1);
    if (n < 0) {
        qcow2_cache_put(&q->l2_cache, *table);
        return (int)n;
    }
    r = qcow2_cache_get(q, &q->l2_cache, (uint64_t)n, true, true, &copy);
    if (r < 0) {
        qcow2_cache_put(&q->l2_cache, *table);
        return r;
    }
    memcpy(copy, *table, q->cluster_size);
    qcow2_cache_put(&q->l2_cache, *table);
    *table = copy;
    q->l1[l1i] = (uint64_t)n | QCOW2_OFLAG_COPIED;
    q->l1_dirty = true;
    return qcow2_free_later(q, off, q->cluster_size);
}

static int lookup(struct qcow2 *q, uint64_t guest_cluster, uint64_t *entry)
{
    uint64_t *t;
    int r = get_l2(q, guest_cluster >> q->l2_bits, false, &t);

    *entry = 0;
    if (r < 0 || !t)
        return r;
    *entry = be64toh(t[guest_cluster & ((1ull << q->l2_bits) - 1)]);
    qcow2_cache_put(&q->l2_cache, t);
    return 0;
}

static bool entry_is_compressed(uint64_t e)
{
    return e & QCOW2_OFLAG_COMPRESSED;
}

static bool entry_is_zero(const struct qcow2 *q, uint64_t e)
{
    return q->h.version >= 3 && !entry_is_compressed(e) && (e & QCOW2_OFLAG_ZERO);
}

static uint64_t compressed_offset(const struct qcow2 *q, uint64_t e)
{
    return e & q->coffset_mask;
}

static uint64_t compressed_span(const struct qcow2 *q, uint64_t e)
{
    return (((e >> q->csize_shift) & q->csize_mask) + 1) * 512;
}

static int decompress_cluster(struct qcow2 *q, uint64_t e)
{
    if (q->ccache_entry == e)
        return 0;
    uint64_t off = compressed_offset(q, e);
    uint64_t len = compressed_span(q, e) - (off & 511);
    struct stat st;
    if (fstat(q->fd, &st) < 0)
        return -errno;
    if (off >= (uint64_t)st.st_size) {
        log_error("%s: qcow2 compressed cluster at %llu is past the end of the file", q->name,
                  (unsigned long long)off);
        return -EIO;
    }
    if (len > (uint64_t)st.st_size - off)
        len = (uint64_t)st.st_size - off; /* the last one may end early */
    int r = blk_file_pread(q->fd, q->cbuf, len, off);
    if (r < 0)
        return r;

    z_stream z = {0};
    if (inflateInit2(&z, -15) != Z_OK)
        return -ENOMEM;
    z.next_in = q->cbuf;
    z.avail_in = (uInt)len;
    z.next_out = q->ccache;
    z.avail_out = (uInt)q->cluster_size;
    int zr = inflate(&z, Z_FINISH);
    bool ok = z.avail_out == 0 && (zr == Z_STREAM_END || zr == Z_OK || zr == Z_BUF_ERROR);
    inflateEnd(&z);
    if (!ok) {
        log_error("%s: qcow2 compressed cluster at %llu does not decompress to one cluster",
                  q->name, (unsigned long long)off);
        q->ccache_entry = 0;
        return -EIO;
    }
    q->ccache_entry = e;
    return 0;
}

/*
 * Reads through a bounce buffer of at most QCOW2_BOUNCE_MAX bytes, chunk by
 * chunk, for vectors too long to slice: the allocation never grows with
 * the guest's request. read(buf, len, off, ctx) fills buf.
 */
static int bounce_read(const struct iovec *iov, int iovcnt, uint64_t skip, uint64_t len,
                       uint64_t off, int (*read)(void *buf, size_t len, uint64_t off, void *ctx),
                       void *ctx)
{
    size_t blen = len < QCOW2_BOUNCE_MAX ? (size_t)len : QCOW2_BOUNCE_MAX;
    uint8_t *bounce = malloc(blen);
    int r = 0;

    if (!bounce)
        return -ENOMEM;
    for (uint64_t done = 0; done < len && r == 0;) {
        size_t n = len - done < blen ? (size_t)(len - done) : blen;
        r = read(bounce, n, off + done, ctx);
        if (r == 0)
            blk_iov_from_buf(iov, iovcnt, skip + done, bounce, n);
        done += n;
    }
    free(bounce);
    return r;
}

static int backing_chunk(void *buf, size_t len, uint64_t off, void *ctx)
{
    return blk_preadv(ctx, &(struct iovec){buf, len}, 1, off);
}

/* Reads the file; the part past its end reads as zeroes. */
static int host_chunk(void *buf, size_t len, uint64_t off, void *ctx)
{
    const struct qcow2 *q = ctx;
    size_t done = 0;

    while (done < len) {
        ssize_t got = pread(q->fd, (uint8_t *)buf + done, len - done, (off_t)(off + done));
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            return -errno;
        if (got == 0)
            break;
        done += (size_t)got;
    }
    memset((uint8_t *)buf + done, 0, len - done);
    return 0;
}

static int read_backing(struct qcow2 *q, uint64_t guest, const struct iovec *iov, int iovcnt,
                        uint64_t skip, uint64_t len)
{
    uint64_t in = 0;

    if (q->backing && guest < q->backing_size)
        in = q->backing_size - guest < len ? q->backing_size - guest : len;
    if (in) {
        struct iovec part[64];
        int n = blk_iov_slice(iov, iovcnt, skip, in, part, 64);
        int r = n >= 0 ? blk_preadv(q->backing, part, n, guest)
                       : bounce_read(iov, iovcnt, skip, in, guest, backing_chunk, q->backing);
        if (r < 0)
            return r;
    }
    if (len > in)
        blk_iov_memset(iov, iovcnt, skip + in, 0, len - in);
    return 0;
}

/* Reads host bytes; the part past the end of the file reads as zeroes. */
static int read_host(struct qcow2 *q, uint64_t host, const struct iovec *iov, int iovcnt,
                     uint64_t skip, uint64_t len)
{
    struct iovec part[64];
    int n = blk_iov_slice(iov, iovcnt, skip, len, part, 64);

    if (n >= 0) {
        int r = blk_file_preadv(q->fd, part, n, host);
        if (r != -EIO)
            return r;
    }
    /* Short read at the end of the file, or a long vector. */
    return bounce_read(iov, iovcnt, skip, len, host, host_chunk, q);
}

/* Reads bytes [co, co+len) of guest cluster gc, whose L2 entry is e, into iov at skip. */
static int read_from_entry(struct qcow2 *q, uint64_t gc, uint64_t e, uint64_t co,
                           const struct iovec *iov, int iovcnt, uint64_t skip, uint64_t len)
{
    int r;

    if (entry_is_compressed(e)) {
        if ((r = decompress_cluster(q, e)) < 0)
            return r;
        blk_iov_from_buf(iov, iovcnt, skip, q->ccache + co, len);
        return 0;
    }
    if (entry_is_zero(q, e)) {
        blk_iov_memset(iov, iovcnt, skip, 0, len);
        return 0;
    }
    uint64_t host = e & QCOW2_OFFSET_MASK;
    if (host == 0)
        return read_backing(q, (gc << q->cluster_bits) + co, iov, iovcnt, skip, len);
    if ((e & QCOW2_L2_STD_RESERVED) && q->h.version >= 3)
        log_debug("%s: qcow2 L2 entry with reserved bits %llx", q->name, (unsigned long long)e);
    if ((r = check_host_cluster(q, host, "data cluster")) < 0)
        return r;
    return read_host(q, host + co, iov, iovcnt, skip, len);
}

static int preadv_locked(struct qcow2 *q, const struct iovec *iov, int iovcnt, uint64_t offset)
{
    int64_t total = blk_iov_length(iov, iovcnt);
    uint64_t e;
    int r;

    for (uint64_t pos = 0; pos < (uint64_t)total;) {
        uint64_t guest = offset + pos;
        uint64_t gc = guest >> q->cluster_bits;
        uint64_t co = guest & (q->cluster_size - 1);
        uint64_t n = q->cluster_size - co;
        if (n > (uint64_t)total - pos)
            n = (uint64_t)total - pos;
        if ((r = lookup(q, gc, &e)) < 0)
            return r;
        /* Extend over following clusters that are contiguous on the host. */
        uint64_t host = e & QCOW2_OFFSET_MASK;
        if (host && !entry_is_compressed(e) && !entry_is_zero(q, e)) {
            while (pos + n < (uint64_t)total && ((guest + n) >> q->cluster_bits) <= gc + 64) {
                uint64_t ne, ngc = (guest + n) >> q->cluster_bits;
                if (((ngc ^ gc) >> q->l2_bits) || (r = lookup(q, ngc, &ne)) < 0)
                    break;
                if (entry_is_compressed(ne) || entry_is_zero(q, ne) ||
                    (ne & QCOW2_OFFSET_MASK) != host + ((ngc - gc) << q->cluster_bits) ||
                    check_host_cluster(q, ne & QCOW2_OFFSET_MASK, "data cluster") < 0)
                    break;
                uint64_t more = q->cluster_size;
                if (more > (uint64_t)total - pos - n)
                    more = (uint64_t)total - pos - n;
                n += more;
            }
            if ((r = check_host_cluster(q, host, "data cluster")) < 0)
                return r;
            r = read_host(q, host + co, iov, iovcnt, pos, n);
        } else {
            r = read_from_entry(q, gc, e, co, iov, iovcnt, pos, n);
        }
        if (r < 0)
            return r;
        pos += n;
    }
    return 0;
}

static bool reads_zero(const struct qcow2 *q, uint64_t e);

/* Frees what an L2 entry pointed to, once the new entry is durable. */
static int release_entry(struct qcow2 *q, uint64_t e)
{
    if (entry_is_compressed(e)) {
        uint64_t off = compressed_offset(q, e);
        return qcow2_free_later(q, off & ~511ull, compressed_span(q, e));
    }
    if (e & QCOW2_OFFSET_MASK)
        return qcow2_free_later(q, e & QCOW2_OFFSET_MASK, q->cluster_size);
    return 0;
}

/*
 * Writes bytes [co, co+len) of guest cluster gc from iov at skip; with
 * iov NULL, writes zeroes.
 */
static int write_cluster(struct qcow2 *q, uint64_t gc, uint64_t co, const struct iovec *iov,
                         int iovcnt, uint64_t skip, uint64_t len)
{
    uint64_t l2i = gc & ((1ull << q->l2_bits) - 1);
    uint64_t *t;
    int r = get_l2(q, gc >> q->l2_bits, true, &t);

    if (r < 0)
        return r;
    uint64_t e = be64toh(t[l2i]);
    uint64_t host = e & QCOW2_OFFSET_MASK;
    struct iovec part[64];
    int n;

    if (host && !entry_is_compressed(e) && !entry_is_zero(q, e) && (e & QCOW2_OFLAG_COPIED)) {
        /* Allocated and not shared: in place. */
        if ((r = check_host_cluster(q, host, "data cluster")) < 0)
            goto out;
        if (!iov) {
            memset(q->cow_buf, 0, len);
            r = blk_file_pwrite(q->fd, q->cow_buf, len, host + co);
        } else if ((n = blk_iov_slice(iov, iovcnt, skip, len, part, 64)) >= 0) {
            r = blk_file_pwritev(q->fd, part, n, host + co);
        } else {
            blk_iov_to_buf(iov, iovcnt, skip, q->cow_buf, len);
            r = blk_file_pwrite(q->fd, q->cow_buf, len, host + co);
        }
        q->data_written = true;
        goto out;
    }

    bool whole = len == q->cluster_size;
    bool reuse = host && entry_is_zero(q, e) && (e & QCOW2_OFLAG_COPIED);
    int64_t fresh = -1;
    if (!whole && iov && !reuse && reads_zero(q, e)) {
        /*
         * A cluster past the old end of the file already reads as zeroes:
         * when the old contents are zeroes too, only the new bytes need
         * writing (no 64 KiB of zeroes for a 4 KiB guest write).
         */
        uint64_t end_before = q->host_end;
        fresh = qcow2_alloc_clusters(q, 1);
        if (fresh < 0) {
            r = (int)fresh;
            goto out;
        }
        if ((uint64_t)fresh >= end_before) {
            if ((n = blk_iov_slice(iov, iovcnt, skip, len, part, 64)) >= 0) {
                r = blk_file_pwritev(q->fd, part, n, (uint64_t)fresh + co);
            } else {
                blk_iov_to_buf(iov, iovcnt, skip, q->cow_buf, len);
                r = blk_file_pwrite(q->fd, q->cow_buf, len, (uint64_t)fresh + co);
            }
            q->data_written = true;
            if (r < 0) {
                qcow2_free_later(q, (uint64_t)fresh, q->cluster_size);
                goto out;
            }
            if ((r = release_entry(q, e)) < 0)
                goto out;
            t[l2i] = htobe64((uint64_t)fresh | QCOW2_OFLAG_COPIED);
            qcow2_cache_mark_dirty(&q->l2_cache, t);
            goto out;
        }
    }

    /* Build the whole new cluster: old contents around the new bytes. */
    if (!whole || !iov) {
        if (!whole) {
            struct iovec all = {q->cow_buf, q->cluster_size};
            if ((r = read_from_entry(q, gc, e, 0, &all, 1, 0, q->cluster_size)) < 0)
                goto out;
        }
        if (iov)
            blk_iov_to_buf(iov, iovcnt, skip, q->cow_buf + co, len);
        else
            memset(q->cow_buf + co, 0, len);
    }
    uint64_t target;
    if (fresh >= 0) {
        target = (uint64_t)fresh;
    } else if (reuse) {
        if ((r = check_host_cluster(q, host, "data cluster")) < 0)
            goto out;
        target = host;
    } else {
        int64_t a = qcow2_alloc_clusters(q, 1);
        if (a < 0) {
            r = (int)a;
            goto out;
        }
        target = (uint64_t)a;
    }
    if (whole && iov && (n = blk_iov_slice(iov, iovcnt, skip, len, part, 64)) >= 0) {
        r = blk_file_pwritev(q->fd, part, n, target);
    } else {
        if (whole && iov)
            blk_iov_to_buf(iov, iovcnt, skip, q->cow_buf, len);
        r = blk_file_pwrite(q->fd, q->cow_buf, q->cluster_size, target);
    }
    q->data_written = true;
    if (r < 0) {
        if (!reuse)
            qcow2_free_later(q, target, q->cluster_size);
        goto out;
    }
    if (!reuse && (r = release_entry(q, e)) < 0)
        goto out;
    if (e == q->ccache_entry)
        q->ccache_entry = 0;
    t[l2i] = htobe64(target | QCOW2_OFLAG_COPIED);
    qcow2_cache_mark_dirty(&q->l2_cache, t);
out:
    qcow2_cache_put(&q->l2_cache, t);
    return r;
}

static int pwritev_locked(struct qcow2 *q, const struct iovec *iov, int iovcnt, uint64_t offset)
{
    int64_t total = blk_iov_length(iov, iovcnt);

    for (uint64_t pos = 0; pos < (uint64_t)total;) {
        uint64_t guest = offset + pos;
        uint64_t co = guest & (q->cluster_size - 1);
        uint64_t n = q->cluster_size - co;
        if (n > (uint64_t)total - pos)
            n = (uint64_t)total - pos;
        int r = write_cluster(q, guest >> q->cluster_bits, co, iov, iovcnt, pos, n);
        if (r < 0)
            return r;
        pos += n;
    }
    return 0;
}

/* True when guest cluster gc with entry e already reads as zeroes. */
static bool reads_zero(const struct qcow2 *q, uint64_t e)
{
    if (entry_is_zero(q, e))
        return true;
    return e == 0 && !q->backing;
}

enum zero_mode { ZERO_DISCARD, ZERO_UNMAP, ZERO_KEEP };

/* Changes the L2 entry of one whole guest cluster to make it unallocated or zero. */
static int zero_whole_cluster(struct qcow2 *q, uint64_t gc, enum zero_mode mode)
{
    uint64_t l2i = gc & ((1ull << q->l2_bits) - 1);
    uint64_t *t;
    uint64_t e;
    int r;

    if ((r = lookup(q, gc, &e)) < 0)
        return r;
    if (mode == ZERO_DISCARD && (e == 0 || (q->backing && q->h.version < 3)))
        return 0; /* nothing to release, or v2 cannot hide the backing file's data */
    if (mode != ZERO_DISCARD && reads_zero(q, e) && !(mode == ZERO_UNMAP && e))
        return 0;
    if (q->h.version < 3 && (mode != ZERO_DISCARD && q->backing))
        return write_cluster(q, gc, 0, NULL, 0, 0, q->cluster_size); /* no zero flag in v2 */

    uint64_t ne;
    bool keep = false;
    if (mode == ZERO_DISCARD)
        ne = (q->backing && q->h.version >= 3) ? QCOW2_OFLAG_ZERO : 0;
    else if (q->h.version < 3)
        ne = 0; /* no backing: unallocated reads as zeroes */
    else if (mode == ZERO_KEEP && (e & QCOW2_OFFSET_MASK) && !entry_is_compressed(e) &&
             (e & QCOW2_OFLAG_COPIED)) {
        ne = (e & QCOW2_OFFSET_MASK) | QCOW2_OFLAG_COPIED | QCOW2_OFLAG_ZERO;
        keep = true;
    } else
        ne = QCOW2_OFLAG_ZERO;
    if (ne == e)
        return 0;
    if ((r = get_l2(q, gc >> q->l2_bits, true, &t)) < 0)
        return r;
    e = be64toh(t[l2i]);
    if (!keep && (r = release_entry(q, e)) < 0)
        goto out;
    if (e == q->ccache_entry)
        q->ccache_entry = 0;
    t[l2i] = htobe64(ne);
    qcow2_cache_mark_dirty(&q->l2_cache, t);
out:
    qcow2_cache_put(&q->l2_cache, t);
    return r;
}

static int zero_range(struct qcow2 *q, uint64_t offset, uint64_t len, enum zero_mode mode)
{
    while (len) {
        uint64_t gc = offset >> q->cluster_bits;
        uint64_t co = offset & (q->cluster_size - 1);
        uint64_t n = q->cluster_size - co;
        int r;
        if (n > len)
            n = len;
        if (n == q->cluster_size) {
            r = zero_whole_cluster(q, gc, mode);
        } else if (mode == ZERO_DISCARD) {
            r = 0; /* partial clusters stay: discard is advisory */
        } else {
            uint64_t e;
            r = lookup(q, gc, &e);
            if (r == 0 && !reads_zero(q, e))
                r = write_cluster(q, gc, co, NULL, 0, 0, n);
        }
        if (r < 0)
            return r;
        offset += n;
        len -= n;
    }
    return 0;
}

/* True when the host cluster can hold guest data (see check_host_cluster). */
static bool host_cluster_ok(const struct qcow2 *q, uint64_t off)
{
    return off && !(off & (q->cluster_size - 1)) && off + q->cluster_size <= q->host_end &&
           !qcow2_overlaps_fixed_metadata(q, off, q->cluster_size);
}

/*
 * The common request needs no metadata change: every cluster it touches is
 * allocated, uncompressed, not a zero cluster, one after the other on the
 * host (and, for a write, not shared). Then *host is where the request
 * starts in the file and the I/O can run without the metadata lock.
 */
static bool map_direct(struct qcow2 *q, uint64_t offset, uint64_t len, bool write, uint64_t *host)
{
    uint64_t first = offset >> q->cluster_bits, last = (offset + len - 1) >> q->cluster_bits;
    uint64_t mask = (1ull << q->l2_bits) - 1, base = 0;
    uint64_t *t;
    bool ok = true;

    if ((first >> q->l2_bits) != (last >> q->l2_bits) || last - first > 512)
        return false;
    if (get_l2(q, first >> q->l2_bits, false, &t) < 0 || !t)
        return false;
    for (uint64_t c = first; c <= last && ok; c++) {
        uint64_t e = be64toh(t[c & mask]);
        uint64_t h = e & QCOW2_OFFSET_MASK;
        if (c == first)
            base = h;
        ok = h && h == base + ((c - first) << q->cluster_bits) && !entry_is_compressed(e) &&
             !entry_is_zero(q, e) && (!write || (e & QCOW2_OFLAG_COPIED)) && host_cluster_ok(q, h);
    }
    qcow2_cache_put(&q->l2_cache, t);
    *host = base + (offset & (q->cluster_size - 1));
    return ok;
}

/*
 * Entry points. Metadata is under q->lock; direct I/O runs outside it
 * holding q->io_barrier for reading, which the metadata flush takes for
 * writing before it lets freed clusters be reused.
 */
static int qcow2_preadv(struct blk_image *img, const struct iovec *iov, int iovcnt, uint64_t offset)
{
    struct qcow2 *q = img->state;
    uint64_t len = (uint64_t)blk_iov_length(iov, iovcnt), host;
    int r;

    pthread_mutex_lock(&q->lock);
    if (map_direct(q, offset, len, false, &host)) {
        pthread_rwlock_rdlock(&q->io_barrier);
        pthread_mutex_unlock(&q->lock);
        r = read_host(q, host, iov, iovcnt, 0, len);
        pthread_rwlock_unlock(&q->io_barrier);
        return r;
    }
    r = preadv_locked(q, iov, iovcnt, offset);
    pthread_mutex_unlock(&q->lock);
    return r;
}

static int qcow2_pwritev(struct blk_image *img, const struct iovec *iov, int iovcnt,
                         uint64_t offset)
{
    struct qcow2 *q = img->state;
    uint64_t len = (uint64_t)blk_iov_length(iov, iovcnt), host;
    int r;

    pthread_mutex_lock(&q->lock);
    if (map_direct(q, offset, len, true, &host)) {
        pthread_rwlock_rdlock(&q->io_barrier);
        pthread_mutex_unlock(&q->lock);
        /* Overwrites in place: no ordering against metadata; flush always syncs. */
        r = blk_file_pwritev(q->fd, iov, iovcnt, host);
        pthread_rwlock_unlock(&q->io_barrier);
        return r;
    }
    r = pwritev_locked(q, iov, iovcnt, offset);
    pthread_mutex_unlock(&q->lock);
    return r;
}

static int qcow2_discard(struct blk_image *img, uint64_t offset, uint64_t len)
{
    struct qcow2 *q = img->state;
    pthread_mutex_lock(&q->lock);
    int r = zero_range(q, offset, len, ZERO_DISCARD);
    pthread_mutex_unlock(&q->lock);
    return r;
}

static int qcow2_write_zeroes(struct blk_image *img, uint64_t offset, uint64_t len, bool may_unmap)
{
    struct qcow2 *q = img->state;
    pthread_mutex_lock(&q->lock);
    int r = zero_range(q, offset, len, may_unmap ? ZERO_UNMAP : ZERO_KEEP);
    pthread_mutex_unlock(&q->lock);
    return r;
}

static int qcow2_flush(struct blk_image *img)
{
    struct qcow2 *q = img->state;

    pthread_mutex_lock(&q->lock);
    int r = qcow2_flush_metadata(q);
    if (r == 0) {
        q->data_written = true; /* direct writes do not set it: always fdatasync */
        r = qcow2_sync(q);
    }
    pthread_mutex_unlock(&q->lock);
    return r;
}

static void free_state(struct qcow2 *q)
{
    if (!q)
        return;
    pthread_mutex_destroy(&q->lock);
    pthread_rwlock_destroy(&q->io_barrier);
    if (q->backing)
        blk_close(q->backing);
    qcow2_cache_fini(&q->l2_cache);
    qcow2_cache_fini(&q->refblock_cache);
    free(q->l1);
    free(q->reftable);
    free(q->pending_free);
    free(q->cbuf);
    free(q->ccache);
    free(q->cow_buf);
    free(q);
}

static void qcow2_close(struct blk_image *img)
{
    free_state(img->state);
    img->state = NULL;
}

static int read_table(struct qcow2 *q, uint64_t offset, uint64_t entries, uint64_t **out)
{
    uint64_t *t = malloc(entries ? entries * 8 : 8);
    if (!t)
        return -ENOMEM;
    int r = blk_file_pread(q->fd, t, entries * 8, offset);
    if (r < 0) {
        log_error("%s: reading qcow2 table at %llu failed: %s", q->name, (unsigned long long)offset,
                  strerror(-r));
        free(t);
        return r;
    }
    for (uint64_t i = 0; i < entries; i++)
        t[i] = be64toh(t[i]);
    *out = t;
    return 0;
}

static int open_backing(struct qcow2 *q, const struct blk_chain *chain)
{
    const char *name = q->h.backing_file;

    if (strncmp(name, "json:", 5) == 0) {
        log_error("%s: json: backing file specifications are not supported", q->name);
        return -ENOTSUP;
    }
    if (strncmp(name, "file:", 5) == 0)
        name += 5;
    if (q->h.backing_fmt == QCOW2_BACKING_PROBE) {
        /* Probing would let a raw backing file that starts with a qcow2 header pick its own. */
        log_error("%s: backing file \"%s\" has no recorded format and krunkit never guesses one; "
                  "record it with: qemu-img rebase -u -F raw|qcow2 -b '%s' '%s'",
                  q->name, name, name, q->name);
        return -EINVAL;
    }
    enum blk_format fmt = q->h.backing_fmt == QCOW2_BACKING_QCOW2 ? BLK_FMT_QCOW2 : BLK_FMT_RAW;
    int r = blk_open_backing(chain, name, fmt, &q->backing);
    if (r < 0)
        return r;
    q->backing_size = blk_size(q->backing);
    return 0;
}

static int qcow2_open(struct blk_image *img, const struct blk_chain *chain)
{
    struct qcow2 *q = calloc(1, sizeof(*q));
    struct stat st;
    uint8_t *hdr = NULL;
    int r;

    if (!q)
        return -ENOMEM;
    pthread_mutex_init(&q->lock, NULL);
    pthread_rwlock_init(&q->io_barrier, NULL);
    q->img = img;
    q->fd = img->fd;
    q->name = img->path;
    q->readonly = img->readonly;
    if (fstat(img->fd, &st) < 0) {
        r = -errno;
        goto fail;
    }
    uint64_t file_size = (uint64_t)st.st_size;
    size_t hlen = file_size < QCOW2_HEADER_READ_MAX ? (size_t)file_size : QCOW2_HEADER_READ_MAX;
    hdr = malloc(hlen ? hlen : 1);
    if (!hdr) {
        r = -ENOMEM;
        goto fail;
    }
    if ((r = blk_file_pread(img->fd, hdr, hlen, 0)) < 0) {
        log_error("%s: cannot read the qcow2 header: %s", q->name, strerror(-r));
        goto fail;
    }
    if ((r = qcow2_parse_header(hdr, hlen, file_size, q->name, img->readonly, &q->h)) < 0)
        goto fail;

    q->cluster_bits = q->h.cluster_bits;
    q->cluster_size = 1ull << q->cluster_bits;
    q->l2_bits = q->cluster_bits - 3;
    q->refblock_bits = q->cluster_bits + 3 - q->h.refcount_order;
    q->refcount_max =
        q->h.refcount_order == 6 ? UINT64_MAX : (1ull << (1u << q->h.refcount_order)) - 1;
    q->csize_shift = 62 - (q->cluster_bits - 8);
    q->csize_mask = (1ull << (q->cluster_bits - 8)) - 1;
    q->coffset_mask = (1ull << q->csize_shift) - 1;
    q->host_end = (file_size + q->cluster_size - 1) & ~(q->cluster_size - 1);
    q->free_hint = 1;

    /* Everything allocated below for this image, checked against the chain's budget first. */
    unsigned l2_slots = cache_slots(q->cluster_size, QCOW2_L2_CACHE_BYTES, 4, 512);
    unsigned rb_slots = cache_slots(q->cluster_size, QCOW2_REFBLOCK_CACHE_BYTES, 4, 64);
    uint64_t slot_bytes = q->cluster_size < 4096 ? 4096 : q->cluster_size;
    uint64_t meta = (uint64_t)q->h.l1_size * 8 +
                    ((uint64_t)q->h.refcount_table_clusters << q->cluster_bits) +
                    (uint64_t)(l2_slots + rb_slots) * slot_bytes + 4 * q->cluster_size;
    if ((r = blk_chain_charge(chain, meta)) < 0)
        goto fail;

    if ((r = read_table(q, q->h.l1_table_offset, q->h.l1_size, &q->l1)) < 0)
        goto fail;
    q->reftable_entries = ((uint64_t)q->h.refcount_table_clusters << q->cluster_bits) / 8;
    if ((r = read_table(q, q->h.refcount_table_offset, q->reftable_entries, &q->reftable)) < 0)
        goto fail;
    for (uint64_t i = 0; i < q->reftable_entries; i++) {
        uint64_t off = q->reftable[i];
        if (off && ((off & (q->cluster_size - 1)) || off + q->cluster_size > q->host_end ||
                    qcow2_overlaps_fixed_metadata(q, off, q->cluster_size))) {
            log_error("%s: qcow2 refcount block %llu at %llu is misaligned, past the end of "
                      "the file or overlaps the header or tables",
                      q->name, (unsigned long long)i, (unsigned long long)off);
            r = -EINVAL;
            goto fail;
        }
    }

    if ((r = qcow2_cache_init(&q->l2_cache, l2_slots, q->cluster_size)) < 0 ||
        (r = qcow2_cache_init(&q->refblock_cache, rb_slots, q->cluster_size)) < 0)
        goto fail;
    q->cbuf = malloc(2 * q->cluster_size);
    q->ccache = malloc(q->cluster_size);
    q->cow_buf = malloc(q->cluster_size);
    if (!q->cbuf || !q->ccache || !q->cow_buf) {
        r = -ENOMEM;
        goto fail;
    }
    if (q->h.has_backing && (r = open_backing(q, chain)) < 0)
        goto fail;

    if (!q->readonly && (q->h.incompatible_features & QCOW2_INCOMPAT_DIRTY) &&
        (r = qcow2_rebuild_refcounts(q)) < 0)
        goto fail;
    if (!q->readonly && q->h.autoclear_features) {
        /* We do not keep bitmaps up to date: tell readers they are stale. */
        uint64_t zero = 0;
        if ((r = blk_file_pwrite(q->fd, &zero, 8, QCOW2_OFF_AUTOCLEAR)) < 0 ||
            fdatasync(q->fd) < 0) {
            r = r < 0 ? r : -errno;
            log_error("%s: cannot clear qcow2 autoclear features: %s", q->name, strerror(-r));
            goto fail;
        }
        q->h.autoclear_features = 0;
    }
    img->size = q->h.size;
    img->state = q;
    free(hdr);
    return 0;

fail:
    free(hdr);
    free_state(q);
    return r;
}

const struct blk_driver blk_qcow2_driver = {
    .name = "qcow2",
    .thread_safe = true, /* its own metadata lock; data I/O runs in parallel */
    .async_workers = 4,
    .open = qcow2_open,
    .preadv = qcow2_preadv,
    .pwritev = qcow2_pwritev,
    .flush = qcow2_flush,
    .discard = qcow2_discard,
    .write_zeroes = qcow2_write_zeroes,
    .close = qcow2_close,
};
