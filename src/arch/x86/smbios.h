/*
 * SMBIOS tables for firmware (DMTF DSP0134 3.0): the 64-bit "_SM3_" entry
 * point and the structure table, handed to OVMF through fw_cfg as
 * etc/smbios/smbios-anchor and etc/smbios/smbios-tables, the way QEMU does.
 * OVMF reads the version from the anchor and installs the structures as
 * they are; the anchor's table address is left 0 for the firmware to fill.
 *
 * Structures (DSP0134 6.2 lists the required ones): type 0 BIOS, 1 system
 * (with the VM's UUID), 3 chassis, 4 processor (one socket), 11 OEM strings
 * (only when there are any), 16 memory array, 17 memory device, 19 memory
 * array mapped address (one per RAM region), 32 boot information, 127 end.
 */
#ifndef KRUNKIT_ARCH_X86_SMBIOS_H
#define KRUNKIT_ARCH_X86_SMBIOS_H

#include <stddef.h>
#include <stdint.h>

#include "vmm/guest_mem.h"

#define SMBIOS_FWCFG_ANCHOR "etc/smbios/smbios-anchor"
#define SMBIOS_FWCFG_TABLES "etc/smbios/smbios-tables"

#define SMBIOS3_ANCHOR_LEN 0x18
#define SMBIOS_MAX_OEM_STRINGS 255
#define SMBIOS_MAX_STRING 4095 /* bytes per OEM string, our own limit */

struct smbios_info {
    unsigned ncpus;
    const struct guest_mem *mem; /* RAM regions: size, and one type 19 each */
    uint8_t uuid[16];            /* RFC 4122 byte order; stored in SMBIOS order */
    char *const *oem_strings;
    size_t n_oem_strings;
};

struct smbios_blobs {
    uint8_t *anchor; /* SMBIOS3_ANCHOR_LEN bytes */
    size_t anchor_len;
    uint8_t *tables;
    size_t tables_len;
};

/*
 * Build both blobs. -EINVAL (logged) for an OEM string that is empty or too
 * long or too many of them, or no RAM; -ENOMEM.
 */
int smbios_build(const struct smbios_info *info, struct smbios_blobs *out);
void smbios_blobs_free(struct smbios_blobs *b);

#endif
