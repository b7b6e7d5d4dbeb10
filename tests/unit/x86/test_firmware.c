/*
 * Firmware discovery and checks, variable store semantics (create, missing,
 * wrong size, in use, nothing left behind on failure), combined images,
 * and the fw_cfg contents for the firmware (files, e820, kernel items).
 * Synthetic images carry valid firmware volume headers; Debian's OVMF files
 * are checked too when installed.
 */
#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "arch/x86/e820.h"
#include "arch/x86/firmware.h"
#include "arch/x86/smbios.h"
#include "support/fake_guest_mem.h"
#include "support/test_util.h"
#include "vmm/host_files.h"

/*
 * firmware_load as a new krunkit process makes it: files opened afresh
 * (vmm/host_files.h keeps a process's first open of a path for its reboots).
 */
static int load_fresh(const struct firmware_request *req, struct firmware *fw)
{
    host_files_close_all();
    return firmware_load(req, fw);
}

#define CODE_LEN (64 * 1024)
#define VARS_LEN (16 * 1024)

static const uint8_t nv_guid[16] = {0x8d, 0x2b, 0xf1, 0xff, 0x96, 0x76, 0x8b, 0x4c,
                                    0xa9, 0x85, 0x27, 0x47, 0x07, 0x5b, 0x4f, 0x50};
static const uint8_t fv2_guid[16] = {0x78, 0xe5, 0x8c, 0x8c, 0x3d, 0x8a, 0x1c, 0x4f,
                                     0x99, 0x35, 0x89, 0x61, 0x85, 0xc3, 0x2d, 0xd3};

struct fixture {
    char dir[64];
};

static char *path_in(struct fixture *f, const char *name)
{
    static char buf[4][512];
    static unsigned n;
    char *p = buf[n++ % 4];
    snprintf(p, 512, "%s/%.200s", f->dir, name);
    return p;
}

/* A firmware volume header at buf with FvLength fv_len and a valid checksum. */
static void make_fv(uint8_t *buf, const uint8_t guid[16], uint64_t fv_len, uint8_t fill)
{
    memset(buf, fill, fv_len);
    memset(buf, 0, 72);
    memcpy(buf + 16, guid, 16);
    uint64_t le = htole64(fv_len);
    memcpy(buf + 32, &le, 8);
    memcpy(buf + 40, "_FVH", 4);
    uint16_t hlen = htole16(72);
    memcpy(buf + 48, &hlen, 2);
    buf[55] = 2;
    uint32_t nblocks = htole32((uint32_t)(fv_len / 4096)), blen = htole32(4096);
    memcpy(buf + 56, &nblocks, 4);
    memcpy(buf + 60, &blen, 4);
    uint16_t sum = 0;
    for (unsigned i = 0; i < 72; i += 2)
        sum = (uint16_t)(sum + (buf[i] | buf[i + 1] << 8));
    uint16_t ck = htole16((uint16_t)(0x10000 - sum));
    memcpy(buf + 50, &ck, 2);
}

static void write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
}

static void write_code(const char *path)
{
    static uint8_t code[CODE_LEN];
    make_fv(code, fv2_guid, CODE_LEN / 2, 0xc3);
    write_file(path, code, sizeof(code));
}

static void write_vars(const char *path)
{
    static uint8_t vars[VARS_LEN];
    make_fv(vars, nv_guid, VARS_LEN, 0xff);
    write_file(path, vars, sizeof(vars));
}

static unsigned count_entries(struct fixture *f)
{
    int n = dir_entry_count(f->dir);
    assert_true(n >= 0);
    return (unsigned)n;
}

static int setup(void **state)
{
    static struct fixture f;
    strcpy(f.dir, "/tmp/test-firmware-XXXXXX");
    assert_non_null(mkdtemp(f.dir));
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    DIR *d = opendir(f->dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char *p = path_in(f, e->d_name);
        chmod(p, 0644);
        unlink(p);
    }
    if (d)
        closedir(d);
    chmod(f->dir, 0755);
    rmdir(f->dir);
    return 0;
}

