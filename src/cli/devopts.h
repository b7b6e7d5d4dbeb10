/*
 * The value grammar shared by --device, --bootloader and --timesync:
 * comma-separated items, each `key=value` or a bare flag, as krunkit and
 * vfkit write them (docs/krunkit.1, "OPTION VALUES").
 *
 * A value may be quoted with "..." (backslash escapes " and \) or '...'
 * (literal) so that it can hold commas, e.g. cmdline="console=ttyS0,115200".
 * A key given twice, an empty item, an empty key or an empty value is an
 * error; so is any key left unconsumed when the option has been parsed.
 */
#ifndef KRUNKIT_CLI_DEVOPTS_H
#define KRUNKIT_CLI_DEVOPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"

/* Where an error is reported and what it names: the option and its value. */
struct optctx {
    const char *opt; /* "--device" */
    const char *arg; /* the option's value as given */
    char *err;
    size_t errlen;
};

/* Formats `OPT "ARG": <message>` into c->err; always returns -EINVAL. */
int opt_error(const struct optctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

struct kvitem {
    char *key;
    char *value; /* NULL for a bare flag */
    bool used;
};

struct kvlist {
    struct kvitem *items;
    size_t n;
};

/*
 * rest_key (may be NULL) names a key whose unquoted value runs to the end of
 * s, commas included: a kernel command line such as
 * cmdline=console=ttyS0,115200 arrives that way once the shell has removed
 * the quotes, so it must come last unless it is still quoted.
 */
int kvlist_parse(const struct optctx *c, const char *s, const char *rest_key, struct kvlist *out);
void kvlist_free(struct kvlist *l);

/*
 * Accessors mark the item used. Each returns 1 when the key was present,
 * 0 when absent and -EINVAL (message in c->err) when malformed.
 */
int kv_string(const struct optctx *c, struct kvlist *l, const char *key, char **out);
int kv_bool(const struct optctx *c, struct kvlist *l, const char *key, bool *out);
int kv_u32(const struct optctx *c, struct kvlist *l, const char *key, uint32_t min, uint32_t max,
           uint32_t *out);
/* The item for key, marked used, or NULL. */
struct kvitem *kv_find(struct kvlist *l, const char *key);
/* Error naming the first item no accessor consumed. */
int kv_reject_unused(const struct optctx *c, const struct kvlist *l);

/* Strict decimal: digits only, no sign or spaces; -ERANGE on overflow. */
int parse_u64(const char *s, uint64_t *out);
/* true/false/on/off; -EINVAL otherwise. */
int parse_bool(const char *s, bool *out);
/* xx:xx:xx:xx:xx:xx (hex digits, either case). */
int parse_mac(const char *s, uint8_t mac[6]);

/* Longest path that fits sockaddr_un.sun_path with its NUL. */
size_t sun_path_max(void);
/* -EINVAL (message naming key) when path does not fit a UNIX socket address. */
int opt_check_socket_path(const struct optctx *c, const char *key, const char *path);

/*
 * --device VALUE appended to cfg->devices, checked against the devices
 * already there (unique vsock ports and mount tags).
 */
int parse_device(const char *value, struct vm_config *cfg, char *err, size_t errlen);
/* --bootloader VALUE into cfg->boot (which must still be BOOT_DEFAULT). */
int parse_bootloader(const char *value, struct vm_config *cfg, char *err, size_t errlen);
/* --timesync VALUE: vsockPort=N. */
int parse_timesync(const char *value, struct vm_config *cfg, char *err, size_t errlen);

/* Largest number of --device options accepted (bounds the allocation). */
#define CLI_MAX_DEVICES 128
/* Guest vsock ports usable by a device: 0xFFFFFFFF is VMADDR_PORT_ANY. */
#define VSOCK_PORT_MAX 0xFFFFFFFEu
#define VIRTIO_BLK_ID_MAX 20

#endif
