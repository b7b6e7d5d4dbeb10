/*
 * UEFI firmware discovery, checks and loading, the variable store, and the
 * fw_cfg contents the firmware reads (see firmware.h). Firmware volume
 * header: PI 1.7 vol. 3, 3.2.1. fw_cfg items and files: QEMU
 * docs/specs/fw_cfg.rst and what OVMF reads on QEMU's PC machine; the
 * kernel items split a bzImage as Linux Documentation/arch/x86/boot.rst
 * describes (setup_sects + 1 sectors of real-mode code, then the rest).
 */
#include "arch/x86/firmware.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arch/x86/e820.h"
#include "arch/x86/smbios.h"
#include "core/log.h"
#include "vmm/host_files.h"

/* gEfiSystemNvDataFvGuid {FFF12B8D-7696-4C8B-A985-2747075B4F50}, in memory order. */
static const uint8_t nv_data_fv_guid[16] = {0x8d, 0x2b, 0xf1, 0xff, 0x96, 0x76, 0x8b, 0x4c,
                                            0xa9, 0x85, 0x27, 0x47, 0x07, 0x5b, 0x4f, 0x50};

#define FV_LENGTH_OFF 32
#define FV_SIGNATURE_OFF 40
#define FV_HEADER_LENGTH_OFF 48
#define FV_REVISION_OFF 55
#define FV_MIN_HEADER 72 /* 56 bytes + one block map entry + the terminating entry */

#define KERNEL_MAX_SIZE (512u << 20)
#define INITRD_MAX_SIZE 0xfffff000u /* fw_cfg sizes are 32-bit */

const char *const firmware_default_search[] = {
    FIRMWARE_DEFAULT_CODE,                 /* Debian, Ubuntu (4 MiB build) */
    "/usr/share/OVMF/OVMF_CODE.fd",        /* Debian, Ubuntu (2 MiB build) */
    "/usr/share/edk2/ovmf/OVMF_CODE.fd",   /* Fedora */
    "/usr/share/edk2/x64/OVMF_CODE.4m.fd", /* Arch */
    "/usr/share/ovmf/OVMF.fd",             /* Debian's combined image */
    NULL,
};

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint64_t rd64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

int firmware_fv_header(const uint8_t *buf, size_t len, size_t off, uint64_t *fv_len)
{
    if (off > len || len - off < FV_MIN_HEADER)
        return -EINVAL;
    const uint8_t *h = buf + off;
    if (memcmp(h + FV_SIGNATURE_OFF, "_FVH", 4) != 0 || h[FV_REVISION_OFF] != 2)
        return -EINVAL;
    uint16_t hlen = rd16(h + FV_HEADER_LENGTH_OFF);
    uint64_t flen = rd64(h + FV_LENGTH_OFF);
    if (hlen < FV_MIN_HEADER || hlen % 2 || hlen > len - off || flen < hlen || flen > len - off)
        return -EINVAL;
    /* The header's 16-bit words sum to zero. */
    uint16_t sum = 0;
    for (unsigned i = 0; i < hlen; i += 2)
        sum = (uint16_t)(sum + rd16(h + i));
    if (sum != 0)
        return -EINVAL;
    *fv_len = flen;
    return 0;
}

size_t firmware_vars_prefix(const uint8_t *buf, size_t len)
{
    uint64_t flen;
    if (firmware_fv_header(buf, len, 0, &flen) || memcmp(buf + 16, nv_data_fv_guid, 16) != 0)
        return 0;
    return (size_t)flen;
}

void firmware_request_from_config(const struct vm_config *cfg, struct firmware_request *req)
{
    memset(req, 0, sizeof(*req));
    req->firmware_path = cfg->firmware_path;
    if (cfg->boot.kind == BOOT_EFI) {
        req->variable_store = cfg->boot.variable_store;
        req->create = cfg->boot.create;
    }
}