static void test_fv_header_checks(void **state)
{
    (void)state;
    static uint8_t b[VARS_LEN];
    uint64_t len;
    make_fv(b, nv_guid, VARS_LEN, 0xff);
    assert_int_equal(firmware_fv_header(b, sizeof(b), 0, &len), 0);
    assert_int_equal(len, VARS_LEN);
    assert_int_equal(firmware_vars_prefix(b, sizeof(b)), VARS_LEN);
    b[60] ^= 1; /* checksum broken */
    assert_int_equal(firmware_fv_header(b, sizeof(b), 0, &len), -EINVAL);
    make_fv(b, nv_guid, VARS_LEN, 0xff);
    b[41] = 'X';
    assert_int_equal(firmware_fv_header(b, sizeof(b), 0, &len), -EINVAL);
    make_fv(b, nv_guid, VARS_LEN, 0xff);
    assert_int_equal(firmware_fv_header(b, VARS_LEN / 2, 0, &len), -EINVAL); /* FvLength > buffer */
    assert_int_equal(firmware_fv_header(b, 40, 0, &len), -EINVAL);
    assert_int_equal(firmware_fv_header(b, sizeof(b), sizeof(b) + 1, &len), -EINVAL);
    make_fv(b, fv2_guid, VARS_LEN, 0xff);
    assert_int_equal(firmware_vars_prefix(b, sizeof(b)), 0); /* code, not a store */
}

/* Debian's images, when the ovmf package is installed. */
static void test_debian_ovmf_images(void **state)
{
    struct fixture *f = *state;
    if (access(FIRMWARE_DEFAULT_CODE, R_OK) || access(FIRMWARE_DEFAULT_VARS, R_OK))
        skip();
    struct firmware_request req = {.firmware_path = FIRMWARE_DEFAULT_CODE,
                                   .variable_store = path_in(f, "vm.fd"),
                                   .create = true};
    struct firmware fw;
    assert_int_equal(load_fresh(&req, &fw), 0);
    assert_false(fw.combined);
    assert_string_equal(fw.template_path, FIRMWARE_DEFAULT_VARS);
    assert_int_equal(fw.code_gpa + fw.code_size, FIRMWARE_END);
    assert_int_equal(fw.vars_gpa + fw.vars_size, fw.code_gpa);
    assert_int_equal(fw.code_size + fw.vars_size, 4u << 20);
    firmware_free(&fw);

    if (access("/usr/share/ovmf/OVMF.fd", R_OK) == 0) {
        req = (struct firmware_request){.firmware_path = "/usr/share/ovmf/OVMF.fd"};
        assert_int_equal(load_fresh(&req, &fw), 0);
        assert_true(fw.combined);
        /* bookworm ships a 2 MiB image (128 KiB store), trixie a 4 MiB one (528 KiB). */
        struct stat st;
        assert_int_equal(stat("/usr/share/ovmf/OVMF.fd", &st), 0);
        assert_true(fw.vars_size == 0x20000 || fw.vars_size == 0x84000);
        assert_int_equal(fw.code_size + fw.vars_size, (size_t)st.st_size);
        firmware_free(&fw);
    }
}

static void test_discovery_order(void **state)
{
    struct fixture *f = *state;
    char a[256], b[256], missing[256];
    strcpy(a, path_in(f, "A_CODE.fd"));
    strcpy(b, path_in(f, "B_CODE.fd"));
    strcpy(missing, path_in(f, "MISSING_CODE.fd"));
    write_code(b);
    write_vars(path_in(f, "B_VARS.fd"));
    const char *list[] = {missing, a, b, NULL};
    struct firmware_request req = {.search = list};
    struct firmware fw;
    assert_int_equal(load_fresh(&req, &fw), 0);
    assert_string_equal(fw.code_path, b);
    assert_string_equal(fw.template_path, path_in(f, "B_VARS.fd"));
    assert_null(fw.store_path); /* volatile */
    firmware_free(&fw);

    write_code(a);
    write_vars(path_in(f, "A_VARS.fd"));
    assert_int_equal(load_fresh(&req, &fw), 0);
    assert_string_equal(fw.code_path, a);
    firmware_free(&fw);

    /* --firmware-path wins over the search list. */
    req.firmware_path = b;
    assert_int_equal(load_fresh(&req, &fw), 0);
    assert_string_equal(fw.code_path, b);
    firmware_free(&fw);

    const char *none[] = {missing, NULL};
    req = (struct firmware_request){.search = none};
    assert_int_equal(load_fresh(&req, &fw), -ENOENT);
    assert_null(fw.code);
}

