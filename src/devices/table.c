/*
 * The table of --device kinds (core/devkind.h): one entry per kind, each
 * defined by its descriptor in this directory. The order is the one the
 * parser's "unknown device type" message lists, and entries are looked up
 * by enum dev_type too, so the table is kept in enum order
 * (tests/unit/test_devkind.c checks it; dev_kind_of still finds an entry
 * out of place).
 */
#include <string.h>

#include "core/devkind.h"

extern const struct dev_kind dev_kind_blk, dev_kind_net, dev_kind_serial, dev_kind_vsock,
    dev_kind_fs, dev_kind_rng, dev_kind_balloon, dev_kind_gpu, dev_kind_input;

const struct dev_kind *const dev_kinds[] = {
    &dev_kind_blk, &dev_kind_net,     &dev_kind_serial, &dev_kind_vsock, &dev_kind_fs,
    &dev_kind_rng, &dev_kind_balloon, &dev_kind_gpu,    &dev_kind_input,
};
const size_t dev_kinds_count = sizeof(dev_kinds) / sizeof(dev_kinds[0]);

const struct dev_kind *dev_kind_of(enum dev_type type)
{
    if ((size_t)type < dev_kinds_count && dev_kinds[type]->type == type)
        return dev_kinds[type];
    for (size_t i = 0; i < dev_kinds_count; i++)
        if (dev_kinds[i]->type == type)
            return dev_kinds[i];
    return NULL;
}

const struct dev_kind *dev_kind_find(const char *name)
{
    for (size_t i = 0; i < dev_kinds_count; i++)
        if (!strcmp(dev_kinds[i]->name, name))
            return dev_kinds[i];
    return NULL;
}
