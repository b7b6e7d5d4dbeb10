/*
 * Bounded write-back cache of qcow2 tables (L2 tables, refcount blocks),
 * least recently used eviction. Tables stay in disk byte order so they can
 * be written back unchanged. Dirty L2 tables may only reach the disk after
 * the data and refcounts they point to, so evicting one flushes metadata in
 * order; dirty refcount blocks only ever gain references before a flush and
 * can be written at any time.
 */
#include "block/qcow2_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "block/block_driver.h"
#include "core/log.h"

int qcow2_cache_init(struct qcow2_cache *c, unsigned count, uint64_t cluster_size)
{
    memset(c, 0, sizeof(*c));
    c->entries = calloc(count, sizeof(*c->entries));
    if (!c->entries)
        return -ENOMEM;
    c->count = count;
    for (unsigned i = 0; i < count; i++) {
        c->entries[i].data = aligned_alloc(4096, cluster_size < 4096 ? 4096 : cluster_size);
        if (!c->entries[i].data) {
            qcow2_cache_fini(c);
            return -ENOMEM;
        }
    }
    return 0;
}

void qcow2_cache_fini(struct qcow2_cache *c)
{
    if (!c->entries)
        return;
    for (unsigned i = 0; i < c->count; i++)
        free(c->entries[i].data);
    free(c->entries);
    c->entries = NULL;
}

static int write_entry(struct qcow2 *q, struct qcow2_cache_entry *e)
{
    int r = blk_file_pwrite(q->fd, e->data, q->cluster_size, e->offset);
    q->data_written = true;
    if (r < 0) {
        log_error("%s: writing qcow2 table at %llu failed: %s", q->name,
                  (unsigned long long)e->offset, strerror(-r));
        return r;
    }
    e->dirty = false;
    return 0;
}

int qcow2_cache_get(struct qcow2 *q, struct qcow2_cache *c, uint64_t offset, bool fresh, bool is_l2,
                    uint64_t **table)
{
    struct qcow2_cache_entry *victim = NULL;
    int r;

    for (unsigned i = 0; i < c->count; i++) {
        struct qcow2_cache_entry *e = &c->entries[i];
        if (e->offset == offset) {
            if (fresh) {
                memset(e->data, 0, q->cluster_size);
                e->dirty = true;
            }
            e->pins++;
            e->last_use = ++c->clock;
            *table = e->data;
            return 0;
        }
        if (e->pins)
            continue;
        if (!victim || (e->offset == 0 && victim->offset != 0) ||
            (victim->offset != 0 && e->offset != 0 && e->last_use < victim->last_use))
            victim = e;
    }
    if (!victim)
        return -EBUSY; /* every slot pinned: a driver bug */
    if (victim->offset && victim->dirty) {
        r = is_l2 ? qcow2_flush_metadata(q) : write_entry(q, victim);
        if (r < 0)
            return r;
    }
    victim->offset = 0;
    if (fresh) {
        memset(victim->data, 0, q->cluster_size);
        victim->dirty = true;
    } else {
        r = blk_file_pread(q->fd, victim->data, q->cluster_size, offset);
        if (r < 0) {
            log_error("%s: reading qcow2 table at %llu failed: %s", q->name,
                      (unsigned long long)offset, strerror(-r));
            return r;
        }
        victim->dirty = false;
    }
    victim->offset = offset;
    victim->pins = 1;
    victim->last_use = ++c->clock;
    *table = victim->data;
    return 0;
}

static struct qcow2_cache_entry *find(struct qcow2_cache *c, uint64_t *table)
{
    for (unsigned i = 0; i < c->count; i++)
        if (c->entries[i].data == table)
            return &c->entries[i];
    return NULL;
}

void qcow2_cache_put(struct qcow2_cache *c, uint64_t *table)
{
    struct qcow2_cache_entry *e = find(c, table);
    if (e && e->pins)
        e->pins--;
}

void qcow2_cache_mark_dirty(struct qcow2_cache *c, uint64_t *table)
{
    struct qcow2_cache_entry *e = find(c, table);
    if (e)
        e->dirty = true;
}

int qcow2_cache_write_dirty(struct qcow2 *q, struct qcow2_cache *c)
{
    for (unsigned i = 0; i < c->count; i++) {
        struct qcow2_cache_entry *e = &c->entries[i];
        if (e->offset && e->dirty) {
            int r = write_entry(q, e);
            if (r < 0)
                return r;
        }
    }
    return 0;
}

bool qcow2_cache_has_dirty(const struct qcow2_cache *c)
{
    for (unsigned i = 0; i < c->count; i++)
        if (c->entries[i].offset && c->entries[i].dirty)
            return true;
    return false;
}

void qcow2_cache_discard(struct qcow2_cache *c, uint64_t offset)
{
    for (unsigned i = 0; i < c->count; i++) {
        if (c->entries[i].offset == offset && !c->entries[i].pins) {
            c->entries[i].offset = 0;
            c->entries[i].dirty = false;
        }
    }
}