static void test_corrupt_firmware(void **state)
{
    struct fixture *f = *state;
    struct firmware fw;
    struct firmware_request req = {.firmware_path = path_in(f, "X_CODE.fd")};
    write_vars(path_in(f, "X_VARS.fd"));

    assert_int_equal(load_fresh(&req, &fw), -ENOENT); /* missing */

    static uint8_t junk[CODE_LEN];
    memset(junk, 0x5a, sizeof(junk));
    write_file(req.firmware_path, junk, sizeof(junk)); /* no FV header */
    assert_int_equal(load_fresh(&req, &fw), -EINVAL);
    write_file(req.firmware_path, junk, 5000); /* not 4 KiB aligned */
    assert_int_equal(load_fresh(&req, &fw), -EINVAL);
    write_file(req.firmware_path, junk, 0);
    assert_int_equal(load_fresh(&req, &fw), -EINVAL);
    /* Larger than 16 MiB. */
    int fd = open(req.firmware_path, O_WRONLY | O_TRUNC | O_CLOEXEC);
    assert_int_equal(ftruncate(fd, (17 << 20)), 0);
    close(fd);
    assert_int_not_equal(load_fresh(&req, &fw), 0);
    /* A VARS template given as the firmware. */
    req.firmware_path = path_in(f, "X_VARS.fd");
    assert_int_equal(load_fresh(&req, &fw), -EINVAL);
    /* A directory. */
    req.firmware_path = f->dir;
    assert_int_not_equal(load_fresh(&req, &fw), 0);
    assert_null(fw.code_path);
}

static void test_store_create_semantics(void **state)
{
    struct fixture *f = *state;
    char code[256], store[256];
    strcpy(code, path_in(f, "OVMF_CODE.fd"));
    strcpy(store, path_in(f, "vm-vars.fd"));
    write_code(code);
    write_vars(path_in(f, "OVMF_VARS.fd"));
    unsigned before = count_entries(f);

    /* Missing without create: an error, and no file appears. */
    struct firmware_request req = {.firmware_path = code, .variable_store = store};
    struct firmware fw;
    assert_int_equal(load_fresh(&req, &fw), -ENOENT);
    assert_int_equal(access(store, F_OK), -1);
    assert_int_equal(count_entries(f), before);

    /* With create: a copy of the template, private to the user. */
    req.create = true;
    assert_int_equal(load_fresh(&req, &fw), 0);
    assert_string_equal(fw.store_path, store);
    assert_int_equal(fw.vars_size, VARS_LEN);
    struct stat st;
    assert_int_equal(stat(store, &st), 0);
    assert_int_equal(st.st_size, VARS_LEN);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(count_entries(f), before + 1); /* no temporary left */

    /* In use by another VM. */
    struct firmware fw2;
    assert_int_equal(load_fresh(&req, &fw2), -EBUSY);

    /* A variable written by the guest reaches the file and the next run. */
    uint8_t b = 0x10;
    pflash_io_ops.write(fw.vars, 100, &b, 1);
    b = 0x42;
    pflash_io_ops.write(fw.vars, 100, &b, 1);
    b = 0xff;
    pflash_io_ops.write(fw.vars, 100, &b, 1);
    firmware_free(&fw);
    req.create = false;
    assert_int_equal(load_fresh(&req, &fw), 0);
    assert_int_equal(pflash_host(fw.vars)[100], 0x42);
    firmware_free(&fw);

    /* An existing store is not recreated by create. */
    req.create = true;
    assert_int_equal(load_fresh(&req, &fw), 0);
    assert_int_equal(pflash_host(fw.vars)[100], 0x42);
    firmware_free(&fw);

    /* A store of another size than the template is refused. */
    static uint8_t big[2 * VARS_LEN];
    make_fv(big, nv_guid, sizeof(big), 0xff);
    write_file(store, big, sizeof(big));
    assert_int_equal(load_fresh(&req, &fw), -EINVAL);
    write_file(store, big, 100);
    assert_int_equal(load_fresh(&req, &fw), -EINVAL);
}

