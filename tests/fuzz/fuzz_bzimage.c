/*
 * libFuzzer target for the bzImage loader (src/arch/x86/linux_boot.c,
 * Documentation/arch/x86/boot.rst): the input is the kernel file. It is
 * checked with linux_boot_check_header, then written to a memfd and loaded
 * with linux_boot_load into a small guest RAM, with an initrd when byte 0
 * is odd and a command line of byte 1 characters (both bytes sit in the
 * boot sector, which the loader ignores). Whatever the header says, the
 * loader must stay inside guest RAM and, when it succeeds, describe a
 * layout that makes sense.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "arch/x86/e820.h"
#include "arch/x86/linux_boot.h"
#include "core/log.h"

#define RAM_SIZE (20u << 20) /* room for a kernel at the default 16 MiB */
#define INITRD_SIZE 8192u

static struct guest_mem gm;
static struct e820_map e820;
static int kernel_fd = -1;
static char kernel_path[64], initrd_path[64];
static char cmdline[256];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    log_init(LOG_OFF, -1);
    uint8_t *ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    kernel_fd = memfd_create("fuzz-bzimage", MFD_CLOEXEC);
    int initrd_fd = memfd_create("fuzz-initrd", MFD_CLOEXEC);
    if (ram == MAP_FAILED || kernel_fd < 0 || initrd_fd < 0 || ftruncate(initrd_fd, INITRD_SIZE))
        abort();
    gm = (struct guest_mem){.nr_regions = 1, .ram_size = RAM_SIZE};
    gm.regions[0] = (struct guest_mem_region){.gpa = 0, .size = RAM_SIZE, .host = ram};
    if (e820_build(&e820, &gm))
        abort();
    snprintf(kernel_path, sizeof(kernel_path), "/proc/self/fd/%d", kernel_fd);
    snprintf(initrd_path, sizeof(initrd_path), "/proc/self/fd/%d", initrd_fd);
    return 0;
}

static uint32_t rd32(const uint8_t *p)
{
    return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int header_ok = linux_boot_check_header(data, size, "fuzz") == 0;
    if (size < 2)
        return 0;
    if (ftruncate(kernel_fd, 0) || pwrite(kernel_fd, data, size, 0) != (ssize_t)size)
        abort();
    bool with_initrd = data[0] & 1;
    memset(cmdline, 'k', data[1]);
    cmdline[data[1]] = 0;

    struct linux_boot b;
    int rc = linux_boot_load(&gm, kernel_path, with_initrd ? initrd_path : NULL, cmdline, &e820,
                             0xe0000, &b);
    if (rc != 0)
        return 0;
    /* A file that loads has a header that passes the check. */
    if (!header_ok)
        abort();
    /* The layout handed to the vCPU must be inside RAM and consistent. */
    if (b.entry != b.kernel_addr + 0x200 || b.kernel_addr < (1u << 20) || b.kernel_end > RAM_SIZE ||
        b.kernel_end <= b.kernel_addr || b.zero_page != BOOT_ZERO_PAGE_ADDR)
        abort();
    if (with_initrd && (b.initrd_size != INITRD_SIZE || b.initrd_addr < b.kernel_end ||
                        b.initrd_addr + b.initrd_size > RAM_SIZE || (b.initrd_addr & 0xfff)))
        abort();
    const uint8_t *zp = gm_ptr(&gm, BOOT_ZERO_PAGE_ADDR, 4096);
    if (zp[0x210] != 0xff || rd32(zp + 0x228) != BOOT_CMDLINE_ADDR ||
        strcmp((const char *)gm_ptr(&gm, BOOT_CMDLINE_ADDR, 1), cmdline) != 0 ||
        zp[0x1e8] != e820.nr)
        abort();
    return 0;
}
