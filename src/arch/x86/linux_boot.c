/*
 * bzImage loader for the Linux x86 64-bit boot protocol
 * (Documentation/arch/x86/boot.rst; zero page layout in zero-page.rst).
 *
 * The file starts with the real-mode setup (setup_sects + 1 sectors) whose
 * setup header (at 0x1f1) is copied into the zero page; the protected-mode
 * kernel after it is loaded at its preferred address and entered at +0x200
 * in long mode with identity-mapped page tables covering the low 4 GiB.
 */
#include "arch/x86/linux_boot.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "vmm/host_files.h"

/* Setup header / zero page offsets. */
#define HDR_SETUP_SECTS 0x1f1
#define HDR_BOOT_FLAG 0x1fe
#define HDR_JUMP 0x200
#define HDR_MAGIC 0x202
#define HDR_VERSION 0x206
#define HDR_TYPE_OF_LOADER 0x210
#define HDR_LOADFLAGS 0x211
#define HDR_RAMDISK_IMAGE 0x218
#define HDR_RAMDISK_SIZE 0x21c
#define HDR_HEAP_END_PTR 0x224
#define HDR_CMD_LINE_PTR 0x228
#define HDR_INITRD_ADDR_MAX 0x22c
#define HDR_KERNEL_ALIGNMENT 0x230
#define HDR_RELOCATABLE 0x234
#define HDR_XLOADFLAGS 0x236
#define HDR_CMDLINE_SIZE 0x238
#define HDR_PREF_ADDRESS 0x258
#define HDR_INIT_SIZE 0x260
#define ZP_ACPI_RSDP_ADDR 0x070
#define ZP_EXT_RAMDISK_IMAGE 0x0c0
#define ZP_EXT_RAMDISK_SIZE 0x0c4
#define ZP_E820_ENTRIES 0x1e8
#define ZP_E820_TABLE 0x2d0
#define ZP_E820_MAX 128

#define LOADED_HIGH 0x01
#define CAN_USE_HEAP 0x80
#define XLF_KERNEL_64 0x01
#define BOOT_PROTO_MIN 0x0206 /* 2.06: cmdline_size; 64-bit entry needs 2.12 (xloadflags) */

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}
static uint32_t rd32(const uint8_t *p)
{
    return rd16(p) | (uint32_t)rd16(p + 2) << 16;
}
static uint64_t rd64(const uint8_t *p)
{
    return rd32(p) | (uint64_t)rd32(p + 4) << 32;
}
static void wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static void wr32(uint8_t *p, uint32_t v)
{
    wr16(p, (uint16_t)v);
    wr16(p + 2, (uint16_t)(v >> 16));
}
static void wr64(uint8_t *p, uint64_t v)
{
    wr32(p, (uint32_t)v);
    wr32(p + 4, (uint32_t)(v >> 32));
}

int linux_boot_check_header(const uint8_t *hdr, size_t len, const char *path)
{
    if (len < 0x270 || rd16(hdr + HDR_BOOT_FLAG) != 0xaa55 ||
        memcmp(hdr + HDR_MAGIC, "HdrS", 4) != 0) {
        log_error("kernel %s: not a bzImage (no Linux boot header)", path);
        return -ENOEXEC;
    }
    uint16_t version = rd16(hdr + HDR_VERSION);
    if (version < 0x020c || !(rd16(hdr + HDR_XLOADFLAGS) & XLF_KERNEL_64)) {
        log_error("kernel %s: boot protocol %u.%02u without a 64-bit entry point (need 2.12+)",
                  path, version >> 8, version & 0xff);
        return -ENOEXEC;
    }
    if (!(hdr[HDR_LOADFLAGS] & LOADED_HIGH)) {
        log_error("kernel %s: zImage kernels (not loaded high) are not supported", path);
        return -ENOEXEC;
    }
    return 0;
}

static int read_file(const char *path, const char *what, uint8_t **buf, size_t *len)
{
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
    *len = (size_t)st.st_size;
    *buf = malloc(*len ? *len : 1);
    if (!*buf) {
        close(fd);
        return -ENOMEM;
    }
    size_t done = 0;
    while (done < *len) {
        ssize_t n = read(fd, *buf + done, *len - done);
        if (n <= 0) {
            int err = n < 0 ? -errno : -EIO;
            log_error("%s %s: short read", what, path);
            free(*buf);
            close(fd);
            return err;
        }
        done += (size_t)n;
    }
    close(fd);
    return 0;
}

