/* Placeholder until the VMM core lands: refuses to run a VM. */
#include "vmm/vmm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "cli/log.h"

int vmm_create(const struct vm_config *cfg, struct vmm **out)
{
    (void)cfg;
    *out = NULL;
    int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        log_error("cannot open /dev/kvm: %m (KVM is required to run a VM)");
        return -errno;
    }
    close(fd);
    log_error("the VMM is not implemented yet");
    return -ENOSYS;
}

static enum vm_state stub_state(void *opaque)
{
    (void)opaque;
    return VM_STATE_STOPPED;
}

static int stub_request(void *opaque, enum vm_request req)
{
    (void)opaque;
    (void)req;
    return -EINVAL;
}

struct vm_control vmm_control(struct vmm *vmm)
{
    return (struct vm_control){.get_state = stub_state, .request = stub_request, .opaque = vmm};
}

int vmm_run(struct vmm *vmm)
{
    (void)vmm;
    return 1;
}

void vmm_destroy(struct vmm *vmm)
{
    (void)vmm;
}
