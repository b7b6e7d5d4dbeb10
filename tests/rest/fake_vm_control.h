/*
 * A scripted stand-in for the VMM behind struct vm_control, for the REST
 * tests only: state changes follow the table in fake_vm_control.c, and the
 * transitional states (Stopping, Pausing, Resuming) end when the test says so.
 */
#ifndef KRUNKIT_TESTS_REST_FAKE_VM_CONTROL_H
#define KRUNKIT_TESTS_REST_FAKE_VM_CONTROL_H

#include "cli/vm_control.h"

#include <stddef.h>

struct fake_vm;

struct fake_vm *fake_vm_new(enum vm_state initial);
void fake_vm_free(struct fake_vm *vm);
/* The seam the REST service is given; valid while vm lives. */
const struct vm_control *fake_vm_control(struct fake_vm *vm);

void fake_vm_set_state(struct fake_vm *vm, enum vm_state st);
enum vm_state fake_vm_state(struct fake_vm *vm);
/* End a transitional state: Stopping -> Stopped, Pausing -> Paused, Resuming -> Running. */
enum vm_state fake_vm_settle(struct fake_vm *vm);
/* The next request fails with err (a negative errno) whatever the state. */
void fake_vm_fail_next(struct fake_vm *vm, int err);
/* Every request received so far, "Stop,Pause" (comma-separated), into buf. */
void fake_vm_requests(struct fake_vm *vm, char *buf, size_t size);

#endif
