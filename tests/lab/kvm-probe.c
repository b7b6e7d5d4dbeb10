/*
 * kvm-probe: exit 0 when /dev/kvm can really run a guest, 1 otherwise.
 *
 * Opening /dev/kvm and reading KVM_GET_API_VERSION proves little (a device
 * node can exist where no VM can run, or where guests crawl). This creates a
 * VM, runs one 32-bit vCPU through a loop that stores a byte per iteration
 * across 64 KiB of guest memory, then `out` + `hlt`. It expects the
 * KVM_EXIT_IO on port 0x80 with the byte we planted, then KVM_EXIT_HLT, all
 * within --max-ms: a KVM that traps every memory access (seen on some nested
 * hosts, where Linux then needs hours to boot) fails the probe. Uses the
 * ioctls of the KVM API document, sections 4.2-4.11 and 5.
 * Used by tests/lab/run.sh (direct or nested lab) and inside the L1 host.
 *
 * usage: kvm-probe [--loops N] [--max-ms MS] [DEVICE]
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define GUEST_CODE_GPA 0x1000
#define GUEST_DATA_GPA 0x20000
#define GUEST_DATA_SIZE 0x10000
#define PROBE_PORT 0x80
#define PROBE_BYTE 0x5a

static int probe_fail(const char *what)
{
    fprintf(stderr, "kvm-probe: %s: %s\n", what, strerror(errno));
    return 1;
}

static int map_guest(int vm, int slot, uint64_t gpa, size_t size, void **host)
{
    *host = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (*host == MAP_FAILED)
        return probe_fail("mmap guest memory");
    struct kvm_userspace_memory_region region = {
        .slot = slot,
        .guest_phys_addr = gpa,
        .memory_size = size,
        .userspace_addr = (uintptr_t)*host,
    };
    if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0)
        return probe_fail("KVM_SET_USER_MEMORY_REGION");
    return 0;
}

static void on_alarm(int sig)
{
    (void)sig; /* only here to make KVM_RUN return EINTR */
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int run_probe(int kvm, uint32_t loops, uint64_t max_ms)
{
    /*
     * 32-bit flat protected mode, no paging (real mode is emulated in
     * software on hosts without unrestricted guest support, which would
     * make the timing meaningless):
     *   mov al, PROBE_BYTE; xor edi, edi; mov ecx, loops
     *   loop: mov [edi + GUEST_DATA_GPA], al; inc edi; and edi, 0xffff
     *         dec ecx; jnz loop
     *   out PROBE_PORT, al; hlt
     */
    uint8_t code[] = {0xb0, PROBE_BYTE, 0x31, 0xff, 0xb9, 0,    0,          0,    0,    0x88,
                      0x87, 0,          0,    0x02, 0x00, 0x47, 0x81,       0xe7, 0xff, 0xff,
                      0x00, 0x00,       0x49, 0x75, 0xf0, 0xe6, PROBE_PORT, 0xf4};
    memcpy(&code[5], &loops, sizeof(loops));
    int api = ioctl(kvm, KVM_GET_API_VERSION, 0);
    if (api != KVM_API_VERSION) {
        fprintf(stderr, "kvm-probe: API version %d, want %d\n", api, KVM_API_VERSION);
        return 1;
    }
    int vm = ioctl(kvm, KVM_CREATE_VM, 0);
    if (vm < 0)
        return probe_fail("KVM_CREATE_VM");
    void *code_mem, *data_mem;
    if (map_guest(vm, 0, GUEST_CODE_GPA, 0x1000, &code_mem) ||
        map_guest(vm, 1, GUEST_DATA_GPA, GUEST_DATA_SIZE, &data_mem))
        return 1;
    memcpy(code_mem, code, sizeof(code));
    int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
    if (vcpu < 0)
        return probe_fail("KVM_CREATE_VCPU");
    int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (run_size < (int)sizeof(struct kvm_run))
        return probe_fail("KVM_GET_VCPU_MMAP_SIZE");
    struct kvm_run *run = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
    if (run == MAP_FAILED)
        return probe_fail("mmap kvm_run");

    struct kvm_sregs sregs;
    if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0)
        return probe_fail("KVM_GET_SREGS");
    struct kvm_segment flat = {
        .base = 0,
        .limit = 0xffffffff,
        .selector = 0x10,
        .type = 3, /* read/write data, accessed */
        .present = 1,
        .db = 1,
        .s = 1,
        .g = 1,
    };
    sregs.ds = sregs.es = sregs.ss = sregs.fs = sregs.gs = flat;
    flat.selector = 0x8;
    flat.type = 11; /* execute/read code, accessed */
    sregs.cs = flat;
    sregs.cr0 |= 1; /* PE */
    if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0)
        return probe_fail("KVM_SET_SREGS");
    struct kvm_regs regs = {.rip = GUEST_CODE_GPA, .rflags = 0x2};
    if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0)
        return probe_fail("KVM_SET_REGS");

    int saw_out = 0;
    uint64_t start = now_ms();
    /* A stuck or crawling vCPU must not hang the caller. */
    struct sigaction sa = {.sa_handler = on_alarm};
    sigaction(SIGALRM, &sa, NULL);
    uint64_t limit_us = (uint64_t)max_ms * 1000 + 100000;
    struct itimerval limit = {.it_value = {.tv_sec = (time_t)(limit_us / 1000000),
                                           .tv_usec = (suseconds_t)(limit_us % 1000000)}};
    setitimer(ITIMER_REAL, &limit, NULL);
    for (int exits = 0; exits < 16; exits++) {
        if (ioctl(vcpu, KVM_RUN, 0) < 0) {
            if (errno == EINTR) {
                fprintf(stderr, "kvm-probe: %u guest loops unfinished after %llu ms: too slow\n",
                        loops, (unsigned long long)(now_ms() - start));
                return 1;
            }
            return probe_fail("KVM_RUN");
        }
        switch (run->exit_reason) {
        case KVM_EXIT_IO:
            if (run->io.direction == KVM_EXIT_IO_OUT && run->io.port == PROBE_PORT &&
                run->io.size == 1 && run->io.data_offset + 1 <= (uint64_t)run_size &&
                ((uint8_t *)run)[run->io.data_offset] == PROBE_BYTE)
                saw_out = 1;
            break;
        case KVM_EXIT_HLT: {
            uint64_t took = now_ms() - start;
            if (!saw_out) {
                fprintf(stderr, "kvm-probe: halted without the expected port write\n");
                return 1;
            }
            if (((uint8_t *)data_mem)[0] != PROBE_BYTE) {
                fprintf(stderr, "kvm-probe: guest stores did not reach memory\n");
                return 1;
            }
            if (took > max_ms) {
                fprintf(stderr, "kvm-probe: %u guest loops took %llu ms (limit %llu): too slow\n",
                        loops, (unsigned long long)took, (unsigned long long)max_ms);
                return 1;
            }
            printf("kvm-probe: %u guest loops in %llu ms\n", loops, (unsigned long long)took);
            return 0;
        }
        default:
            fprintf(stderr, "kvm-probe: unexpected exit reason %u\n", run->exit_reason);
            return 1;
        }
    }
    fprintf(stderr, "kvm-probe: guest never halted\n");
    return 1;
}

static int parse_u32(const char *text, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long value = strtoul(text, &end, 10);
    if (errno || end == text || *end || value == 0 || value > UINT32_MAX)
        return -EINVAL;
    *out = (uint32_t)value;
    return 0;
}

int main(int argc, char **argv)
{
    const char *path = "/dev/kvm";
    uint32_t loops = 5000000, max_ms = 2000;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--loops") && i + 1 < argc) {
            if (parse_u32(argv[++i], &loops))
                goto usage;
        } else if (!strcmp(argv[i], "--max-ms") && i + 1 < argc) {
            if (parse_u32(argv[++i], &max_ms))
                goto usage;
        } else if (argv[i][0] != '-') {
            path = argv[i];
        } else {
            goto usage;
        }
    }
    int kvm = open(path, O_RDWR | O_CLOEXEC);
    if (kvm < 0) {
        fprintf(stderr, "kvm-probe: open %s: %s\n", path, strerror(errno));
        return 1;
    }
    int rc = run_probe(kvm, loops, max_ms);
    if (rc == 0)
        printf("kvm-probe: %s runs guests\n", path);
    return rc;
usage:
    fprintf(stderr, "usage: kvm-probe [--loops N] [--max-ms MS] [DEVICE]\n");
    return 2;
}
