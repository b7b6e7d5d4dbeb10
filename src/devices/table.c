/*
 * The table of --device kinds (core/devkind.h), made from the one list in
 * core/device_list.h, as enum dev_type is: entry DEV_<ID> is the kind
 * dev_kind_<sym> that the kind's file in this directory defines. The order
 * is the one the parser's "unknown device type" message lists
 * (tests/unit/test_devkind.c checks the table against the enum).
 */
#include <string.h>

#include "core/devkind.h"

#define DEVICE(id, sym) extern const struct dev_kind dev_kind_##sym;
#include "core/device_list.h"
#undef DEVICE

const struct dev_kind *const dev_kinds[] = {
#define DEVICE(id, sym) [DEV_##id] = &dev_kind_##sym,
#include "core/device_list.h"
#undef DEVICE
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
