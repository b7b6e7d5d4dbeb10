/*
 * --device virtio-gpu: parsed and shown by --print-config (docs/krunkit.1,
 * DEVICES), but this VMM has no model for it: no create, so the start
 * refuses it by name.
 */
#include "cli/devopts.h"
#include "core/config_json.h"
#include "core/devkind.h"

static int parse(const struct optctx *c, struct kvlist *l, struct dev_config *d)
{
    struct dev_gpu *g = &d->gpu;
    g->width = 800;
    g->height = 600;
    int r = kv_u32(c, l, "width", 1, 16384, &g->width);
    if (r < 0)
        return r;
    r = kv_u32(c, l, "height", 1, 16384, &g->height);
    return r < 0 ? r : 0;
}

static void to_json(struct jbuild *b, json_t *o, const struct dev_config *d)
{
    jset(b, o, "width", json_integer(d->gpu.width));
    jset(b, o, "height", json_integer(d->gpu.height));
}

const struct dev_kind dev_kind_gpu = {
    .name = "virtio-gpu",
    .type = DEV_GPU,
    .parse = parse,
    .to_json = to_json,
};
