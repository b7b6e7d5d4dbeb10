/*
 * QEMU's firmware configuration device (fw_cfg), as QEMU documents it in
 * docs/specs/fw_cfg.rst. The x86 I/O port flavour: a 16-bit selector at
 * port 0x510, an 8-bit data port at 0x511 and the DMA address register at
 * 0x514-0x51b (big-endian 64 bits, written as two 32-bit halves, the low
 * half starting the transfer). The MMIO flavour (arm64): data at +0,
 * big-endian selector at +8, the DMA address at +16. Items are numbered by key; named files get
 * keys from FW_CFG_FILE_FIRST up in name order and are listed in the file
 * directory (key 0x19). This is what OVMF and SeaBIOS read on QEMU.
 *
 * Every item's data is copied when added: the caller keeps ownership of what
 * it passes in. Items are added before the guest runs; the guest side
 * (port handlers) is serialised by an internal lock.
 */
#ifndef KRUNKIT_HW_FW_CFG_H
#define KRUNKIT_HW_FW_CFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/guest_mem.h"
#include "vmm/io_bus.h"

#define FW_CFG_IO_BASE 0x510 /* selector (16-bit write) */
#define FW_CFG_IO_LEN 2      /* + data at 0x511 (8-bit) */
#define FW_CFG_DMA_BASE 0x514
#define FW_CFG_DMA_LEN 8
#define FW_CFG_MMIO_DATA 0
#define FW_CFG_MMIO_SELECTOR 8
#define FW_CFG_MMIO_DMA 16
#define FW_CFG_MMIO_LEN 24

/* Well-known keys (QEMU include/standard-headers/linux/qemu_fw_cfg.h). */
enum fw_cfg_key {
    FW_CFG_SIGNATURE = 0x00,
    FW_CFG_ID = 0x01,
    FW_CFG_UUID = 0x02,
    FW_CFG_RAM_SIZE = 0x03,
    FW_CFG_NOGRAPHIC = 0x04,
    FW_CFG_NB_CPUS = 0x05,
    FW_CFG_MACHINE_ID = 0x06,
    FW_CFG_KERNEL_ADDR = 0x07,
    FW_CFG_KERNEL_SIZE = 0x08,
    FW_CFG_KERNEL_CMDLINE = 0x09,
    FW_CFG_INITRD_ADDR = 0x0a,
    FW_CFG_INITRD_SIZE = 0x0b,
    FW_CFG_BOOT_DEVICE = 0x0c,
    FW_CFG_NUMA = 0x0d,
    FW_CFG_BOOT_MENU = 0x0e,
    FW_CFG_MAX_CPUS = 0x0f,
    FW_CFG_KERNEL_ENTRY = 0x10,
    FW_CFG_KERNEL_DATA = 0x11,
    FW_CFG_INITRD_DATA = 0x12,
    FW_CFG_CMDLINE_ADDR = 0x13,
    FW_CFG_CMDLINE_SIZE = 0x14,
    FW_CFG_CMDLINE_DATA = 0x15,
    FW_CFG_SETUP_ADDR = 0x16,
    FW_CFG_SETUP_SIZE = 0x17,
    FW_CFG_SETUP_DATA = 0x18,
    FW_CFG_FILE_DIR = 0x19,
    FW_CFG_FILE_FIRST = 0x20,
};

/* Selector bits above the item number. */
#define FW_CFG_WRITE_CHANNEL 0x4000
#define FW_CFG_ARCH_LOCAL 0x8000

/* FW_CFG_ID feature bits. */
#define FW_CFG_VERSION 0x01     /* the traditional port interface */
#define FW_CFG_VERSION_DMA 0x02 /* the DMA interface */

/* FWCfgDmaAccess control bits (the descriptor is 16 big-endian bytes). */
#define FW_CFG_DMA_CTL_ERROR 0x01
#define FW_CFG_DMA_CTL_READ 0x02
#define FW_CFG_DMA_CTL_SKIP 0x04
#define FW_CFG_DMA_CTL_SELECT 0x08
#define FW_CFG_DMA_CTL_WRITE 0x10