/* The whole of a regular file, at most max bytes (-EFBIG beyond). */
static int read_whole_fd(int fd, size_t max, uint8_t **buf, size_t *len)
{
    *buf = NULL;
    *len = 0;
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    if (!S_ISREG(st.st_mode))
        return -EINVAL;
    if ((uint64_t)st.st_size > max)
        return -EFBIG;
    size_t n = (size_t)st.st_size;
    uint8_t *p = malloc(n ? n : 1);
    if (!p)
        return -ENOMEM;
    size_t done = 0;
    while (done < n) {
        ssize_t r = pread(fd, p + done, n - done, (off_t)done);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            int err = r < 0 ? -errno : -EIO;
            free(p);
            return err;
        }
        done += (size_t)r;
    }
    *buf = p;
    *len = n;
    return 0;
}

static int read_whole_file(const char *path, size_t max, uint8_t **buf, size_t *len)
{
    int fd = host_file_open(path, O_RDONLY);
    if (fd < 0) {
        *buf = NULL;
        return -errno;
    }
    int rc = read_whole_fd(fd, max, buf, len);
    close(fd);
    return rc;
}

static const char *size_problem(size_t len)
{
    if (len == 0)
        return "is empty";
    if (len % FIRMWARE_ALIGN)
        return "size is not a multiple of 4 KiB";
    if (len > FIRMWARE_MAX_SIZE)
        return "is larger than 16 MiB";
    return NULL;
}

/* OVMF_CODE_4M.fd -> OVMF_VARS_4M.fd, next to it; NULL when the name has no CODE. */
static char *template_for(const char *code_path)
{
    const char *base = strrchr(code_path, '/');
    base = base ? base + 1 : code_path;
    const char *hit = NULL;
    for (const char *p = strstr(base, "CODE"); p; p = strstr(p + 1, "CODE"))
        hit = p;
    if (!hit)
        return NULL;
    char *t = strdup(code_path);
    if (t)
        memcpy(t + (hit - code_path), "VARS", 4);
    return t;
}

/* quiet: only used for a size check, so a bad template is not an error. */
static int load_template(const char *path, bool quiet, uint8_t **buf, size_t *len)
{
    int rc = read_whole_file(path, FIRMWARE_MAX_SIZE, buf, len);
    if (rc) {
        if (!quiet)
            log_error("variable store template %s: %s", path, strerror(-rc));
        return rc;
    }
    const char *bad = size_problem(*len);
    if (!bad && firmware_vars_prefix(*buf, *len) != *len)
        bad = "has no variable store firmware volume header (corrupt?)";
    if (bad) {
        if (!quiet)
            log_error("variable store template %s %s", path, bad);
        free(*buf);
        *buf = NULL;
        return -EINVAL;
    }
    return 0;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return w < 0 ? -errno : -EIO;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/*
 * Write the template to a temporary file next to path and link it into
 * place, so a failure never leaves a partial store that a later run would
 * take for a real one.
 */
static int create_store(const char *path, const uint8_t *tmpl, size_t len)
{
    size_t plen = strlen(path);
    char *tmp = malloc(plen + sizeof(".tmp-XXXXXX"));
    if (!tmp)
        return -ENOMEM;
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp-XXXXXX", sizeof(".tmp-XXXXXX"));
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        int rc = -errno;
        log_error("cannot create variable store %s: %s", path, strerror(-rc));
        free(tmp);
        return rc;
    }
    int rc = write_all(fd, tmpl, len);
    if (!rc && fsync(fd) < 0)
        rc = -errno;
    close(fd);
    if (!rc && link(tmp, path) < 0) {
        if (errno == EEXIST) {
            rc = 0; /* created concurrently: use that one */
        } else if (errno == EPERM || errno == EOPNOTSUPP || errno == EMLINK) {
            /* No hard links on this file system (vfat, some FUSE). */
            if (rename(tmp, path) < 0)
                rc = -errno;
        } else {
            rc = -errno;
        }
    }
    unlink(tmp); /* gone already after a rename */
    if (rc)
        log_error("cannot create variable store %s: %s", path, strerror(-rc));
    else
        log_info("created variable store %s", path);
    free(tmp);
    return rc;
}

