/*
 * The device table (core/devkind.h, src/devices/table.c): one entry per
 * enum dev_type in enum order, unique names, lookups; and docs/krunkit.1
 * agreeing with it: the DEVICES section documents every kind and no other,
 * the CONFIGURATION JSON section lists every kind's keys, and the kinds
 * this VMM cannot build (no create) are exactly those the man page says
 * are refused at start.
 */
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/config.h"
#include "core/devkind.h"

#define MAX_NAMES 32

struct names {
    char *v[MAX_NAMES];
    size_t n;
};

static void names_add(struct names *s, const char *p, size_t len)
{
    for (size_t i = 0; i < s->n; i++)
        if (strlen(s->v[i]) == len && !strncmp(s->v[i], p, len))
            return;
    assert_true(s->n < MAX_NAMES);
    s->v[s->n++] = strndup(p, len);
}

static bool names_has(const struct names *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->v[i], name))
            return true;
    return false;
}

static void names_free(struct names *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    s->n = 0;
}

/*
 * Every "virtio-NAME" in line (roff writes the hyphen as \-), as
 * "virtio-NAME"; bare_only skips forms with options ("virtio-net,nat"
 * names one form of a kind, not the kind).
 */
static void scan_names(const char *line, struct names *out, bool bare_only)
{
    for (const char *p = line; (p = strstr(p, "virtio")) != NULL;) {
        p += strlen("virtio");
        if (p[0] == '\\' && p[1] == '-')
            p += 2;
        else if (p[0] == '-')
            p += 1;
        else
            continue;
        const char *s = p;
        while (*p >= 'a' && *p <= 'z')
            p++;
        if (p == s || (bare_only && p[0] == ',' && p[1] >= 'a' && p[1] <= 'z'))
            continue;
        char buf[64];
        int n = snprintf(buf, sizeof(buf), "virtio-%.*s", (int)(p - s), s);
        names_add(out, buf, (size_t)n);
    }
}

static char **read_lines(size_t *count)
{
    const char *dir = getenv("KRUNKIT_SRCDIR");
    char path[4096];
    snprintf(path, sizeof(path), "%s/docs/krunkit.1", dir ? dir : ".");
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char **lines = NULL;
    size_t n = 0;
    char buf[4096];
    while (fgets(buf, sizeof(buf), f)) {
        buf[strcspn(buf, "\n")] = '\0';
        char **grown = realloc(lines, (n + 1) * sizeof(*lines));
        assert_non_null(grown);
        lines = grown;
        lines[n++] = strdup(buf);
    }
    fclose(f);
    *count = n;
    return lines;
}

static size_t find_section(char **lines, size_t n, const char *sh)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(lines[i], sh))
            return i;
    fail_msg("docs/krunkit.1 has no \"%s\"", sh);
    return 0;
}

static bool is_section(const char *line)
{
    return !strncmp(line, ".SH ", 4);
}

static void test_table_order_and_lookups(void **state)
{
    (void)state;
    assert_true(dev_kinds_count > 0);
    for (size_t i = 0; i < dev_kinds_count; i++) {
        const struct dev_kind *k = dev_kinds[i];
        assert_int_equal(k->type, (enum dev_type)i);
        assert_ptr_equal(dev_kind_of(k->type), k);
        assert_ptr_equal(dev_kind_find(k->name), k);
        assert_string_equal(dev_type_name(k->type), k->name);
        assert_int_equal(strncmp(k->name, "virtio-", 7), 0);
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(dev_kinds[j]->name, k->name);
        /* A kind that owns strings frees them; one that parses nothing owns none. */
        if (!k->parse)
            assert_null(k->free);
    }
    assert_null(dev_kind_find("virtio-nope"));
    assert_null(dev_kind_find(""));
}

/* The .TP items of DEVICES name every kind, and nothing else. */
static void test_man_devices_section(void **state)
{
    (void)state;
    size_t n;
    char **lines = read_lines(&n);
    size_t start = find_section(lines, n, ".SH DEVICES");
    struct names items = {0}, refused = {0};
    bool in_trailer = false;
    for (size_t i = start + 1; i < n && !is_section(lines[i]); i++) {
        if (!strcmp(lines[i - 1], ".TP"))
            scan_names(lines[i], &items, false);
        if (!strcmp(lines[i], ".PP"))
            in_trailer = true; /* the paragraph after the list: what start refuses */
        else if (in_trailer)
            scan_names(lines[i], &refused, true);
    }
    for (size_t i = 0; i < dev_kinds_count; i++) {
        const struct dev_kind *k = dev_kinds[i];
        if (!names_has(&items, k->name))
            fail_msg("docs/krunkit.1 DEVICES does not document %s", k->name);
        if (!k->create && !names_has(&refused, k->name))
            fail_msg("docs/krunkit.1 does not say %s is refused at start", k->name);
        if (k->create && names_has(&refused, k->name))
            fail_msg("docs/krunkit.1 says %s is refused at start, but it is built", k->name);
    }
    for (size_t i = 0; i < items.n; i++)
        if (!dev_kind_find(items.v[i]))
            fail_msg("docs/krunkit.1 DEVICES documents %s, which the table lacks", items.v[i]);
    names_free(&items);
    names_free(&refused);
    for (size_t i = 0; i < n; i++)
        free(lines[i]);
    free(lines);
}

/* CONFIGURATION JSON: one "virtio-x[, virtio-y]: keys" line per kind. */
static void test_man_json_section(void **state)
{
    (void)state;
    size_t n;
    char **lines = read_lines(&n);
    size_t start = find_section(lines, n, ".SH CONFIGURATION JSON");
    struct names listed = {0};
    for (size_t i = start + 1; i < n && !is_section(lines[i]); i++) {
        const char *colon = strchr(lines[i], ':');
        if (strncmp(lines[i], "virtio-", 7) || !colon)
            continue;
        char *head = strndup(lines[i], (size_t)(colon - lines[i]));
        scan_names(head, &listed, false);
        free(head);
    }
    for (size_t i = 0; i < dev_kinds_count; i++)
        if (!names_has(&listed, dev_kinds[i]->name))
            fail_msg("docs/krunkit.1 CONFIGURATION JSON does not list %s", dev_kinds[i]->name);
    for (size_t i = 0; i < listed.n; i++)
        if (!dev_kind_find(listed.v[i]))
            fail_msg("docs/krunkit.1 CONFIGURATION JSON lists %s, which the table lacks",
                     listed.v[i]);
    names_free(&listed);
    for (size_t i = 0; i < n; i++)
        free(lines[i]);
    free(lines);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_order_and_lookups),
        cmocka_unit_test(test_man_devices_section),
        cmocka_unit_test(test_man_json_section),
    };
    return cmocka_run_group_tests_name("devkind", tests, NULL, NULL);
}
