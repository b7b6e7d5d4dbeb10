/*
 * The seam between the front end (REST service, signal handling) and the
 * VMM: query the state, ask for a state change. Nothing else crosses it.
 *
 * The VMM implements it (src/vmm/vm.c); tests use their own double.
 * Both callbacks may be called from any thread.
 */
#ifndef KRUNKIT_CLI_VM_CONTROL_H
#define KRUNKIT_CLI_VM_CONTROL_H

enum vm_state {
    VM_STATE_STARTING,
    VM_STATE_RUNNING,
    VM_STATE_PAUSING,
    VM_STATE_PAUSED,
    VM_STATE_RESUMING,
    VM_STATE_STOPPING,
    VM_STATE_STOPPED,
    VM_STATE_ERROR,
};

enum vm_request {
    VM_REQ_STOP,      /* graceful: ACPI power button, guest powers off */
    VM_REQ_HARD_STOP, /* immediate */
    VM_REQ_PAUSE,
    VM_REQ_RESUME,
};

struct vm_control {
    enum vm_state (*get_state)(void *opaque);
    /* 0 when accepted, -EINVAL when not possible in the current state. */
    int (*request)(void *opaque, enum vm_request req);
    void *opaque;
};

/* Apple's names, as vfkit and krunkit report them: "VirtualMachineStateRunning". */
const char *vm_state_name(enum vm_state state);

/* "Stop", "HardStop", "Pause", "Resume" -> request; -1 when unknown. */
int vm_request_from_name(const char *name);

#endif
