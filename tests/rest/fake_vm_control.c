/*
 * Scripted vm_control test double (see fake_vm_control.h). The REST thread
 * calls it while the harness's main thread scripts it: one mutex guards all.
 *
 * Accepted requests: Stop from Running or Paused (-> Stopping), HardStop
 * from anything but Stopped (-> Stopped), Pause from Running (-> Pausing),
 * Resume from Paused (-> Resuming); anything else is -EINVAL.
 */
#include "fake_vm_control.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fake_vm {
    struct vm_control ctl;
    pthread_mutex_t lock;
    enum vm_state state;
    int fail_next;
    char log[4096];
};

static const char *request_name(enum vm_request req)
{
    switch (req) {
    case VM_REQ_STOP:
        return "Stop";
    case VM_REQ_HARD_STOP:
        return "HardStop";
    case VM_REQ_PAUSE:
        return "Pause";
    case VM_REQ_RESUME:
        return "Resume";
    }
    return "?";
}

static enum vm_state fake_get_state(void *opaque)
{
    return fake_vm_state(opaque);
}

static int fake_request(void *opaque, enum vm_request req)
{
    struct fake_vm *vm = opaque;
    int r = -EINVAL;

    pthread_mutex_lock(&vm->lock);
    size_t used = strlen(vm->log);
    snprintf(vm->log + used, sizeof(vm->log) - used, "%s%s", used ? "," : "", request_name(req));
    if (vm->fail_next) {
        r = vm->fail_next;
        vm->fail_next = 0;
    } else {
        switch (req) {
        case VM_REQ_STOP:
            if (vm->state == VM_STATE_RUNNING || vm->state == VM_STATE_PAUSED) {
                vm->state = VM_STATE_STOPPING;
                r = 0;
            }
            break;
        case VM_REQ_HARD_STOP:
            if (vm->state != VM_STATE_STOPPED) {
                vm->state = VM_STATE_STOPPED;
                r = 0;
            }
            break;
        case VM_REQ_PAUSE:
            if (vm->state == VM_STATE_RUNNING) {
                vm->state = VM_STATE_PAUSING;
                r = 0;
            }
            break;
        case VM_REQ_RESUME:
            if (vm->state == VM_STATE_PAUSED) {
                vm->state = VM_STATE_RESUMING;
                r = 0;
            }
            break;
        }
    }
    pthread_mutex_unlock(&vm->lock);
    return r;
}

struct fake_vm *fake_vm_new(enum vm_state initial)
{
    struct fake_vm *vm = calloc(1, sizeof(*vm));
    if (!vm)
        return NULL;
    pthread_mutex_init(&vm->lock, NULL);
    vm->state = initial;
    vm->ctl.get_state = fake_get_state;
    vm->ctl.request = fake_request;
    vm->ctl.opaque = vm;
    return vm;
}

void fake_vm_free(struct fake_vm *vm)
{
    if (!vm)
        return;
    pthread_mutex_destroy(&vm->lock);
    free(vm);
}

const struct vm_control *fake_vm_control(struct fake_vm *vm)
{
    return &vm->ctl;
}

void fake_vm_set_state(struct fake_vm *vm, enum vm_state st)
{
    pthread_mutex_lock(&vm->lock);
    vm->state = st;
    pthread_mutex_unlock(&vm->lock);
}

enum vm_state fake_vm_state(struct fake_vm *vm)
{
    pthread_mutex_lock(&vm->lock);
    enum vm_state st = vm->state;
    pthread_mutex_unlock(&vm->lock);
    return st;
}

enum vm_state fake_vm_settle(struct fake_vm *vm)
{
    pthread_mutex_lock(&vm->lock);
    if (vm->state == VM_STATE_STOPPING)
        vm->state = VM_STATE_STOPPED;
    else if (vm->state == VM_STATE_PAUSING)
        vm->state = VM_STATE_PAUSED;
    else if (vm->state == VM_STATE_RESUMING)
        vm->state = VM_STATE_RUNNING;
    enum vm_state st = vm->state;
    pthread_mutex_unlock(&vm->lock);
    return st;
}

void fake_vm_fail_next(struct fake_vm *vm, int err)
{
    pthread_mutex_lock(&vm->lock);
    vm->fail_next = err;
    pthread_mutex_unlock(&vm->lock);
}

void fake_vm_requests(struct fake_vm *vm, char *buf, size_t size)
{
    pthread_mutex_lock(&vm->lock);
    snprintf(buf, size, "%s", vm->log);
    pthread_mutex_unlock(&vm->lock);
}
