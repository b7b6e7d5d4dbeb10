/*
 * libFuzzer target for the command-line parser: the input is argv, one
 * argument per NUL-terminated piece. Every accepted command line must also
 * turn into JSON; nothing may leak or read out of bounds (ASan, UBSan).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "core/config.h"

#define MAX_ARGS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    char *argv[MAX_ARGS + 1];
    int argc = 0;
    argv[argc++] = "krunkit";
    for (char *p = buf; p < buf + size && argc < MAX_ARGS; p += strlen(p) + 1)
        argv[argc++] = p;
    argv[argc] = NULL;

    struct vm_config cfg;
    enum cli_action act;
    char err[256];
    if (cli_parse(argc, argv, &cfg, &act, err, sizeof(err)) == 0) {
        char *json = vm_config_to_json(&cfg);
        if (!json)
            abort();
        free(json);
        vm_config_free(&cfg);
    } else if (!err[0]) {
        abort(); /* every failure explains itself */
    }
    free(buf);
    return 0;
}