static int open_store(const struct firmware_request *req, const uint8_t *tmpl, size_t tmpl_len,
                      const char *tmpl_path, size_t max_len, struct pflash **out)
{
    const char *path = req->variable_store;
    int fd = host_file_open(path, O_RDWR);
    if (fd < 0 && errno == ENOENT) {
        if (!req->create) {
            log_error("variable store %s does not exist (add ',create' to --bootloader efi to "
                      "create it from the firmware's template)",
                      path);
            return -ENOENT;
        }
        if (!tmpl) {
            log_error("variable store %s: cannot create it, no template %s%s", path,
                      tmpl_path ? "at " : "for this firmware", tmpl_path ? tmpl_path : "");
            return -ENOENT;
        }
        int rc = create_store(path, tmpl, tmpl_len);
        if (rc)
            return rc;
        fd = host_file_open(path, O_RDWR | O_NOFOLLOW); /* the file we just made */
    }
    if (fd < 0) {
        int rc = -errno;
        log_error("variable store %s: %s", path, strerror(-rc));
        return rc;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
        log_error("variable store %s: %s", path,
                  rc == -EBUSY ? "in use by another virtual machine" : strerror(-rc));
        close(fd);
        return rc;
    }
    uint8_t *buf;
    size_t len;
    int rc = read_whole_fd(fd, FIRMWARE_MAX_SIZE, &buf, &len);
    if (rc) {
        log_error("variable store %s: %s", path,
                  rc == -EFBIG    ? "larger than 16 MiB"
                  : rc == -EINVAL ? "not a regular file"
                                  : strerror(-rc));
        close(fd);
        return rc;
    }
    const char *bad = size_problem(len);
    if (!bad && len > max_len)
        bad = "does not fit below the firmware code";
    if (!bad && tmpl && len != tmpl_len)
        bad = "has another size than this firmware's template (made for another firmware?)";
    if (bad) {
        log_error("variable store %s %s", path, bad);
        free(buf);
        close(fd);
        return -EINVAL;
    }
    if (firmware_vars_prefix(buf, len) != len)
        log_warn("variable store %s has no valid header; the firmware will reformat it", path);
    rc = pflash_create(out, buf, len, fd, false);
    free(buf);
    if (rc) {
        close(fd);
        return rc;
    }
    return 0;
}

static const char *find_code(const struct firmware_request *req)
{
    const char *const *list = req->search ? req->search : firmware_default_search;
    for (unsigned i = 0; list[i]; i++)
        if (access(list[i], R_OK) == 0)
            return list[i];
    char looked[1024] = "";
    size_t used = 0;
    for (unsigned i = 0; list[i] && used < sizeof(looked); i++) {
        int n = snprintf(looked + used, sizeof(looked) - used, "%s%s", i ? ", " : "", list[i]);
        if (n < 0)
            break;
        used += (size_t)n;
    }
    log_error("no UEFI firmware found (looked for %s); install the ovmf package or pass "
              "--firmware-path",
              looked);
    return NULL;
}

