/*
 * What the boot vCPU of the arm64 machine starts (arch_boot_* of
 * vmm/arch.h): a Linux kernel loaded directly, as Documentation/arch/
 * arm64/booting.rst describes the protocol:
 *
 *   1. RAM is set up (the core) and described by the device tree;
 *   2. the device tree (fdt.c) goes on an 8-byte boundary, at most 2 MiB,
 *      here alone in a 2 MiB aligned region (booting.rst: it is mapped
 *      with 2 MiB blocks, so nothing needing other attributes may share
 *      its region);
 *   3. the kernel Image (gzip'ed ones are inflated first) goes at
 *      text_offset from a 2 MiB aligned base, with image_size bytes of
 *      room; the initrd after it (image.c);
 *   4. the boot vCPU starts at the Image's first byte with x0 = the DTB's
 *      address, x1-x3 = 0, in EL1h with interrupts masked and the MMU off
 *      (KVM's reset state); the others wait, powered off, for PSCI.
 *
 * EFI boot (AAVMF from the flash at 0) is not implemented yet: arch_create
 * refuses it by name before anything is built.
 *
 * Kernel and initrd are read through host_files (opened once, re-read from
 * the same descriptor at a guest reboot).
 */
#include "arch/arm64/arm64.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arch/arm64/fdt.h"
#include "arch/arm64/image.h"
#include "core/log.h"
#include "vmm/host_files.h"
#include "vmm/memory.h"
#include "vmm/vm_internal.h"

/* A whole file in a malloc'ed buffer (the kernel: it may need inflating). */
static int read_file(const char *path, const char *what, uint8_t **buf, size_t *len)
{
    *buf = NULL;
    *len = 0;
    int fd = host_file_open(path, O_RDONLY);
    if (fd < 0) {
        int err = -errno;
        log_error("%s %s: %m", what, path);
        return err;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        log_error("%s %s: not a regular file", what, path);
        close(fd);
        return -EINVAL;
    }
    size_t size = (size_t)st.st_size;
    uint8_t *b = malloc(size ? size : 1);
    if (!b) {
        close(fd);
        return -ENOMEM;
    }
    for (size_t done = 0; done < size;) {
        ssize_t n = pread(fd, b + done, size - done, (off_t)done);
        if (n <= 0) {
            int err = n < 0 ? -errno : -EIO;
            log_error("%s %s: short read", what, path);
            free(b);
            close(fd);
            return err;
        }
        done += (size_t)n;
    }
    close(fd);
    *buf = b;
    *len = size;
    return 0;
}

static int file_size(const char *path, const char *what, uint64_t *size)
{
    int fd = host_file_open(path, O_RDONLY);
    if (fd < 0) {
        int err = -errno;
        log_error("%s %s: %m", what, path);
        return err;
    }
    struct stat st;
    int rc = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? 0 : -EINVAL;
    if (rc)
        log_error("%s %s: not a regular file", what, path);
    else
        *size = (uint64_t)st.st_size;
    close(fd);
    return rc;
}

/* The kernel as an Image: gzip'ed ones are inflated. *img is malloc'ed. */
static int load_image(const char *path, uint8_t **img, size_t *len, struct arm64_image *im)
{
    int rc = read_file(path, "kernel", img, len);
    if (rc)
        return rc;
    if (arm64_image_is_gzip(*img, *len)) {
        uint8_t *raw;
        size_t raw_len;
        rc = arm64_image_gunzip(*img, *len, &raw, &raw_len);
        free(*img);
        *img = NULL;
        if (rc) {
            log_error("kernel %s: cannot inflate the gzip'ed Image: %s", path, strerror(-rc));
            return rc;
        }
        *img = raw;
        *len = raw_len;
    }
    rc = arm64_image_parse(*img, *len, im);
    if (rc == -ENOTSUP)
        log_error("kernel %s: a big-endian arm64 kernel; this machine runs little-endian ones",
                  path);
    else if (rc)
        log_error("kernel %s: not an arm64 Linux Image (no \"ARM\\x64\" magic at offset 56; "
                  "EFI zboot and other wrappers are not supported)",
                  path);
    if (rc) {
        free(*img);
        *img = NULL;
    }
    return rc;
}

