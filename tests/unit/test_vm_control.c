/*
 * Unit tests of the REST names of the vm_control seam (src/cli/vm_control.c):
 * Apple's state names as vfkit and krunkit report them, and the action names
 * POST /vm/state takes (shared/compat/CLIENTS.md).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cli/vm_control.h"

static void test_state_names(void **state)
{
    (void)state;
    assert_string_equal(vm_state_name(VM_STATE_STARTING), "VirtualMachineStateStarting");
    assert_string_equal(vm_state_name(VM_STATE_RUNNING), "VirtualMachineStateRunning");
    assert_string_equal(vm_state_name(VM_STATE_PAUSING), "VirtualMachineStatePausing");
    assert_string_equal(vm_state_name(VM_STATE_PAUSED), "VirtualMachineStatePaused");
    assert_string_equal(vm_state_name(VM_STATE_RESUMING), "VirtualMachineStateResuming");
    assert_string_equal(vm_state_name(VM_STATE_STOPPING), "VirtualMachineStateStopping");
    assert_string_equal(vm_state_name(VM_STATE_STOPPED), "VirtualMachineStateStopped");
    assert_string_equal(vm_state_name(VM_STATE_ERROR), "VirtualMachineStateError");
}

static void test_unknown_state_is_error(void **state)
{
    (void)state;
    assert_string_equal(vm_state_name((enum vm_state)(VM_STATE_ERROR + 1)),
                        "VirtualMachineStateError");
    assert_string_equal(vm_state_name((enum vm_state) - 1), "VirtualMachineStateError");
}

static void test_request_names(void **state)
{
    (void)state;
    assert_int_equal(vm_request_from_name("Stop"), VM_REQ_STOP);
    assert_int_equal(vm_request_from_name("HardStop"), VM_REQ_HARD_STOP);
    assert_int_equal(vm_request_from_name("Pause"), VM_REQ_PAUSE);
    assert_int_equal(vm_request_from_name("Resume"), VM_REQ_RESUME);
}

static void test_unknown_request_names(void **state)
{
    (void)state;
    static const char *const bad[] = {"",      "stop",   "STOP",     "Stop ",
                                      " Stop", "Hard",   "hardstop", "Start",
                                      "Kill",  "Paused", "Stopx",    "VirtualMachineStateStopped"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(vm_request_from_name(bad[i]), -1);
    assert_int_equal(vm_request_from_name(NULL), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_state_names),
        cmocka_unit_test(test_unknown_state_is_error),
        cmocka_unit_test(test_request_names),
        cmocka_unit_test(test_unknown_request_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
