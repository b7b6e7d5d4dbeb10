/* The real system calls behind vmm/kvm_sys.h. */
#include "vmm/kvm_sys.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vmm/host_files.h"

static int real_open_kvm(void)
{
    /* Opened once at start and handed out again at each reboot (host_files.h). */
    return host_file_open("/dev/kvm", O_RDWR);
}

static int real_ioctl(int fd, unsigned long req, void *arg)
{
    return ioctl(fd, req, arg);
}

static void *real_mmap_run(int vcpu_fd, size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu_fd, 0);
    return p == MAP_FAILED ? NULL : p;
}

static void real_munmap_run(void *run, size_t size)
{
    munmap(run, size);
}

static const struct kvm_sys real_sys = {
    .open_kvm = real_open_kvm,
    .ioctl = real_ioctl,
    .mmap_run = real_mmap_run,
    .munmap_run = real_munmap_run,
    .close = close,
};

static const struct kvm_sys *current = &real_sys;

const struct kvm_sys *kvm_sys(void)
{
    return current;
}

void kvm_sys_replace(const struct kvm_sys *sys)
{
    current = sys ? sys : &real_sys;
}