/* "QEMU CFG", what a read of the DMA address register returns. */
#define FW_CFG_DMA_SIGNATURE 0x51454d5520434647ull

#define FW_CFG_MAX_FILES 64
#define FW_CFG_MAX_NAME 56 /* bytes in a directory entry, NUL included */

struct fw_cfg;

/* Signature and id items are present from the start. NULL on ENOMEM. */
struct fw_cfg *fw_cfg_create(const struct guest_mem *gm);
void fw_cfg_destroy(struct fw_cfg *fw);

/*
 * Numbered items (key < FW_CFG_FILE_FIRST, optionally | FW_CFG_ARCH_LOCAL);
 * integers are stored little-endian as QEMU does. Replaces an existing item.
 * -EINVAL for a key in the file range, -ENOMEM.
 */
int fw_cfg_add_bytes(struct fw_cfg *fw, uint16_t key, const void *data, size_t len);
int fw_cfg_add_u16(struct fw_cfg *fw, uint16_t key, uint16_t value);
int fw_cfg_add_u32(struct fw_cfg *fw, uint16_t key, uint32_t value);
int fw_cfg_add_u64(struct fw_cfg *fw, uint16_t key, uint64_t value);

/*
 * Named file (name at most FW_CFG_MAX_NAME - 1 bytes). Keys of files after
 * it in name order move up by one, as QEMU assigns them. -EEXIST for a name
 * already present, -ENAMETOOLONG, -ENOSPC past FW_CFG_MAX_FILES, -ENOMEM.
 */
int fw_cfg_add_file(struct fw_cfg *fw, const char *name, const void *data, size_t len);
/* Same, but the guest may overwrite its bytes through DMA write. */
int fw_cfg_add_file_writable(struct fw_cfg *fw, const char *name, const void *data, size_t len);
/* Replace the contents of an existing file (its key stays). -ENOENT, -ENOMEM. */
int fw_cfg_modify_file(struct fw_cfg *fw, const char *name, const void *data, size_t len);
/* The key of a file, or -ENOENT. */
int fw_cfg_file_key(struct fw_cfg *fw, const char *name);

/*
 * Called when the guest selects the file (port or DMA), before it reads, as
 * QEMU's select callbacks are: the VMM may then refresh file contents that
 * depend on what the firmware did so far (QEMU rebuilds its ACPI tables
 * there, once the firmware has programmed the PCI BARs). The callback runs
 * under the device lock, which is recursive: it may call
 * fw_cfg_modify_file (keeping sizes: the firmware read them from the
 * directory already) but must not add files. release (may be NULL) is
 * called on opaque when the device is destroyed. -ENOENT for no such file.
 */
typedef void (*fw_cfg_select_fn)(void *opaque, const char *name);
int fw_cfg_set_select_cb(struct fw_cfg *fw, const char *name, fw_cfg_select_fn fn, void *opaque,
                         void (*release)(void *opaque));

/* Machine reset: no item selected, DMA address cleared. Items stay. */
void fw_cfg_reset(struct fw_cfg *fw);

/* Ports: opaque = struct fw_cfg. */
extern const struct io_ops fw_cfg_io_ops;   /* FW_CFG_IO_BASE, FW_CFG_IO_LEN */
extern const struct io_ops fw_cfg_dma_ops;  /* FW_CFG_DMA_BASE, FW_CFG_DMA_LEN */
extern const struct io_ops fw_cfg_mmio_ops; /* FW_CFG_MMIO_LEN bytes */
/* Register both port ranges on the port I/O bus. */
int fw_cfg_register(struct fw_cfg *fw, struct io_bus *pio);
/* Register the MMIO flavour at base on an MMIO bus. */
int fw_cfg_register_mmio(struct fw_cfg *fw, struct io_bus *mmio, uint64_t base);

#endif
