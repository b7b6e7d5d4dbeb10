/*
 * The krunkit/vfkit command line: a pure parser (argv in, struct vm_config
 * or one error message out) and a separate pre-boot validation against the
 * filesystem. Neither prints, exits or creates anything.
 * Grammar: docs/krunkit.1; sources: krunkit's docs/usage.md and the client
 * command lines in CLIENTS.md.
 */
#ifndef KRUNKIT_CLI_ARGS_H
#define KRUNKIT_CLI_ARGS_H

#include <stddef.h>
#include <stdint.h>

#include "core/config.h"

/* KRUNKIT_VERSION is defined by the build: build/version.h, from scripts/version.sh. */

/*
 * Parse argv[1..argc-1]. cfg is initialised here (the caller need not call
 * vm_config_init) and must be released with vm_config_free on success.
 * --help and --version end parsing where they appear and set *action;
 * the remaining arguments are then not looked at.
 * Returns 0, or -EINVAL/-ENOMEM with one message in err that names the
 * option and the offending value; on error cfg holds nothing to free.
 */
int cli_parse(int argc, char **argv, struct vm_config *cfg, enum cli_action *action, char *err,
              size_t errlen);

/*
 * --restful-uri: none://, tcp://HOST:PORT (HOST may be [IPv6]) or
 * unix:///ABSOLUTE/PATH fitting sun_path. Fills rc (strings heap-allocated).
 */
int cli_parse_restful_uri(const char *uri, struct rest_config *rc, char *err, size_t errlen);

/*
 * Everything that can be checked before boot without creating anything:
 * image files open (read-write unless readonly), shared directories,
 * firmware/kernel/initrd readable, inherited fds open and sockets, MAC
 * addresses valid unicast, parent directories of files created at start
 * (pidfile, log file, serial log, REST and listening vsock sockets,
 * variable store with create), memory not above the host's RAM.
 * Returns 0 or -errno with one message in err.
 */
int cli_validate(const struct vm_config *cfg, char *err, size_t errlen);

/* The memory part of cli_validate, with the host's RAM as a parameter. */
int cli_check_memory(uint64_t memory_mib, uint64_t host_mib, char *err, size_t errlen);

/* Installed RAM in MiB (sysinfo); 0 when unknown. */
uint64_t cli_host_memory_mib(void);

/* --help text (ends with a newline). */
const char *cli_usage(void);

#endif
