/*
 * The helpers core/config.c builds --print-config's JSON with, shared with
 * the device descriptors (src/devices/) that add each device's keys.
 * Builders carry on past a failed allocation and report ENOMEM at the end.
 */
#ifndef KRUNKIT_CORE_CONFIG_JSON_H
#define KRUNKIT_CORE_CONFIG_JSON_H

#include <jansson.h>
#include <stdbool.h>

struct jbuild {
    bool oom;
};

/* obj[key] = val (val is taken; NULL or a failed set marks b->oom). */
void jset(struct jbuild *b, json_t *obj, const char *key, json_t *val);
/* A JSON string, null for NULL; bytes that are not UTF-8 become U+FFFD. */
json_t *jstr(const char *s);

#endif