/* Read a file straight into guest memory at gpa (no intermediate copy). */
static int load_file_at(const struct guest_mem *gm, const char *path, const char *what,
                        uint64_t gpa, uint64_t size)
{
    uint8_t *dst = gm_ptr(gm, gpa, size);
    if (!dst) {
        log_error("%s %s does not fit in guest RAM", what, path);
        return -ENOMEM;
    }
    int fd = host_file_open(path, O_RDONLY);
    if (fd < 0) {
        int err = -errno;
        log_error("%s %s: %m", what, path);
        return err;
    }
    uint64_t done = 0;
    while (done < size) {
        ssize_t n = pread(fd, dst + done, size - done, (off_t)done);
        if (n <= 0) {
            log_error("%s %s: short read", what, path);
            close(fd);
            return -EIO;
        }
        done += (uint64_t)n;
    }
    close(fd);
    return 0;
}

int linux_boot_write_cpu_tables(const struct guest_mem *gm)
{
    /* GDT: null, null, __BOOT_CS (0x10), __BOOT_DS (0x18), TSS (0x20). */
    static const uint64_t gdt[] = {
        0, 0, 0x00af9b000000ffffull, 0x00cf93000000ffffull, 0x00808b0000000067ull,
    };
    if (!gm_write(gm, BOOT_GDT_ADDR, gdt, sizeof(gdt)))
        return -ENOMEM;
    uint8_t *pml4 = gm_ptr(gm, BOOT_PML4_ADDR, 6 * 4096);
    if (!pml4)
        return -ENOMEM;
    memset(pml4, 0, 6 * 4096);
    uint64_t pdpt = BOOT_PML4_ADDR + 0x1000, pd = BOOT_PML4_ADDR + 0x2000;
    wr64(pml4, pdpt | 0x3);
    for (unsigned i = 0; i < 4; i++) {
        wr64(pml4 + 0x1000 + 8 * i, (pd + 0x1000ull * i) | 0x3);
        for (unsigned j = 0; j < 512; j++) {
            uint64_t addr = ((uint64_t)i << 30) | ((uint64_t)j << 21);
            wr64(pml4 + 0x2000 + 0x1000 * i + 8 * j, addr | 0x83);
        }
    }
    return 0;
}

int linux_boot_load(const struct guest_mem *gm, const char *kernel_path, const char *initrd_path,
                    const char *cmdline, const struct e820_map *e820, uint64_t rsdp,
                    struct linux_boot *out)
{
    uint8_t *img = NULL;
    size_t img_len = 0;
    int rc = read_file(kernel_path, "kernel", &img, &img_len);
    if (rc)
        return rc;
    rc = linux_boot_check_header(img, img_len, kernel_path);
    if (rc)
        goto out;
    unsigned setup_sects = img[HDR_SETUP_SECTS] ? img[HDR_SETUP_SECTS] : 4;
    size_t setup_len = (setup_sects + 1) * 512ul;
    if (setup_len >= img_len) {
        log_error("kernel %s: truncated (setup larger than the file)", kernel_path);
        rc = -ENOEXEC;
        goto out;
    }
    size_t kernel_len = img_len - setup_len;
    uint64_t low_end = gm->regions[0].size;
    uint64_t load = rd64(img + HDR_PREF_ADDRESS);
    uint64_t align = rd32(img + HDR_KERNEL_ALIGNMENT);
    uint32_t init_size = rd32(img + HDR_INIT_SIZE);
    if (load < E820_1M)
        load = 0x1000000;
    if (align & (align - 1)) {
        log_error("kernel %s: kernel_alignment 0x%llx is not a power of two", kernel_path,
                  (unsigned long long)align);
        rc = -ENOEXEC;
        goto out;
    }
    /* Both come from the file: refuse before rounding up can wrap around. */
    if (load >= low_end) {
        log_error("kernel %s wants to load at 0x%llx; the VM has 0x%llx below 4 GiB", kernel_path,
                  (unsigned long long)load, (unsigned long long)low_end);
        rc = -ENOMEM;
        goto out;
    }
    if (align && (load & (align - 1)))
        load = (load + align - 1) & ~(align - 1);
    uint64_t kernel_end = load + (init_size > kernel_len ? init_size : kernel_len);
    if (kernel_end > low_end) {
        log_error("kernel %s needs RAM up to 0x%llx; the VM has 0x%llx below 4 GiB", kernel_path,
                  (unsigned long long)kernel_end, (unsigned long long)low_end);
        rc = -ENOMEM;
        goto out;
    }
    if (!gm_write(gm, load, img + setup_len, kernel_len)) {
        rc = -ENOMEM;
        goto out;
    }

