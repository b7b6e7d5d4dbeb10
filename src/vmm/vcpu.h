/*
 * vCPU threads: one per vCPU, running KVM_RUN and handling the exits that
 * need userspace (MMIO of emulated devices, system events, and the arch's
 * own: vmm/arch.h). A vCPU parks when the VM is paused and leaves when it
 * ends; vcpu_kick() forces it out of KVM_RUN to notice.
 */
#ifndef KRUNKIT_VMM_VCPU_H
#define KRUNKIT_VMM_VCPU_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct vmm;

struct vcpu {
    struct vmm *vmm;
    unsigned index;
    int fd;
    struct kvm_run *run;
    pthread_t thread;
    bool started; /* a thread to join: written by the thread calling vcpu_start/vcpu_join */
    bool running; /* the thread may be kicked: under the VM lock */
    /*
     * Exit statistics, written by the vCPU thread only, logged at debug level;
     * port I/O (io_exits, hot_port) only where the arch has it.
     */
    uint64_t io_exits, mmio_exits;
    uint16_t hot_port; /* the port with the most exits seen in a row */
    uint64_t hot_port_exits;
};

/* Create the KVM vCPU, map its run area, give it its arch state (arch_vcpu_init). */
int vcpu_create(struct vcpu *v, struct vmm *vmm, unsigned index);
void vcpu_destroy(struct vcpu *v);
int vcpu_start(struct vcpu *v);
/* Force the vCPU out of KVM_RUN to look at the VM state; call with the VM lock held. */
void vcpu_kick(struct vcpu *v);
void vcpu_join(struct vcpu *v);

#endif
