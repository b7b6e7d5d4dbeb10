/*
 * Names crossing the REST API for the vm_control seam: Apple's
 * VZVirtualMachine.State names that vfkit and krunkit report in
 * GET /vm/state, and the action names POST /vm/state takes
 * (see shared/compat/CLIENTS.md, "The REST service").
 */
#include "cli/vm_control.h"

#include <string.h>

const char *vm_state_name(enum vm_state state)
{
    switch (state) {
    case VM_STATE_STARTING:
        return "VirtualMachineStateStarting";
    case VM_STATE_RUNNING:
        return "VirtualMachineStateRunning";
    case VM_STATE_PAUSING:
        return "VirtualMachineStatePausing";
    case VM_STATE_PAUSED:
        return "VirtualMachineStatePaused";
    case VM_STATE_RESUMING:
        return "VirtualMachineStateResuming";
    case VM_STATE_STOPPING:
        return "VirtualMachineStateStopping";
    case VM_STATE_STOPPED:
        return "VirtualMachineStateStopped";
    case VM_STATE_ERROR:
        break;
    }
    /* A value outside the enum is a state nobody can act on: report it as one. */
    return "VirtualMachineStateError";
}

int vm_request_from_name(const char *name)
{
    /* Case-sensitive, as vfkit and krunkit match them. */
    static const struct {
        const char *name;
        enum vm_request req;
    } names[] = {
        {"Stop", VM_REQ_STOP},
        {"HardStop", VM_REQ_HARD_STOP},
        {"Pause", VM_REQ_PAUSE},
        {"Resume", VM_REQ_RESUME},
    };

    if (!name)
        return -1;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(name, names[i].name) == 0)
            return (int)names[i].req;
    }
    return -1;
}