static int load_initrd(const struct guest_mem *gm, const char *path, uint64_t gpa, uint64_t size)
{
    uint8_t *dst = gm_ptr(gm, gpa, size);
    if (!dst)
        return -ENOMEM;
    int fd = host_file_open(path, O_RDONLY);
    if (fd < 0) {
        int err = -errno;
        log_error("initrd %s: %m", path);
        return err;
    }
    for (uint64_t done = 0; done < size;) {
        ssize_t n = pread(fd, dst + done, size - done, (off_t)done);
        if (n <= 0) {
            log_error("initrd %s: short read", path);
            close(fd);
            return -EIO;
        }
        done += (uint64_t)n;
    }
    close(fd);
    return 0;
}

static int build_fdt(struct vmm *vmm, uint64_t initrd, uint64_t initrd_size, uint64_t seed,
                     void **blob, size_t *size)
{
    struct arm64_fdt_config c = {
        .ram_base = VIRT_RAM_BASE,
        .ram_size = vmm->mem.ram_size,
        .ncpus = vmm->ncpus,
        .mpidr = vmm->arch->mpidr,
        .its = true,
        .mmio64_base = vmm->pci.mmio64_next,
        .mmio64_size = vmm->pci.mmio64_end - vmm->pci.mmio64_next,
        .cmdline = vmm->cfg->boot.cmdline,
        .initrd_start = initrd,
        .initrd_end = initrd + initrd_size,
        .kaslr_seed = seed,
        .fw_cfg = true,
    };
    int rc = arm64_fdt_build(&c, blob, size);
    if (rc)
        log_error("arm64: cannot build the device tree: %s", strerror(-rc));
    return rc;
}

int arch_boot_load(struct vmm *vmm)
{
    const struct boot_config *b = &vmm->cfg->boot;
    uint8_t *img = NULL;
    size_t img_len = 0;
    void *dtb = NULL;
    size_t dtb_size = 0;
    struct arm64_image im;
    uint64_t initrd_size = 0;
    if (!b->kernel) {
        log_error("arm64: a direct boot needs a kernel (--kernel)");
        return -EINVAL;
    }
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != sizeof(seed))
        seed = 0; /* no seed: the kernel only says KASLR is off */
    int rc = load_image(b->kernel, &img, &img_len, &im);
    if (rc == 0 && b->initrd)
        rc = file_size(b->initrd, "initrd", &initrd_size);
    /* The tree's size does not depend on where the initrd goes: build it once to size it. */
    if (rc == 0)
        rc = build_fdt(vmm, 0, initrd_size ? 1 : 0, seed, &dtb, &dtb_size);
    struct arm64_boot_layout l = {0};
    if (rc == 0) {
        rc = arm64_boot_layout(&im, VIRT_RAM_BASE, vmm->mem.ram_size, initrd_size, dtb_size, &l);
        if (rc)
            log_error("kernel %s%s%s does not fit in %llu MiB of RAM", b->kernel,
                      b->initrd ? " with initrd " : "", b->initrd ? b->initrd : "",
                      (unsigned long long)vmm->cfg->memory_mib);
    }
    if (rc == 0 && !gm_write(&vmm->mem, l.kernel, img, img_len))
        rc = -ENOMEM;
    if (rc == 0 && initrd_size)
        rc = load_initrd(&vmm->mem, b->initrd, l.initrd, initrd_size);
    if (rc == 0) {
        free(dtb);
        dtb = NULL;
        rc = build_fdt(vmm, l.initrd, initrd_size, seed, &dtb, &dtb_size);
    }
    if (rc == 0 && !gm_write(&vmm->mem, l.dtb, dtb, dtb_size))
        rc = -ENOMEM;
    if (rc == 0)
        rc = arm64_vcpu_setup_linux(&vmm->vcpus[0], l.kernel, l.dtb);
    if (rc == 0)
        log_debug("arm64: kernel at 0x%llx (+0x%llx), initrd at 0x%llx (+0x%llx), DTB at 0x%llx "
                  "(%zu bytes)",
                  (unsigned long long)l.kernel, (unsigned long long)im.image_size,
                  (unsigned long long)l.initrd, (unsigned long long)initrd_size,
                  (unsigned long long)l.dtb, dtb_size);
    free(img);
    free(dtb);
    return rc;
}

void arch_boot_unload(struct vmm *vmm)
{
    (void)vmm; /* a direct boot keeps nothing between boots */
}
