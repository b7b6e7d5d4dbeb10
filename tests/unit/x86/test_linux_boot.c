/*
 * bzImage loading for the 64-bit Linux boot protocol
 * (src/arch/x86/linux_boot.c; Documentation/arch/x86/boot.rst and
 * zero-page.rst): header checks on crafted headers, and loading crafted
 * minimal bzImages (and the host's own Debian kernel when installed) into a
 * fake guest memory.
 */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "arch/x86/e820.h"
#include "arch/x86/linux_boot.h"
#include "core/log.h"
#include "support/fake_guest_mem.h"
#include "vmm/host_files.h"

#define MiB (1ull << 20)
#define RAM_SIZE (64 * MiB)

/* Setup header fields a boot loader reads (boot.rst, "The real-mode kernel header"). */
struct hdr_opts {
    uint8_t setup_sects;
    uint16_t version;
    uint8_t loadflags;
    uint16_t xloadflags;
    uint64_t pref_address;
    uint32_t kernel_alignment;
    uint32_t init_size;
    uint32_t cmdline_size;
    uint32_t initrd_addr_max;
    size_t payload;     /* protected-mode kernel bytes after the setup */
    size_t truncate_to; /* when non-zero, the file is cut to this length */
};

static const struct hdr_opts good = {
    .setup_sects = 4,
    .version = 0x020f,
    .loadflags = 0x01,
    .xloadflags = 0x0b,
    .pref_address = 0x1000000,
    .kernel_alignment = 0x200000,
    .init_size = 0x200000,
    .cmdline_size = 0x7ff,
    .initrd_addr_max = 0x7fffffff,
    .payload = 0x30000,
};

struct fixture {
    char dir[64];
    char kernel[96], initrd[96];
    struct guest_mem gm;
    struct e820_map e820;
};

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static void put32(uint8_t *p, uint32_t v)
{
    put16(p, (uint16_t)v);
    put16(p + 2, (uint16_t)(v >> 16));
}
static void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}
static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}
static uint32_t get32(const uint8_t *p)
{
    return get16(p) | (uint32_t)get16(p + 2) << 16;
}
static uint64_t get64(const uint8_t *p)
{
    return get32(p) | (uint64_t)get32(p + 4) << 32;
}

static uint8_t payload_byte(size_t i)
{
    return (uint8_t)(i * 7 + 3 + (i >> 9));
}

/* A bzImage as a byte array: setup sectors with the header, then the payload. */
static uint8_t *build_image(const struct hdr_opts *o, size_t *len)
{
    size_t setup = ((o->setup_sects ? o->setup_sects : 4) + 1) * 512ul;
    *len = setup + o->payload;
    uint8_t *img = calloc(1, *len < 0x1000 ? 0x1000 : *len);
    img[0x1f1] = o->setup_sects;
    put16(img + 0x1fe, 0xaa55);
    img[0x200] = 0xeb; /* jmp short past the header, as real kernels do */
    img[0x201] = 0x6a;
    memcpy(img + 0x202, "HdrS", 4);
    put16(img + 0x206, o->version);
    img[0x211] = o->loadflags;
    put32(img + 0x22c, o->initrd_addr_max);
    put32(img + 0x230, o->kernel_alignment);
    img[0x234] = 1; /* relocatable */
    put16(img + 0x236, o->xloadflags);
    put32(img + 0x238, o->cmdline_size);
    put64(img + 0x258, o->pref_address);
    put32(img + 0x260, o->init_size);
    for (size_t i = 0; i < o->payload; i++)
        img[setup + i] = payload_byte(i);
    if (o->truncate_to)
        *len = o->truncate_to;
    return img;
}

static void write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
}

static void write_kernel(struct fixture *f, const struct hdr_opts *o)
{
    size_t len;
    uint8_t *img = build_image(o, &len);
    write_file(f->kernel, img, len);
    free(img);
}