static void test_create_failures_leave_nothing(void **state)
{
    struct fixture *f = *state;
    char code[256], store[256];
    strcpy(code, path_in(f, "NOTMPL_CODE.fd"));
    strcpy(store, path_in(f, "vars.fd"));
    write_code(code);
    unsigned before = count_entries(f);
    struct firmware fw;

    /* No template next to the code. */
    struct firmware_request req = {.firmware_path = code, .variable_store = store, .create = true};
    assert_int_equal(load_fresh(&req, &fw), -ENOENT);
    assert_int_equal(count_entries(f), before);

    /* A corrupt template. */
    static uint8_t junk[VARS_LEN];
    memset(junk, 0, sizeof(junk));
    write_file(path_in(f, "NOTMPL_VARS.fd"), junk, sizeof(junk));
    before = count_entries(f);
    assert_int_equal(load_fresh(&req, &fw), -EINVAL);
    assert_int_equal(count_entries(f), before);
    assert_int_equal(access(store, F_OK), -1);

    /* A directory we cannot write into (root ignores modes: skip that part). */
    write_vars(path_in(f, "NOTMPL_VARS.fd"));
    req.variable_store = "/nonexistent-dir/vars.fd";
    assert_int_equal(load_fresh(&req, &fw), -ENOENT);
    if (geteuid() != 0) {
        char sub[256];
        strcpy(sub, path_in(f, "ro"));
        assert_int_equal(mkdir(sub, 0555), 0);
        char sp[300];
        snprintf(sp, sizeof(sp), "%s/vars.fd", sub);
        req.variable_store = sp;
        assert_int_equal(load_fresh(&req, &fw), -EACCES);
        DIR *d = opendir(sub);
        unsigned n = 0;
        struct dirent *e;
        while ((e = readdir(d)))
            n += e->d_name[0] != '.';
        closedir(d);
        assert_int_equal(n, 0);
        rmdir(sub);
    }

    /* Volatile store without a template: a clear error too. */
    unlink(path_in(f, "NOTMPL_VARS.fd"));
    req = (struct firmware_request){.firmware_path = code};
    assert_int_equal(load_fresh(&req, &fw), -ENOENT);
}

static void test_combined_image(void **state)
{
    struct fixture *f = *state;
    static uint8_t img[VARS_LEN + CODE_LEN];
    make_fv(img, nv_guid, VARS_LEN, 0xff);
    make_fv(img + VARS_LEN, fv2_guid, CODE_LEN / 2, 0xc3);
    img[VARS_LEN + CODE_LEN - 1] = 0x99;
    write_file(path_in(f, "OVMF.fd"), img, sizeof(img));
    struct firmware_request req = {.firmware_path = path_in(f, "OVMF.fd"),
                                   .variable_store = path_in(f, "vm.fd"),
                                   .create = true};
    struct firmware fw;
    assert_int_equal(load_fresh(&req, &fw), 0);
    assert_true(fw.combined);
    assert_int_equal(fw.vars_size, VARS_LEN);
    assert_int_equal(fw.code_size, CODE_LEN);
    assert_int_equal(fw.code_gpa, FIRMWARE_END - CODE_LEN);
    assert_int_equal(fw.vars_gpa, FIRMWARE_END - CODE_LEN - VARS_LEN);
    assert_memory_equal(fw.code, img + VARS_LEN, CODE_LEN);
    assert_memory_equal(pflash_host(fw.vars), img, VARS_LEN);
    firmware_free(&fw);

    /* A combined image whose code part is corrupt. */
    memset(img + VARS_LEN, 0, 72);
    write_file(path_in(f, "OVMF.fd"), img, sizeof(img));
    assert_int_equal(load_fresh(&req, &fw), -EINVAL);
}

