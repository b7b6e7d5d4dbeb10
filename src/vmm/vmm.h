/*
 * The VMM's public surface ("our libkrun"): build a machine from a
 * vm_config, run it, control it through struct vm_control.
 *
 * main() does: parse -> vmm_create -> start REST -> write pidfile ->
 * vmm_run (blocks until the VM ends) -> stop REST -> remove pidfile.
 */
#ifndef KRUNKIT_VMM_VMM_H
#define KRUNKIT_VMM_VMM_H

#include "core/config.h"
#include "cli/vm_control.h"

struct vmm;

/*
 * Build the machine: open /dev/kvm, allocate RAM, create devices and open
 * their backends. Logs the reason and returns -errno on failure, leaving
 * nothing behind. cfg must outlive the vmm.
 */
int vmm_create(const struct vm_config *cfg, struct vmm **out);

/* The control seam for the REST service and signal handlers. */
struct vm_control vmm_control(struct vmm *vmm);

/*
 * Start the vCPUs and block until the VM ends. Returns the process exit
 * status: 0 when the guest powered off or was stopped, non-zero (after
 * logging why) on failure.
 */
int vmm_run(struct vmm *vmm);

void vmm_destroy(struct vmm *vmm);

#endif