/* An initrd of size bytes; a sparse file beyond the first page. */
static void write_initrd(struct fixture *f, uint64_t size)
{
    int fd = open(f->initrd, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    uint8_t page[4096];
    for (unsigned i = 0; i < sizeof(page); i++)
        page[i] = (uint8_t)(0xa5 ^ i);
    assert_int_equal(write(fd, page, size < sizeof(page) ? size : sizeof(page)),
                     (ssize_t)(size < sizeof(page) ? size : sizeof(page)));
    assert_int_equal(ftruncate(fd, (off_t)size), 0);
    close(fd);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/test_linux_boot.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->kernel, sizeof(f->kernel), "%s/bzImage", f->dir);
    snprintf(f->initrd, sizeof(f->initrd), "%s/initrd", f->dir);
    assert_int_equal(fake_guest_mem_init(&f->gm, 0, RAM_SIZE), 0);
    assert_int_equal(e820_build(&f->e820, &f->gm), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    unlink(f->kernel);
    unlink(f->initrd);
    rmdir(f->dir);
    fake_guest_mem_free(&f->gm);
    free(f);
    log_init(LOG_INFO, -1);
    return 0;
}

/* The refusals below log errors on purpose. */
static void quiet(void)
{
    log_init(LOG_OFF, -1);
}

/*
 * Each load as a new krunkit process makes it: the files are opened afresh
 * (vmm/host_files.h keeps a process's first open of a path for its reboots).
 */
static int load(struct fixture *f, const char *initrd, const char *cmdline, struct linux_boot *out)
{
    memset(out, 0, sizeof(*out));
    host_files_close_all();
    return linux_boot_load(&f->gm, f->kernel, initrd, cmdline, &f->e820, 0xe0000, out);
}

static int check(const struct hdr_opts *o, size_t len_override)
{
    size_t len;
    uint8_t *img = build_image(o, &len);
    int rc = linux_boot_check_header(img, len_override ? len_override : len, "crafted");
    free(img);
    return rc;
}

static void test_check_header(void **state)
{
    (void)state;
    quiet();
    assert_int_equal(check(&good, 0), 0);
    struct hdr_opts o = good;
    /* 2.12 is the first protocol with xloadflags (64-bit entry). */
    o.version = 0x020c;
    assert_int_equal(check(&o, 0), 0);
    o.version = 0x020b;
    assert_int_equal(check(&o, 0), -ENOEXEC);
    o.version = 0x0204;
    assert_int_equal(check(&o, 0), -ENOEXEC);
    o = good;
    o.xloadflags = 0x0a; /* XLF_CAN_BE_LOADED_ABOVE_4G etc., but no XLF_KERNEL_64 */
    assert_int_equal(check(&o, 0), -ENOEXEC);
    o = good;
    o.loadflags = 0x80; /* a zImage, loaded low */
    assert_int_equal(check(&o, 0), -ENOEXEC);
    /* Shorter than the header. */
    assert_int_equal(check(&good, 0x26f), -ENOEXEC);
    assert_int_equal(check(&good, 0x270), 0);
    assert_int_equal(linux_boot_check_header((const uint8_t *)"", 0, "empty"), -ENOEXEC);

    size_t len;
    uint8_t *img = build_image(&good, &len);
    img[0x205] = 'Z'; /* "HdrZ" */
    assert_int_equal(linux_boot_check_header(img, len, "bad magic"), -ENOEXEC);
    img[0x205] = 'S';
    img[0x1fe] = 0x00; /* boot flag */
    assert_int_equal(linux_boot_check_header(img, len, "no boot flag"), -ENOEXEC);
    img[0x1fe] = 0x55;
    assert_int_equal(linux_boot_check_header(img, len, "restored"), 0);
    free(img);
}

static void test_load_kernel_zero_page_initrd(void **state)
{
    struct fixture *f = *state;
    write_kernel(f, &good);
    const uint64_t initrd_size = 5 * 4096 + 123;
    write_initrd(f, initrd_size);
    const char *cmdline = "console=ttyS0 root=/dev/vda rw";
    struct linux_boot b;
    assert_int_equal(load(f, f->initrd, cmdline, &b), 0);

    /* Kernel at its preferred address, entered 0x200 in. */
    assert_int_equal(b.kernel_addr, good.pref_address);
    assert_int_equal(b.entry, good.pref_address + 0x200);
    assert_int_equal(b.kernel_end, good.pref_address + good.init_size);
    const uint8_t *k = gm_ptr(&f->gm, b.kernel_addr, good.payload);
    assert_non_null(k);
    for (size_t i = 0; i < good.payload; i++)
        if (k[i] != payload_byte(i))
            fail_msg("kernel byte %zu differs", i);
    /* The setup sectors are not loaded in front of it. */
    assert_int_equal(*(const uint8_t *)gm_ptr(&f->gm, b.kernel_addr - 1, 1), 0);

    assert_int_equal(b.zero_page, BOOT_ZERO_PAGE_ADDR);
    const uint8_t *zp = gm_ptr(&f->gm, b.zero_page, 4096);
    assert_non_null(zp);
    /* Setup header copied, then the loader's fields. */
    assert_memory_equal(zp + 0x202, "HdrS", 4);
    assert_int_equal(get16(zp + 0x206), good.version);
    assert_int_equal(get16(zp + 0x1fe), 0xaa55);
    assert_int_equal(get64(zp + 0x258), good.pref_address);
    assert_int_equal(zp[0x210], 0xff);           /* type_of_loader: undefined */
    assert_int_equal(zp[0x211] & 0x81, 0x81);    /* LOADED_HIGH | CAN_USE_HEAP */
    assert_int_equal(get16(zp + 0x224), 0xfe00); /* heap_end_ptr */

    assert_int_equal(get32(zp + 0x228), BOOT_CMDLINE_ADDR);
    const char *cl = gm_ptr(&f->gm, BOOT_CMDLINE_ADDR, strlen(cmdline) + 1);
    assert_string_equal(cl, cmdline);

    /* initrd: page aligned, above the kernel, below initrd_addr_max and RAM's end. */
    assert_int_equal(b.initrd_size, initrd_size);
    assert_int_equal(b.initrd_addr & 0xfff, 0);
    assert_true(b.initrd_addr >= b.kernel_end);
    assert_true(b.initrd_addr + initrd_size <= RAM_SIZE);
    /* As high as it goes: the last page it could start at. */
    assert_int_equal(b.initrd_addr, (RAM_SIZE - initrd_size) & ~0xfffull);
    assert_int_equal(get32(zp + 0x218), b.initrd_addr);
    assert_int_equal(get32(zp + 0x21c), initrd_size);
    assert_int_equal(get32(zp + 0x0c0), 0); /* ext_ramdisk_image */
    assert_int_equal(get32(zp + 0x0c4), 0);
    const uint8_t *rd = gm_ptr(&f->gm, b.initrd_addr, initrd_size);
    for (unsigned i = 0; i < 4096; i++)
        assert_int_equal(rd[i], (uint8_t)(0xa5 ^ i));
    assert_int_equal(rd[initrd_size - 1], 0);

    /* e820 table copied; RSDP address passed on. */
    assert_int_equal(zp[0x1e8], f->e820.nr);
    assert_memory_equal(zp + 0x2d0, f->e820.entries, f->e820.nr * sizeof(struct e820_entry));
    assert_int_equal(get64(zp + 0x070), 0xe0000);

    /* Identity-mapped page tables for the 64-bit entry. */
    const uint8_t *pml4 = gm_ptr(&f->gm, BOOT_PML4_ADDR, 4096);
    assert_int_equal(get64(pml4) & ~0xfffull, BOOT_PML4_ADDR + 0x1000);
    const uint8_t *pd = gm_ptr(&f->gm, BOOT_PML4_ADDR + 0x2000, 4096);
    assert_int_equal(get64(pd + 8 * 8), (8ull << 21) | 0x83); /* 16 MiB, 2 MiB page */
}

static void test_initrd_below_initrd_addr_max(void **state)
{
    struct fixture *f = *state;
    struct hdr_opts o = good;
    o.initrd_addr_max = 0x2ffffff; /* 48 MiB - 1 in 64 MiB of RAM */
    write_kernel(f, &o);
    write_initrd(f, 3 * MiB + 1);
    struct linux_boot b;
    assert_int_equal(load(f, f->initrd, NULL, &b), 0);
    assert_true(b.initrd_addr + b.initrd_size <= 0x3000000);
    assert_int_equal(b.initrd_addr, (0x3000000 - (3 * MiB + 1)) & ~0xfffull);
    assert_true(b.initrd_addr >= b.kernel_end);
    /* No command line: an empty one. */
    assert_int_equal(*(const char *)gm_ptr(&f->gm, BOOT_CMDLINE_ADDR, 1), 0);
}

static void test_initrd_too_big_refused(void **state)
{
    struct fixture *f = *state;
    write_kernel(f, &good);
    quiet();
    struct linux_boot b;
    /* Larger than RAM. */
    write_initrd(f, RAM_SIZE + 1);
    assert_int_equal(load(f, f->initrd, NULL, &b), -ENOMEM);
    /* Fits in RAM, but only by overlapping the kernel. */
    write_initrd(f, RAM_SIZE - good.pref_address - good.init_size + 4096);
    assert_int_equal(load(f, f->initrd, NULL, &b), -ENOMEM);
    /* Exactly the room between the kernel's end and RAM's end fits. */
    write_initrd(f, RAM_SIZE - good.pref_address - good.init_size);
    assert_int_equal(load(f, f->initrd, NULL, &b), 0);
    assert_int_equal(b.initrd_addr, b.kernel_end);
    /* A missing initrd. */
    unlink(f->initrd);
    assert_int_equal(load(f, f->initrd, NULL, &b), -ENOENT);
}

static void test_cmdline_limit(void **state)
{
    struct fixture *f = *state;
    struct hdr_opts o = good;
    o.cmdline_size = 16;
    write_kernel(f, &o);
    struct linux_boot b;
    assert_int_equal(load(f, NULL, "0123456789abcdef", &b), 0);
    assert_string_equal(gm_ptr(&f->gm, BOOT_CMDLINE_ADDR, 17), "0123456789abcdef");
    quiet();
    assert_int_equal(load(f, NULL, "0123456789abcdefg", &b), -E2BIG);
    /* Without cmdline_size, our own buffer is the limit. */
    o.cmdline_size = 0;
    write_kernel(f, &o);
    char *long_cl = malloc(BOOT_CMDLINE_MAX + 1);
    memset(long_cl, 'x', BOOT_CMDLINE_MAX);
    long_cl[BOOT_CMDLINE_MAX] = 0;
    assert_int_equal(load(f, NULL, long_cl, &b), -E2BIG);
    long_cl[BOOT_CMDLINE_MAX - 1] = 0;
    assert_int_equal(load(f, NULL, long_cl, &b), 0);
    free(long_cl);
}

static void test_load_address_rules(void **state)
{
    struct fixture *f = *state;
    struct linux_boot b;
    struct hdr_opts o = good;
    /* Rounded up to kernel_alignment. */
    o.pref_address = 0x1100000;
    write_kernel(f, &o);
    assert_int_equal(load(f, NULL, NULL, &b), 0);
    assert_int_equal(b.kernel_addr, 0x1200000);
    assert_int_equal(b.entry, 0x1200200);
    assert_int_equal(*(const uint8_t *)gm_ptr(&f->gm, 0x1200000, 1), payload_byte(0));
    /* Below 1 MiB: the conventional 16 MiB instead. */
    o.pref_address = 0x10000;
    write_kernel(f, &o);
    assert_int_equal(load(f, NULL, NULL, &b), 0);
    assert_int_equal(b.kernel_addr, 0x1000000);
    /* A payload larger than init_size sets the end. */
    o = good;
    o.init_size = 0x1000;
    write_kernel(f, &o);
    assert_int_equal(load(f, NULL, NULL, &b), 0);
    assert_int_equal(b.kernel_end, o.pref_address + o.payload);
}

static void test_kernel_outside_ram_refused(void **state)
{
    struct fixture *f = *state;
    struct linux_boot b;
    struct hdr_opts o = good;
    quiet();
    /* init_size reaching past low RAM. */
    o.init_size = RAM_SIZE;
    write_kernel(f, &o);
    assert_int_equal(load(f, NULL, NULL, &b), -ENOMEM);
    /* Preferred address beyond RAM. */
    o = good;
    o.pref_address = 0x80000000;
    write_kernel(f, &o);
    assert_int_equal(load(f, NULL, NULL, &b), -ENOMEM);
    /*
     * Addresses where load + alignment or load + size wrap around 2^64:
     * refused, never loaded at a wrapped (low) address.
     */
    uint8_t *low = gm_ptr(&f->gm, 0, 0x1000);
    memset(low, 0x11, 0x1000);
    o.pref_address = 0xfffffffffff00000ull;
    write_kernel(f, &o);
    assert_int_equal(load(f, NULL, NULL, &b), -ENOMEM);
    o.pref_address = 0xffffffffffe00000ull;
    write_kernel(f, &o);
    assert_int_equal(load(f, NULL, NULL, &b), -ENOMEM);
    assert_int_equal(low[0x200], 0x11);
    /* A kernel_alignment that is not a power of two. */
    o = good;
    o.pref_address = 0x1000001;
    o.kernel_alignment = 0x300000;
    write_kernel(f, &o);
    assert_int_equal(load(f, NULL, NULL, &b), -ENOEXEC);
}

static void test_bad_files_refused(void **state)
{
    struct fixture *f = *state;
    struct linux_boot b;
    quiet();
    /* Setup sectors claim more than the file holds. */
    struct hdr_opts o = good;
    o.setup_sects = 0x27;
    o.payload = 0;
    o.truncate_to = 0x1000;
    write_kernel(f, &o);
    assert_int_equal(load(f, NULL, NULL, &b), -ENOEXEC);
    /* setup_sects 0 means 4; a file of exactly the setup has no kernel. */
    o = good;
    o.setup_sects = 0;
    o.payload = 0;
    write_kernel(f, &o);
    assert_int_equal(load(f, NULL, NULL, &b), -ENOEXEC);
    o.payload = 0x1000;
    write_kernel(f, &o);
    assert_int_equal(load(f, NULL, NULL, &b), 0);
    assert_int_equal(*(const uint8_t *)gm_ptr(&f->gm, b.kernel_addr, 1), payload_byte(0));
    /* Not a bzImage at all. */
    write_file(f->kernel, "#!/bin/sh\n", 10);
    assert_int_equal(load(f, NULL, NULL, &b), -ENOEXEC);
    /* Missing, and a directory. */
    unlink(f->kernel);
    assert_int_equal(load(f, NULL, NULL, &b), -ENOENT);
    host_files_close_all();
    assert_int_equal(linux_boot_load(&f->gm, f->dir, NULL, NULL, &f->e820, 0, &b), -EINVAL);
}

static void test_real_debian_kernel(void **state)
{
    glob_t g;
    if (glob("/boot/vmlinuz-*", 0, NULL, &g) != 0 || g.gl_pathc == 0) {
        globfree(&g);
        skip();
    }
    const char *path = g.gl_pathv[g.gl_pathc - 1];
    uint8_t hdr[0x270];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || read(fd, hdr, sizeof(hdr)) != (ssize_t)sizeof(hdr)) {
        if (fd >= 0)
            close(fd);
        globfree(&g);
        skip(); /* installed but not readable by this user */
    }
    close(fd);
    struct fixture *f = *state;
    struct guest_mem big;
    assert_int_equal(fake_guest_mem_init(&big, 0, 512 * MiB), 0);
    struct e820_map m;
    assert_int_equal(e820_build(&m, &big), 0);
    assert_int_equal(linux_boot_check_header(hdr, sizeof(hdr), path), 0);
    struct linux_boot b;
    assert_int_equal(linux_boot_load(&big, path, NULL, "console=ttyS0", &m, 0, &b), 0);
    uint64_t pref = get64(hdr + 0x258);
    assert_int_equal(b.entry, pref + 0x200);
    assert_int_equal(b.kernel_addr, pref);
    assert_true(b.kernel_end <= 512 * MiB);
    /* The 64-bit entry is startup_64 of the decompressor: it starts with code, not zeros. */
    const uint8_t *entry = gm_ptr(&big, b.entry, 16);
    static const uint8_t zeros[16];
    assert_memory_not_equal(entry, zeros, 16);
    const uint8_t *zp = gm_ptr(&big, b.zero_page, 4096);
    assert_int_equal(zp[0x210], 0xff);
    assert_int_equal(zp[0x1e8], m.nr);
    (void)f;
    fake_guest_mem_free(&big);
    globfree(&g);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_check_header),
        T(test_load_kernel_zero_page_initrd),
        T(test_initrd_below_initrd_addr_max),
        T(test_initrd_too_big_refused),
        T(test_cmdline_limit),
        T(test_load_address_rules),
        T(test_kernel_outside_ram_refused),
        T(test_bad_files_refused),
        T(test_real_debian_kernel),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