    uint8_t *zp = gm_ptr(gm, BOOT_ZERO_PAGE_ADDR, 4096);
    if (!zp) {
        rc = -ENOMEM;
        goto out;
    }
    memset(zp, 0, 4096);
    size_t hdr_end = HDR_JUMP + 2 + img[HDR_JUMP + 1];
    if (hdr_end > 4096 || hdr_end > img_len)
        hdr_end = 0x270;
    memcpy(zp + HDR_SETUP_SECTS, img + HDR_SETUP_SECTS, hdr_end - HDR_SETUP_SECTS);
    zp[HDR_TYPE_OF_LOADER] = 0xff;
    zp[HDR_LOADFLAGS] |= CAN_USE_HEAP;
    wr16(zp + HDR_HEAP_END_PTR, 0xfe00);

    const char *cl = cmdline ? cmdline : "";
    size_t cl_len = strlen(cl);
    uint32_t cl_max = rd32(img + HDR_CMDLINE_SIZE);
    if (cl_max == 0 || cl_max > BOOT_CMDLINE_MAX - 1)
        cl_max = BOOT_CMDLINE_MAX - 1;
    if (cl_len > cl_max) {
        log_error("kernel command line is %zu bytes; this kernel takes at most %u", cl_len, cl_max);
        rc = -E2BIG;
        goto out;
    }
    gm_write(gm, BOOT_CMDLINE_ADDR, cl, cl_len + 1);
    wr32(zp + HDR_CMD_LINE_PTR, (uint32_t)BOOT_CMDLINE_ADDR);

    out->initrd_addr = out->initrd_size = 0;
    if (initrd_path) {
        struct stat st;
        if (stat(initrd_path, &st) < 0) {
            rc = -errno;
            log_error("initrd %s: %m", initrd_path);
            goto out;
        }
        uint64_t size = (uint64_t)st.st_size;
        uint64_t max = rd32(img + HDR_INITRD_ADDR_MAX);
        uint64_t top = low_end;
        if (max && max + 1 < top)
            top = max + 1;
        if (size > top || ((top - size) & ~0xfffull) < kernel_end) {
            log_error("initrd %s (%llu bytes) does not fit in guest RAM below 0x%llx", initrd_path,
                      (unsigned long long)size, (unsigned long long)top);
            rc = -ENOMEM;
            goto out;
        }
        uint64_t addr = (top - size) & ~0xfffull;
        rc = load_file_at(gm, initrd_path, "initrd", addr, size);
        if (rc)
            goto out;
        wr32(zp + HDR_RAMDISK_IMAGE, (uint32_t)addr);
        wr32(zp + HDR_RAMDISK_SIZE, (uint32_t)size);
        wr32(zp + ZP_EXT_RAMDISK_IMAGE, (uint32_t)(addr >> 32));
        wr32(zp + ZP_EXT_RAMDISK_SIZE, (uint32_t)(size >> 32));
        out->initrd_addr = addr;
        out->initrd_size = size;
    }

    unsigned n = e820->nr < ZP_E820_MAX ? e820->nr : ZP_E820_MAX;
    zp[ZP_E820_ENTRIES] = (uint8_t)n;
    memcpy(zp + ZP_E820_TABLE, e820->entries, n * sizeof(struct e820_entry));
    wr64(zp + ZP_ACPI_RSDP_ADDR, rsdp);

    rc = linux_boot_write_cpu_tables(gm);
    if (rc)
        goto out;
    out->entry = load + 0x200;
    out->zero_page = BOOT_ZERO_PAGE_ADDR;
    out->kernel_addr = load;
    out->kernel_end = kernel_end;
out:
    free(img);
    return rc;
}
