/*
 * The kinds of --device, as one table (src/devices/table.c) that every
 * layer walks instead of switching on enum dev_type: the option parser
 * (cli/devopts.c), host validation (cli/validate.c), the config's JSON and
 * free (core/config.c), the man page check (tests/unit/test_devkind.c) and
 * the board (vmm/vm_devices.c).
 *
 * Layering: this header is core's and names the other layers' types only
 * as incomplete structs, so core includes nothing of cli/, vmm/ or
 * virtio/. The descriptors (src/devices/<kind>.c) are the one place that
 * sees all of them: each ties a command-line kind to its config struct and
 * to its virtio model's create (src/virtio/). Dependencies point one way:
 * devices/ -> cli/, core/, vmm/, virtio/; those reach devices/ only through
 * this interface.
 *
 * A new device is one file, src/devices/<x>.c, with its model and its
 * descriptor (options, checks, JSON, the host side it opens once, create;
 * its options in a struct of its own, hung on dev_config.priv), plus its
 * line in core/device_list.h, which makes both its enum dev_type value and
 * its table entry (src/devices/rng.c is that shape). The larger models
 * keep theirs in src/virtio/<x>.c, and their config structs in
 * core/config.h's union; the man page lists every kind (test_devkind).
 */
#ifndef KRUNKIT_CORE_DEVKIND_H
#define KRUNKIT_CORE_DEVKIND_H

#include <stdbool.h>
#include <stddef.h>

#include "core/config.h"

struct optctx;
struct kvlist;
struct jbuild;
struct json_t;
struct machine;
struct dev_backend;
struct virtio_dev;

struct dev_kind {
    const char *name; /* as on the command line: "virtio-blk" */
    enum dev_type type;
    /*
     * Fill d from the option's items (the kind's own item already taken);
     * -EINVAL with the message in c->err. NULL: the kind takes no keys.
     */
    int (*parse)(const struct optctx *c, struct kvlist *l, struct dev_config *d);
    /* d, being added, clashes with `other`, an earlier device of this kind. NULL: never. */
    int (*conflicts)(const struct optctx *c, const struct dev_config *other,
                     const struct dev_config *d);
    /* Pre-boot checks against this host, opening nothing for good. NULL: none. */
    int (*validate)(const struct dev_config *d, char *err, size_t errlen);
    /* The keys after "kind" in --print-config and GET /vm/inspect. NULL: none. */
    void (*to_json)(struct jbuild *b, struct json_t *obj, const struct dev_config *d);
    /* Free the strings d owns. NULL: it owns none. */
    void (*free)(struct dev_config *d);
    /*
     * Open the device's host side into b, once per VM (kept across guest
     * reboots: vmm/backends.h); cfg is the whole config, timesync_port the
     * --timesync vsock port or NULL; -errno. NULL: nothing of the host's.
     */
    int (*open)(const struct vm_config *cfg, const struct dev_vsock *timesync_port,
                struct dev_backend *b);
    /* Close what open made (failed_start: also remove files it created). NULL: nothing. */
    void (*close)(struct dev_backend *b, bool failed_start);
    /*
     * Build the device for one boot on m, over the host side the VM opened
     * once (b). NULL: parsed and shown, but this VMM refuses it at start.
     */
    int (*create)(struct machine *m, struct dev_backend *b, struct virtio_dev **out);
};

/* Every kind, in the order the option parser lists them in its errors. */
extern const struct dev_kind *const dev_kinds[];
extern const size_t dev_kinds_count;

/* The descriptor of a type (never NULL for a valid type). */
const struct dev_kind *dev_kind_of(enum dev_type type);
/* The descriptor named `name` on the command line, or NULL. */
const struct dev_kind *dev_kind_find(const char *name);

#endif
