/*
 * The virtio devices the config asks for, created for each boot and
 * destroyed at its end (their host side stays open: vmm/backends.h).
 */
#ifndef KRUNKIT_VMM_VM_DEVICES_H
#define KRUNKIT_VMM_VM_DEVICES_H

#include <stdbool.h>

#include "core/config.h"

struct vmm;

/* Whether this VMM can build a device of this type. */
bool vm_device_supported(enum dev_type type);
/* Create every device of vmm->backends; -errno (logged) on the first failure. */
int vm_devices_create(struct vmm *vmm);
void vm_devices_destroy(struct vmm *vmm);
/*
 * Pause: afterwards no device writes guest memory (rings, buffers) until
 * vm_devices_resume; in-flight disk I/O is waited for (virtio_dev_quiesce).
 */
void vm_devices_quiesce(struct vmm *vmm);
void vm_devices_resume(struct vmm *vmm);

#endif
