# Block layer (src/block/): raw and qcow2 tests whose oracle is QEMU's
# qemu-img/qemu-io (Debian qemu-utils). The test programs are ordinary
# cmocka unit tests (tests/unit/test_block*.c, test_qcow2*.c); check-unit
# skips them when qemu-img is missing, check-block installs it and requires
# it. The qcow2 fuzz target (tests/fuzz/fuzz_qcow2.c) runs under check-fuzz.

BLOCK_TEST_SRCS := $(sort $(wildcard tests/unit/test_block*.c tests/unit/test_qcow2*.c))
BLOCK_TEST_BINS := $(BLOCK_TEST_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: check-block block-deps
block-deps:
	@scripts/deps.sh qemu-utils

check-block: deps block-deps $(BLOCK_TEST_BINS)
	@BT_REQUIRE_QEMU=1 scripts/run-unit-tests.sh $(BLOCK_TEST_BINS)

CHECK_TARGETS += check-block

# Not part of check: drives the asynchronous interface like virtio-blk does,
# for comparison with `qemu-img bench` (see the file's header).
$(BUILD)/blk_bench: tests/block/blk_bench.c $(BUILD)/libkrunkit.a
	$(COMPILE_LINK) -o $@ $^ $(LDLIBS)