static void test_request_from_config(void **state)
{
    (void)state;
    struct vm_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.firmware_path = "/fw.fd";
    cfg.boot.kind = BOOT_EFI;
    cfg.boot.variable_store = "/vars";
    cfg.boot.create = true;
    struct firmware_request req;
    firmware_request_from_config(&cfg, &req);
    assert_string_equal(req.firmware_path, "/fw.fd");
    assert_string_equal(req.variable_store, "/vars");
    assert_true(req.create);
    cfg.boot.kind = BOOT_DEFAULT;
    firmware_request_from_config(&cfg, &req);
    assert_null(req.variable_store);
}

/* fw_cfg item bytes, read through the ports as the firmware does. */
static size_t read_item(struct fw_cfg *fw, uint16_t key, uint8_t *buf, size_t n)
{
    uint16_t le = htole16(key);
    fw_cfg_io_ops.write(fw, 0, &le, 2);
    for (size_t i = 0; i < n; i++)
        fw_cfg_io_ops.read(fw, 1, &buf[i], 1);
    return n;
}

static uint32_t file_size(struct fw_cfg *fw, const char *name)
{
    static uint8_t dir[4 + 64 * FW_CFG_MAX_FILES];
    read_item(fw, FW_CFG_FILE_DIR, dir, sizeof(dir));
    uint32_t n = be32toh(*(uint32_t *)dir);
    for (uint32_t i = 0; i < n; i++) {
        uint8_t *e = dir + 4 + 64 * i;
        if (!strcmp((char *)e + 8, name))
            return be32toh(*(uint32_t *)e);
    }
    return 0xffffffff;
}