int firmware_load(const struct firmware_request *req, struct firmware *fw)
{
    memset(fw, 0, sizeof(*fw));
    const char *path = req->firmware_path ? req->firmware_path : find_code(req);
    if (!path)
        return -ENOENT;

    uint8_t *img = NULL, *tmpl_buf = NULL;
    size_t img_len, tmpl_len = 0;
    int rc = read_whole_file(path, FIRMWARE_MAX_SIZE, &img, &img_len);
    if (rc) {
        log_error("firmware %s: %s", path,
                  rc == -EFBIG    ? "larger than 16 MiB"
                  : rc == -EINVAL ? "not a regular file"
                                  : strerror(-rc));
        return rc;
    }
    const char *bad = size_problem(img_len);
    if (bad) {
        log_error("firmware %s %s", path, bad);
        rc = -EINVAL;
        goto fail;
    }

    size_t vars_len = firmware_vars_prefix(img, img_len);
    if (vars_len == img_len) {
        log_error("firmware %s is a variable store template, not firmware code", path);
        rc = -EINVAL;
        goto fail;
    }
    if (vars_len % FIRMWARE_ALIGN) {
        log_error("firmware %s: variable store part is not a multiple of 4 KiB", path);
        rc = -EINVAL;
        goto fail;
    }
    const uint8_t *code = img + vars_len;
    size_t code_len = img_len - vars_len;
    uint64_t fv_len;
    if (firmware_fv_header(code, code_len, 0, &fv_len)) {
        log_error("firmware %s: no firmware volume header at offset %zu (corrupt, or not a "
                  "UEFI firmware image)",
                  path, vars_len);
        rc = -EINVAL;
        goto fail;
    }
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    if (strstr(base, "secboot") || strstr(base, ".ms.") || strstr(base, "snakeoil"))
        log_warn("firmware %s looks like a Secure Boot build; those need SMM on a Q35 machine "
                 "and stop early on this i440FX machine without SMM",
                 path);
    fw->combined = vars_len > 0;
    fw->code_path = strdup(path);
    if (!fw->code_path) {
        rc = -ENOMEM;
        goto fail;
    }

    /* The store's template: the image's own VARS part, or VARS next to CODE. */
    const uint8_t *tmpl = NULL;
    if (fw->combined) {
        tmpl = img;
        tmpl_len = vars_len;
        fw->template_path = strdup(path);
    } else {
        fw->template_path = template_for(path);
        bool needed = !req->variable_store || access(req->variable_store, F_OK) != 0;
        if (fw->template_path && (needed || access(fw->template_path, R_OK) == 0)) {
            rc = load_template(fw->template_path, !needed, &tmpl_buf, &tmpl_len);
            if (rc && needed)
                goto fail;
            rc = 0;
            tmpl = tmpl_buf;
        }
    }

    size_t room = FIRMWARE_MAX_SIZE - code_len;
    if (req->variable_store) {
        rc = open_store(req, tmpl, tmpl_len, fw->template_path, room, &fw->vars);
        if (rc)
            goto fail;
        fw->store_path = strdup(req->variable_store);
        if (!fw->store_path) {
            rc = -ENOMEM;
            goto fail;
        }
    } else {
        if (!tmpl) {
            log_error("firmware %s: no variable store template %s%s to start from", path,
                      fw->template_path ? "at " : "(name has no CODE to replace by VARS)",
                      fw->template_path ? fw->template_path : "");
            rc = -ENOENT;
            goto fail;
        }
        if (tmpl_len > room) {
            log_error("firmware %s and its variable store exceed 16 MiB", path);
            rc = -EINVAL;
            goto fail;
        }
        rc = pflash_create(&fw->vars, tmpl, tmpl_len, -1, false);
        if (rc)
            goto fail;
    }
    fw->vars_size = pflash_size(fw->vars);

    fw->code = mmap(NULL, code_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (fw->code == MAP_FAILED) {
        fw->code = NULL;
        rc = -ENOMEM;
        goto fail;
    }
    memcpy(fw->code, code, code_len);
    mprotect(fw->code, code_len, PROT_READ);
    fw->code_size = code_len;
    fw->code_gpa = FIRMWARE_END - code_len;
    fw->vars_gpa = fw->code_gpa - fw->vars_size;
    free(img);
    free(tmpl_buf);
    log_debug("firmware %s: code %zu bytes at 0x%llx, variable store %zu bytes at 0x%llx (%s)",
              path, fw->code_size, (unsigned long long)fw->code_gpa, fw->vars_size,
              (unsigned long long)fw->vars_gpa, fw->store_path ? fw->store_path : "volatile");
    return 0;

fail:
    free(img);
    free(tmpl_buf);
    firmware_free(fw);
    return rc;
}

void firmware_free(struct firmware *fw)
{
    if (fw->code)
        munmap(fw->code, fw->code_size);
    pflash_destroy(fw->vars);
    free(fw->code_path);
    free(fw->template_path);
    free(fw->store_path);
    memset(fw, 0, sizeof(*fw));
}

/* ---- fw_cfg contents ---- */

static int add_e820(struct fw_cfg *fw, const struct guest_mem *mem)
{
    /* RAM only, one entry per region, as QEMU hands it to OVMF. */
    struct e820_entry e[GUEST_MEM_MAX_REGIONS];
    for (unsigned i = 0; i < mem->nr_regions; i++)
        e[i] = (struct e820_entry){
            .addr = mem->regions[i].gpa, .size = mem->regions[i].size, .type = E820_RAM};
    return fw_cfg_add_file(fw, "etc/e820", e, mem->nr_regions * sizeof(e[0]));
}

static int build_acpi(const struct acpi_layout *l, struct acpi_fwcfg *f)
{
    struct acpi_tables t;
    int rc = acpi_build(l, &t);
    if (rc)
        return rc;
    rc = acpi_build_fwcfg(&t, f);
    acpi_tables_free(&t);
    return rc;
}

struct acpi_refresh {
    struct fw_cfg *fw;
    struct acpi_layout layout;
    size_t len[3]; /* rsdp, tables, loader as first handed out */
    bool done;
    void (*layout_now)(void *opaque, struct acpi_layout *l);
    void *opaque;
};

static void refresh_acpi(void *opaque, const char *name)
{
    struct acpi_refresh *r = opaque;
    (void)name;
    if (r->done)
        return;
    r->done = true;
    struct acpi_layout l = r->layout;
    r->layout_now(r->opaque, &l);
    struct acpi_fwcfg f;
    int rc = build_acpi(&l, &f);
    if (rc) {
        log_warn("cannot rebuild the ACPI tables for the firmware: %s", strerror(-rc));
        return;
    }
    if (f.rsdp.len != r->len[0] || f.tables.len != r->len[1] || f.loader.len != r->len[2]) {
        log_warn("ACPI tables changed size with the firmware's PCI layout; keeping the first ones");
    } else {
        rc = fw_cfg_modify_file(r->fw, ACPI_FWCFG_RSDP, f.rsdp.data, f.rsdp.len);
        rc = rc ?: fw_cfg_modify_file(r->fw, ACPI_FWCFG_TABLES, f.tables.data, f.tables.len);
        rc = rc ?: fw_cfg_modify_file(r->fw, ACPI_FWCFG_LOADER, f.loader.data, f.loader.len);
        if (rc)
            log_warn("cannot update the ACPI tables for the firmware: %s", strerror(-rc));
    }
    acpi_fwcfg_free(&f);
}

static int add_acpi(struct fw_cfg *fw, const struct firmware_fw_cfg_info *info)
{
    struct acpi_fwcfg f;
    int rc = build_acpi(info->acpi, &f);
    if (rc)
        return rc;
    rc = fw_cfg_add_file(fw, ACPI_FWCFG_RSDP, f.rsdp.data, f.rsdp.len);
    rc = rc ?: fw_cfg_add_file(fw, ACPI_FWCFG_TABLES, f.tables.data, f.tables.len);
    rc = rc ?: fw_cfg_add_file(fw, ACPI_FWCFG_LOADER, f.loader.data, f.loader.len);
    if (rc == 0 && info->acpi_layout_now) {
        struct acpi_refresh *r = calloc(1, sizeof(*r));
        if (!r) {
            rc = -ENOMEM;
        } else {
            *r = (struct acpi_refresh){.fw = fw,
                                       .layout = *info->acpi,
                                       .len = {f.rsdp.len, f.tables.len, f.loader.len},
                                       .layout_now = info->acpi_layout_now,
                                       .opaque = info->acpi_layout_opaque};
            /* One state for the three files; the first one owns it. */
            rc = fw_cfg_set_select_cb(fw, ACPI_FWCFG_RSDP, refresh_acpi, r, free);
            if (rc)
                free(r);
            rc = rc ?: fw_cfg_set_select_cb(fw, ACPI_FWCFG_TABLES, refresh_acpi, r, NULL);
            rc = rc ?: fw_cfg_set_select_cb(fw, ACPI_FWCFG_LOADER, refresh_acpi, r, NULL);
        }
    }
    acpi_fwcfg_free(&f);
    return rc;
}

static int add_smbios(struct fw_cfg *fw, const struct firmware_fw_cfg_info *info,
                      const uint8_t *uuid)
{
    struct smbios_info si = {.ncpus = info->ncpus,
                             .mem = info->mem,
                             .oem_strings = info->oem_strings,
                             .n_oem_strings = info->n_oem_strings};
    memcpy(si.uuid, uuid, 16);
    struct smbios_blobs b;
    int rc = smbios_build(&si, &b);
    if (rc)
        return rc;
    rc = fw_cfg_add_file(fw, SMBIOS_FWCFG_ANCHOR, b.anchor, b.anchor_len);
    rc = rc ?: fw_cfg_add_file(fw, SMBIOS_FWCFG_TABLES, b.tables, b.tables_len);
    smbios_blobs_free(&b);
    return rc;
}

int firmware_fw_cfg_setup(struct fw_cfg *fw, const struct firmware_fw_cfg_info *info)
{
    if (!info->mem || info->mem->nr_regions == 0 || !info->acpi || info->ncpus == 0 ||
        info->ncpus > 0xffff)
        return -EINVAL;
    uint8_t uuid[16];
    if (info->uuid) {
        memcpy(uuid, info->uuid, 16);
    } else {
        if (getrandom(uuid, sizeof(uuid), 0) != sizeof(uuid))
            return -EIO;
        uuid[6] = (uint8_t)((uuid[6] & 0x0f) | 0x40); /* version 4 (random) */
        uuid[8] = (uint8_t)((uuid[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    }
    int rc = fw_cfg_add_u16(fw, FW_CFG_NB_CPUS, (uint16_t)info->ncpus);
    rc = rc ?: fw_cfg_add_u16(fw, FW_CFG_MAX_CPUS, (uint16_t)info->ncpus);
    rc = rc ?: fw_cfg_add_u64(fw, FW_CFG_RAM_SIZE, info->mem->ram_size);
    rc = rc ?: fw_cfg_add_u16(fw, FW_CFG_BOOT_MENU, 0);
    rc = rc ?: fw_cfg_add_bytes(fw, FW_CFG_UUID, uuid, 16);
    /* OVMF reads these sizes to decide whether a kernel was handed over. */
    rc = rc ?: fw_cfg_add_u32(fw, FW_CFG_KERNEL_SIZE, 0);
    rc = rc ?: fw_cfg_add_u32(fw, FW_CFG_INITRD_SIZE, 0);
    rc = rc ?: fw_cfg_add_u32(fw, FW_CFG_CMDLINE_SIZE, 0);
    rc = rc ?: fw_cfg_add_u32(fw, FW_CFG_SETUP_SIZE, 0);
    rc = rc ?: add_e820(fw, info->mem);
    if (rc == 0 && (rc = add_acpi(fw, info)) != 0)
        log_error("cannot build the ACPI tables for the firmware: %s", strerror(-rc));
    rc = rc ?: add_smbios(fw, info, uuid);
    if (rc == 0) {
        /*
         * One byte per S0..S5: bit 7 enabled, bits 0-2 SLP_TYP. Only S0 and
         * S5 exist on this machine; S3/S4 keep PIIX4's values but stay off.
         */
        const uint8_t states[6] = {0x80, 0, 0, 0x01, 0x02, 0x80 | ACPI_S5_SLP_TYP};
        rc = fw_cfg_add_file(fw, "etc/system-states", states, sizeof(states));
    }
    if (rc == 0 && info->bootorder)
        rc = fw_cfg_add_file(fw, "bootorder", info->bootorder, strlen(info->bootorder) + 1);
    if (rc)
        log_error("cannot set up fw_cfg for the firmware: %s", strerror(-rc));
    return rc;
}

int firmware_fw_cfg_linux(struct fw_cfg *fw, const char *kernel_path, const char *initrd_path,
                          const char *cmdline)
{
    uint8_t *k = NULL, *initrd = NULL;
    size_t klen, ilen = 0;
    int rc = read_whole_file(kernel_path, KERNEL_MAX_SIZE, &k, &klen);
    if (rc) {
        log_error("kernel %s: %s", kernel_path, strerror(-rc));
        return rc;
    }
    /* boot.rst: boot_flag 0xAA55 at 0x1FE, "HdrS" at 0x202, setup_sects at 0x1F1. */
    if (klen < 0x300 || rd16(k + 0x1fe) != 0xaa55 || memcmp(k + 0x202, "HdrS", 4) != 0) {
        log_error("kernel %s: not a bzImage (no Linux boot header)", kernel_path);
        rc = -ENOEXEC;
        goto out;
    }
    size_t setup_len = ((size_t)(k[0x1f1] ? k[0x1f1] : 4) + 1) * 512;
    if (setup_len >= klen) {
        log_error("kernel %s: truncated (setup larger than the file)", kernel_path);
        rc = -ENOEXEC;
        goto out;
    }
    if (initrd_path) {
        rc = read_whole_file(initrd_path, INITRD_MAX_SIZE, &initrd, &ilen);
        if (rc) {
            log_error("initrd %s: %s", initrd_path,
                      rc == -EFBIG ? "larger than 4 GiB" : strerror(-rc));
            goto out;
        }
    }
    const char *cl = cmdline ? cmdline : "";
    /* Addresses as QEMU gives them; OVMF places the pieces itself. */
    rc = fw_cfg_add_u32(fw, FW_CFG_SETUP_ADDR, 0x10000);
    rc = rc ?: fw_cfg_add_u32(fw, FW_CFG_SETUP_SIZE, (uint32_t)setup_len);
    rc = rc ?: fw_cfg_add_bytes(fw, FW_CFG_SETUP_DATA, k, setup_len);
    rc = rc ?: fw_cfg_add_u32(fw, FW_CFG_KERNEL_ADDR, 0x100000);
    rc = rc ?: fw_cfg_add_u32(fw, FW_CFG_KERNEL_SIZE, (uint32_t)(klen - setup_len));
    rc = rc ?: fw_cfg_add_bytes(fw, FW_CFG_KERNEL_DATA, k + setup_len, klen - setup_len);
    rc = rc ?: fw_cfg_add_u32(fw, FW_CFG_INITRD_SIZE, (uint32_t)ilen);
    if (initrd)
        rc = rc ?: fw_cfg_add_bytes(fw, FW_CFG_INITRD_DATA, initrd, ilen);
    rc = rc ?: fw_cfg_add_u32(fw, FW_CFG_CMDLINE_ADDR, 0x20000);
    rc = rc ?: fw_cfg_add_u32(fw, FW_CFG_CMDLINE_SIZE, (uint32_t)strlen(cl) + 1);
    rc = rc ?: fw_cfg_add_bytes(fw, FW_CFG_CMDLINE_DATA, cl, strlen(cl) + 1);
    if (rc)
        log_error("kernel %s: cannot hand it to the firmware: %s", kernel_path, strerror(-rc));
out:
    free(k);
    free(initrd);
    return rc;
}

char *firmware_bootorder_virtio_blk(const unsigned *slots, size_t n)
{
    size_t cap = n * 40 + 1;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    size_t used = 0;
    s[0] = 0;
    for (size_t i = 0; i < n; i++)
        used += (size_t)snprintf(s + used, cap - used, "%s/pci@i0cf8/scsi@%x/disk@0,0",
                                 i ? "\n" : "", slots[i] & 0x1f);
    return s;
}
