/*
 * --device virtio-input: parsed and shown by --print-config (docs/krunkit.1,
 * DEVICES), but this VMM has no model for it: no create, so the start
 * refuses it by name. Its options live on dev_config.priv (input.h).
 */
#include "devices/input.h"

#include <errno.h>
#include <stdlib.h>

#include "cli/devopts.h"
#include "core/config_json.h"
#include "core/devkind.h"

static int parse(const struct optctx *c, struct kvlist *l, struct dev_config *d)
{
    bool kbd = false, ptr = false;
    int r = kv_bool(c, l, "keyboard", &kbd);
    if (r < 0)
        return r;
    r = kv_bool(c, l, "pointing", &ptr);
    if (r < 0)
        return r;
    if (kbd + ptr != 1)
        return opt_error(c, "virtio-input needs exactly one of keyboard or pointing");
    struct dev_input *in = calloc(1, sizeof(*in));
    if (!in) {
        opt_error(c, "out of memory");
        return -ENOMEM;
    }
    in->kind = kbd ? INPUT_KEYBOARD : INPUT_POINTING;
    d->priv = in; /* freed with the config (dev_config_free) */
    return 0;
}

static void to_json(struct jbuild *b, json_t *o, const struct dev_config *d)
{
    const struct dev_input *in = dev_input_of(d);
    jset(b, o, "inputType", json_string(in->kind == INPUT_KEYBOARD ? "keyboard" : "pointing"));
}

const struct dev_kind dev_kind_input = {
    .name = "virtio-input",
    .type = DEV_INPUT,
    .parse = parse,
    .to_json = to_json,
};