static void test_fw_cfg_setup(void **state)
{
    (void)state;
    struct guest_mem gm;
    assert_int_equal(fake_guest_mem_init(&gm, 0, 4 << 20), 0);
    assert_int_equal(fake_guest_mem_add(&gm, 0x100000000ull, 1 << 20), 0);
    struct fw_cfg *fw = fw_cfg_create(&gm);
    assert_non_null(fw);
    struct acpi_layout l = {.ncpus = 2, .pci_hole_start = 0xc0000000ull};
    char *oem[] = {"hello"};
    const uint8_t uuid[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    unsigned slots[] = {3, 10};
    char *bootorder = firmware_bootorder_virtio_blk(slots, 2);
    assert_string_equal(bootorder, "/pci@i0cf8/scsi@3/disk@0,0\n/pci@i0cf8/scsi@a/disk@0,0");
    struct firmware_fw_cfg_info info = {.ncpus = 2,
                                        .mem = &gm,
                                        .acpi = &l,
                                        .uuid = uuid,
                                        .oem_strings = oem,
                                        .n_oem_strings = 1,
                                        .bootorder = bootorder};
    assert_int_equal(firmware_fw_cfg_setup(fw, &info), 0);

    uint8_t b[64];
    read_item(fw, FW_CFG_NB_CPUS, b, 2);
    assert_int_equal(b[0], 2);
    read_item(fw, FW_CFG_UUID, b, 16);
    assert_memory_equal(b, uuid, 16);
    read_item(fw, FW_CFG_KERNEL_SIZE, b, 4);
    assert_int_equal(b[0] | b[1] | b[2] | b[3], 0);

    const char *files[] = {"etc/acpi/rsdp", "etc/acpi/tables", "etc/table-loader",
                           SMBIOS_FWCFG_ANCHOR, SMBIOS_FWCFG_TABLES};
    for (unsigned i = 0; i < 5; i++) {
        uint32_t sz = file_size(fw, files[i]);
        assert_true(sz > 0 && sz != 0xffffffff);
    }
    assert_int_equal(file_size(fw, SMBIOS_FWCFG_ANCHOR), SMBIOS3_ANCHOR_LEN);
    assert_int_equal(file_size(fw, "bootorder"), strlen(bootorder) + 1);

    /* etc/e820: RAM regions only, 20-byte little-endian entries. */
    assert_int_equal(file_size(fw, "etc/e820"), 2 * sizeof(struct e820_entry));
    struct e820_entry e[2];
    read_item(fw, (uint16_t)fw_cfg_file_key(fw, "etc/e820"), (uint8_t *)e, sizeof(e));
    assert_int_equal(e[0].addr, 0);
    assert_int_equal(e[0].size, 4 << 20);
    assert_int_equal(e[0].type, E820_RAM);
    assert_int_equal(e[1].addr, 0x100000000ull);
    assert_int_equal(e[1].size, 1 << 20);

    /* etc/system-states: S0 and S5 only. */
    assert_int_equal(file_size(fw, "etc/system-states"), 6);
    read_item(fw, (uint16_t)fw_cfg_file_key(fw, "etc/system-states"), b, 6);
    assert_true(b[0] & 0x80);
    assert_false(b[3] & 0x80);
    assert_false(b[4] & 0x80);
    assert_true(b[5] & 0x80);

    /* Without a UUID a random version-4 one is made. */
    struct fw_cfg *fw2 = fw_cfg_create(&gm);
    info.uuid = NULL;
    info.bootorder = NULL;
    assert_int_equal(firmware_fw_cfg_setup(fw2, &info), 0);
    read_item(fw2, FW_CFG_UUID, b, 16);
    assert_int_equal(b[6] >> 4, 4);
    assert_int_equal(b[8] & 0xc0, 0x80);
    assert_int_equal(file_size(fw2, "bootorder"), 0xffffffff);
    fw_cfg_destroy(fw2);

    free(bootorder);
    fw_cfg_destroy(fw);
    fake_guest_mem_free(&gm);
}

/* Read a whole fw_cfg file by DMA into guest RAM at 0x10000, as OVMF's QemuFwCfgLib does. */
static uint32_t dma_read_file(struct fw_cfg *fw, struct guest_mem *gm, const char *name,
                              uint8_t **data)
{
    uint32_t size = file_size(fw, name);
    assert_int_not_equal(size, 0xffffffff);
    int key = fw_cfg_file_key(fw, name);
    assert_true(key > 0);
    uint8_t *d = gm_ptr(gm, 0x1000, 16);
    uint32_t ctl = htobe32((uint32_t)key << 16 | FW_CFG_DMA_CTL_SELECT | FW_CFG_DMA_CTL_READ);
    uint32_t len = htobe32(size);
    uint64_t addr = htobe64(0x10000);
    memcpy(d, &ctl, 4);
    memcpy(d + 4, &len, 4);
    memcpy(d + 8, &addr, 8);
    uint32_t hi = 0, lo = htobe32(0x1000);
    fw_cfg_dma_ops.write(fw, 0, &hi, 4);
    fw_cfg_dma_ops.write(fw, 4, &lo, 4);
    assert_int_equal(d[3], 0); /* control cleared: done, no error */
    *data = malloc(size);
    memcpy(*data, gm_ptr(gm, 0x10000, size), size);
    return size;
}

/*
 * The table-loader script must only name files fw_cfg has, with offsets
 * inside them: OVMF's AcpiPlatformDxe gives up on ACPI otherwise.
 */
static void test_table_loader_consistent(void **state)
{
    (void)state;
    struct guest_mem gm;
    assert_int_equal(fake_guest_mem_init(&gm, 0, 4 << 20), 0);
    struct fw_cfg *fw = fw_cfg_create(&gm);
    struct acpi_layout l = {.ncpus = 4, .pci_hole_start = 0xc0000000ull};
    struct firmware_fw_cfg_info info = {.ncpus = 4, .mem = &gm, .acpi = &l};
    assert_int_equal(firmware_fw_cfg_setup(fw, &info), 0);

    uint8_t *loader;
    uint32_t llen = dma_read_file(fw, &gm, ACPI_FWCFG_LOADER, &loader);
    assert_int_equal(llen % ACPI_LOADER_ENTRY_SIZE, 0);
    bool allocated_rsdp = false, allocated_tables = false;
    for (uint32_t off = 0; off < llen; off += ACPI_LOADER_ENTRY_SIZE) {
        const uint8_t *e = loader + off;
        uint32_t cmd;
        memcpy(&cmd, e, 4);
        const char *f1 = (const char *)e + 4;
        const char *f2 = (const char *)e + 4 + ACPI_LOADER_FNAME_SIZE;
        assert_true(memchr(f1, 0, ACPI_LOADER_FNAME_SIZE) != NULL);
        uint32_t s1 = file_size(fw, f1);
        assert_int_not_equal(s1, 0xffffffff);
        uint32_t a, b, c;
        switch (cmd) {
        case ACPI_LOADER_ALLOCATE:
            /* The RSDP must land where an OS scans for it (the F segment). */
            if (!strcmp(f1, ACPI_FWCFG_RSDP)) {
                assert_int_equal(e[4 + ACPI_LOADER_FNAME_SIZE + 4], ACPI_LOADER_ZONE_FSEG);
                allocated_rsdp = true;
            } else {
                allocated_tables = true;
            }
            break;
        case ACPI_LOADER_ADD_POINTER:
            assert_int_not_equal(file_size(fw, f2), 0xffffffff);
            memcpy(&a, e + 4 + 2 * ACPI_LOADER_FNAME_SIZE, 4);
            b = e[4 + 2 * ACPI_LOADER_FNAME_SIZE + 4];
            assert_true(b == 1 || b == 2 || b == 4 || b == 8);
            assert_true(a + b <= s1);
            break;
        case ACPI_LOADER_ADD_CHECKSUM:
            memcpy(&a, e + 4 + ACPI_LOADER_FNAME_SIZE, 4);
            memcpy(&b, e + 4 + ACPI_LOADER_FNAME_SIZE + 4, 4);
            memcpy(&c, e + 4 + ACPI_LOADER_FNAME_SIZE + 8, 4);
            assert_true(a < s1);
            assert_true(b <= s1 && c <= s1 - b);
            break;
        default:
            fail_msg("unknown loader command %u", cmd);
        }
    }
    assert_true(allocated_rsdp);
    assert_true(allocated_tables);
    uint8_t *rsdp;
    dma_read_file(fw, &gm, ACPI_FWCFG_RSDP, &rsdp);
    assert_memory_equal(rsdp, "RSD PTR ", 8);
    free(rsdp);
    free(loader);
    fw_cfg_destroy(fw);
    fake_guest_mem_free(&gm);
}

static unsigned layout_calls;

static void firmware_moved_bars(void *opaque, struct acpi_layout *l)
{
    (void)opaque;
    layout_calls++;
    l->pci_hole_start = 0x80000000ull; /* where OVMF puts 32-bit BARs with little RAM */
}

/* The ACPI tables are rebuilt once, when the firmware first selects one of them. */
static void test_acpi_refresh_on_select(void **state)
{
    (void)state;
    struct guest_mem gm;
    assert_int_equal(fake_guest_mem_init(&gm, 0, 4 << 20), 0);
    struct fw_cfg *fw = fw_cfg_create(&gm);
    struct acpi_layout l = {.ncpus = 1, .pci_hole_start = 0xc0000000ull};
    struct firmware_fw_cfg_info info = {
        .ncpus = 1, .mem = &gm, .acpi = &l, .acpi_layout_now = firmware_moved_bars};
    assert_int_equal(firmware_fw_cfg_setup(fw, &info), 0);
    assert_int_equal(layout_calls, 0);
    uint32_t size = file_size(fw, ACPI_FWCFG_TABLES);

    /* What the tables look like for the moved window, built independently. */
    struct acpi_layout moved = l;
    moved.pci_hole_start = 0x80000000ull;
    struct acpi_tables t;
    struct acpi_fwcfg want;
    assert_int_equal(acpi_build(&moved, &t), 0);
    assert_int_equal(acpi_build_fwcfg(&t, &want), 0);
    acpi_tables_free(&t);
    struct acpi_fwcfg before;
    assert_int_equal(acpi_build(&l, &t), 0);
    assert_int_equal(acpi_build_fwcfg(&t, &before), 0);
    acpi_tables_free(&t);
    assert_int_equal(before.tables.len, want.tables.len);
    assert_memory_not_equal(before.tables.data, want.tables.data, want.tables.len);
    acpi_fwcfg_free(&before);

    uint8_t *got;
    assert_int_equal(dma_read_file(fw, &gm, ACPI_FWCFG_TABLES, &got), size);
    assert_int_equal(layout_calls, 1);
    assert_int_equal(want.tables.len, size);
    assert_memory_equal(got, want.tables.data, size);
    free(got);
    dma_read_file(fw, &gm, ACPI_FWCFG_LOADER, &got);
    free(got);
    assert_int_equal(layout_calls, 1);
    acpi_fwcfg_free(&want);
    fw_cfg_destroy(fw);
    fake_guest_mem_free(&gm);
}

static void test_fw_cfg_linux(void **state)
{
    struct fixture *f = *state;
    struct guest_mem gm;
    assert_int_equal(fake_guest_mem_init(&gm, 0, 1 << 20), 0);
    struct fw_cfg *fw = fw_cfg_create(&gm);
    static uint8_t k[8192];
    for (unsigned i = 0; i < sizeof(k); i++)
        k[i] = (uint8_t)(i * 13);
    k[0x1f1] = 3; /* setup: 4 sectors */
    k[0x1fe] = 0x55;
    k[0x1ff] = 0xaa;
    memcpy(k + 0x202, "HdrS", 4);
    write_file(path_in(f, "bzImage"), k, sizeof(k));
    write_file(path_in(f, "initrd"), "INITRD!", 7);
    assert_int_equal(
        firmware_fw_cfg_linux(fw, path_in(f, "bzImage"), path_in(f, "initrd"), "console=ttyS0"), 0);
    uint32_t v;
    read_item(fw, FW_CFG_SETUP_SIZE, (uint8_t *)&v, 4);
    assert_int_equal(le32toh(v), 2048);
    read_item(fw, FW_CFG_KERNEL_SIZE, (uint8_t *)&v, 4);
    assert_int_equal(le32toh(v), sizeof(k) - 2048);
    static uint8_t got[8192];
    read_item(fw, FW_CFG_SETUP_DATA, got, 2048);
    assert_memory_equal(got, k, 2048);
    read_item(fw, FW_CFG_KERNEL_DATA, got, sizeof(k) - 2048);
    assert_memory_equal(got, k + 2048, sizeof(k) - 2048);
    read_item(fw, FW_CFG_INITRD_SIZE, (uint8_t *)&v, 4);
    assert_int_equal(le32toh(v), 7);
    read_item(fw, FW_CFG_INITRD_DATA, got, 7);
    assert_memory_equal(got, "INITRD!", 7);
    read_item(fw, FW_CFG_CMDLINE_SIZE, (uint8_t *)&v, 4);
    assert_int_equal(le32toh(v), 14);
    read_item(fw, FW_CFG_CMDLINE_DATA, got, 14);
    assert_memory_equal(got, "console=ttyS0", 14);

    /* Not a bzImage; setup larger than the file; missing initrd. */
    k[0x203] = 'x';
    write_file(path_in(f, "bad"), k, sizeof(k));
    assert_int_equal(firmware_fw_cfg_linux(fw, path_in(f, "bad"), NULL, NULL), -ENOEXEC);
    k[0x203] = 'd';
    k[0x1f1] = 200;
    write_file(path_in(f, "bad"), k, sizeof(k));
    assert_int_equal(firmware_fw_cfg_linux(fw, path_in(f, "bad"), NULL, NULL), -ENOEXEC);
    assert_int_equal(firmware_fw_cfg_linux(fw, path_in(f, "bzImage"), path_in(f, "none"), NULL),
                     -ENOENT);
    fw_cfg_destroy(fw);
    fake_guest_mem_free(&gm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fv_header_checks),
        cmocka_unit_test_setup_teardown(test_debian_ovmf_images, setup, teardown),
        cmocka_unit_test_setup_teardown(test_discovery_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_firmware, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_create_semantics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_failures_leave_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_combined_image, setup, teardown),
        cmocka_unit_test(test_request_from_config),
        cmocka_unit_test(test_fw_cfg_setup),
        cmocka_unit_test(test_table_loader_consistent),
        cmocka_unit_test(test_acpi_refresh_on_select),
        cmocka_unit_test_setup_teardown(test_fw_cfg_linux, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
