/*
 * UEFI firmware for the PC machine: finding and checking the image, the
 * variable store, and what the firmware reads through fw_cfg.
 *
 * Images follow the PI specification's firmware volume layout (PI 1.7,
 * vol. 3, 3.2.1 EFI_FIRMWARE_VOLUME_HEADER): a code image starts with a
 * firmware volume header ("_FVH" at offset 40); a variable store template
 * is one firmware volume whose file system GUID is the NV data GUID
 * (gEfiSystemNvDataFvGuid) and whose FvLength is the whole store; a
 * combined image (OVMF.fd) is such a store followed by the code.
 *
 * Guest layout, as QEMU maps pflash on the PC: the code ends at 4 GiB, the
 * variable store sits right below it.
 *
 * The variable store:
 *   --bootloader efi,variable-store=PATH        PATH must exist
 *   --bootloader efi,variable-store=PATH,create created from the template when missing
 *   no --bootloader, or efi without a store     volatile: a copy of the template
 *                                               in memory for this process only
 * See docs/efi.md for the reasons.
 */
#ifndef KRUNKIT_ARCH_X86_FIRMWARE_H
#define KRUNKIT_ARCH_X86_FIRMWARE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arch/x86/acpi.h"
#include "core/config.h"
#include "hw/fw_cfg.h"
#include "hw/pflash.h"
#include "vmm/guest_mem.h"

#define FIRMWARE_MAX_SIZE (16u << 20) /* code + variable store, below 4 GiB */
#define FIRMWARE_ALIGN 4096u
#define FIRMWARE_END 0x100000000ull

#define FIRMWARE_DEFAULT_CODE "/usr/share/OVMF/OVMF_CODE_4M.fd"
#define FIRMWARE_DEFAULT_VARS "/usr/share/OVMF/OVMF_VARS_4M.fd"

struct firmware_request {
    const char *firmware_path;  /* --firmware-path; NULL: try `search` */
    const char *const *search;  /* NULL-terminated; NULL: firmware_default_search */
    const char *variable_store; /* NULL: volatile store */
    bool create;
};

/* x86-64 OVMF as Debian (first), Fedora and Arch install it. */
extern const char *const firmware_default_search[];

struct firmware {
    uint8_t *code; /* page-aligned, read-only mapping of the code image */
    size_t code_size;
    uint64_t code_gpa; /* FIRMWARE_END - code_size */
    struct pflash *vars;
    size_t vars_size;
    uint64_t vars_gpa; /* code_gpa - vars_size */
    char *code_path;
    char *template_path; /* where the store's initial contents came from */
    char *store_path;    /* NULL: volatile */
    bool combined;
};

/* The request a vm_config makes (pointers into cfg). */
void firmware_request_from_config(const struct vm_config *cfg, struct firmware_request *req);

/*
 * Find, check and load the firmware and open (or create) the variable store.
 * Every failure is logged naming the file concerned; on failure nothing is
 * left behind (no partial store file) and fw is empty.
 */
int firmware_load(const struct firmware_request *req, struct firmware *fw);
void firmware_free(struct firmware *fw);

/*
 * Checks of an image in memory, for firmware_load and tests: 0 when buf
 * holds a firmware volume header at off; sets *fv_len. -EINVAL otherwise.
 */
int firmware_fv_header(const uint8_t *buf, size_t len, size_t off, uint64_t *fv_len);
/* Size of the variable store at the start of buf (0: none, it is code only). */
size_t firmware_vars_prefix(const uint8_t *buf, size_t len);

/* What the firmware reads through fw_cfg on QEMU's PC (NESTED-LAB.md lists it). */
struct firmware_fw_cfg_info {
    unsigned ncpus;
    const struct guest_mem *mem;    /* RAM regions: etc/e820, SMBIOS, RAM size */
    const struct acpi_layout *acpi; /* tables through etc/table-loader */
    const uint8_t *uuid;            /* 16 bytes, RFC 4122 order; NULL: random */
    char *const *oem_strings;       /* SMBIOS type 11 */
    size_t n_oem_strings;
    const char *bootorder; /* "bootorder" text; NULL: no file */
    /*
     * Optional: called once, when the firmware first selects an ACPI file
     * (after it has programmed the PCI BARs), to adjust the layout (the PCI
     * windows) to what the firmware did; the tables are then rebuilt, as
     * QEMU rebuilds them at that point. Kept only when every file keeps its
     * size (the firmware has read the sizes already).
     */
    void (*acpi_layout_now)(void *opaque, struct acpi_layout *l);
    void *acpi_layout_opaque;
};

/*
 * Signature/id (fw_cfg_create), CPU counts, RAM size, UUID, boot menu off,
 * zero kernel/initrd/cmdline/setup sizes, and the files etc/e820,
 * etc/acpi/{rsdp,tables}, etc/table-loader, etc/smbios/smbios-{anchor,tables},
 * etc/system-states and bootorder. Logs and returns -errno.
 */
int firmware_fw_cfg_setup(struct fw_cfg *fw, const struct firmware_fw_cfg_info *info);

/*
 * Kernel handed to the firmware (QEMU's -kernel with firmware): the bzImage
 * split into its real-mode setup and protected-mode part, the initrd and
 * the command line, as the FW_CFG_{SETUP,KERNEL,INITRD,CMDLINE}_* items.
 * OVMF starts it through the kernel's EFI stub. initrd and cmdline may be
 * NULL. Logs and returns -errno.
 */
int firmware_fw_cfg_linux(struct fw_cfg *fw, const char *kernel_path, const char *initrd_path,
                          const char *cmdline);

/*
 * QEMU's bootorder text for virtio-blk disks in the given PCI slots, in
 * order ("/pci@i0cf8/scsi@SLOT/disk@0,0" lines). malloc'ed; NULL on ENOMEM.
 */
char *firmware_bootorder_virtio_blk(const unsigned *slots, size_t n);

#endif
