/*
 * REST test harness: runs the real REST service (src/cli/rest.c) against the
 * scripted fake VM, so tests/rest/test_rest.py can drive it over real
 * sockets. Not a test framework: it only exposes the fake to the script.
 *
 *   rest_harness tcp HOST PORT [IDLE_MS MAX_CONNS]
 *   rest_harness unix PATH [IDLE_MS MAX_CONNS]
 *   rest_harness none            (prints "READY none" and exits 0 when
 *                                 rest_start serves nothing, as it must)
 *
 * Prints "READY <tcp port>" once listening (or "FAIL <errno>" and exits 1),
 * then answers one line per command read from stdin:
 *   state NAME   (Running, Paused, ...)  set the fake's state      -> OK
 *   settle       end a transitional state                          -> OK NAME
 *   get          the fake's state                                  -> OK NAME
 *   fail ERRNO   the next request fails with -ERRNO                -> OK
 *   requests     requests received so far                          -> REQUESTS a,b
 *   stop         rest_stop()                                       -> STOPPED
 * EOF stops the service and exits 0.
 */
#include "fake_vm_control.h"

#include "core/config.h"
#include "core/log.h"
#include "cli/rest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char inspect_json[] =
    "{\"cpus\":2,\"memory\":2048,\"devices\":[{\"kind\":\"virtio-rng\"}]}";

static int state_from_short_name(const char *name)
{
    static const char prefix[] = "VirtualMachineState";
    for (int st = VM_STATE_STARTING; st <= VM_STATE_ERROR; st++) {
        if (strcmp(vm_state_name((enum vm_state)st) + sizeof(prefix) - 1, name) == 0)
            return st;
    }
    return -1;
}

static const char *short_name(enum vm_state st)
{
    return vm_state_name(st) + strlen("VirtualMachineState");
}

int main(int argc, char **argv)
{
    struct rest_config rc = {.scheme = REST_NONE};
    struct rest_limits limits = {0};
    int extra;

    if (argc >= 4 && strcmp(argv[1], "tcp") == 0) {
        rc.scheme = REST_TCP;
        rc.host = argv[2];
        rc.port = (uint16_t)atoi(argv[3]);
        extra = 4;
    } else if (argc >= 3 && strcmp(argv[1], "unix") == 0) {
        rc.scheme = REST_UNIX;
        rc.path = argv[2];
        extra = 3;
    } else if (argc >= 2 && strcmp(argv[1], "none") == 0) {
        extra = 2; /* none://: no service, no server object */
    } else {
        fprintf(stderr, "usage: %s tcp HOST PORT | unix PATH [IDLE_MS MAX_CONNS] | none\n",
                argv[0]);
        return 2;
    }
    if (argc == extra + 2) {
        limits.idle_timeout_ms = (unsigned)atoi(argv[extra]);
        limits.max_connections = (unsigned)atoi(argv[extra + 1]);
    }

    log_init(LOG_DEBUG, -1);
    setvbuf(stdout, NULL, _IOLBF, 0);

    struct fake_vm *vm = fake_vm_new(VM_STATE_RUNNING);
    struct rest_server *srv = NULL;
    if (!vm)
        return 1;
    int r = rest_start_with_limits(&rc, fake_vm_control(vm), inspect_json, &limits, &srv);
    if (r < 0) {
        printf("FAIL %d\n", -r);
        fake_vm_free(vm);
        return 1;
    }
    if (rc.scheme == REST_NONE) {
        printf(srv ? "FAIL server object for none://\n" : "READY none\n");
        fake_vm_free(vm);
        return srv ? 1 : 0;
    }
    printf("READY %u\n", rest_tcp_port(srv));

    char line[256], arg[128];
    while (fgets(line, sizeof(line), stdin)) {
        int n;
        if (sscanf(line, "state %127s", arg) == 1) {
            int st = state_from_short_name(arg);
            if (st < 0) {
                printf("ERR unknown state %s\n", arg);
                continue;
            }
            fake_vm_set_state(vm, (enum vm_state)st);
            printf("OK\n");
        } else if (strncmp(line, "settle", 6) == 0) {
            printf("OK %s\n", short_name(fake_vm_settle(vm)));
        } else if (strncmp(line, "get", 3) == 0) {
            printf("OK %s\n", short_name(fake_vm_state(vm)));
        } else if (sscanf(line, "fail %d", &n) == 1) {
            fake_vm_fail_next(vm, -n);
            printf("OK\n");
        } else if (strncmp(line, "requests", 8) == 0) {
            char buf[4096];
            fake_vm_requests(vm, buf, sizeof(buf));
            printf("REQUESTS %s\n", buf);
        } else if (strncmp(line, "stop", 4) == 0) {
            rest_stop(srv);
            srv = NULL;
            printf("STOPPED\n");
        } else {
            printf("ERR unknown command\n");
        }
    }
    rest_stop(srv);
    fake_vm_free(vm);
    return 0;
}
