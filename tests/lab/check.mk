# The nested lab (tests/lab/): `make check-lab` installs what the lab needs,
# builds the L2 test guest (and the L1 lab host when this machine has no
# usable /dev/kvm; both cached by input digests), and runs the scenarios of
# tests/lab/scenarios.list: directly on a usable /dev/kvm, else all inside
# one L1 boot under QEMU TCG. `make check-lab LAB_SCENARIOS="a b"` runs
# only those; LAB_FORCE_NESTED=1 forces the nested lab.

.PHONY: check-lab lab-setup bench

lab-setup:
	@tests/lab/setup.sh

check-lab: deps lab-setup $(BUILD)/krunkit
	@tests/lab/run.sh $(LAB_SCENARIOS)

CHECK_TARGETS += check-lab

# Benchmarks (bench/*.sh) in the same lab; not part of `make check`.
# `make bench BENCH="boot"` runs only those.
bench: deps $(BUILD)/krunkit
	@tests/lab/setup.sh --bench
	@bench/run.sh $(BENCH)

# The arm64 lab (tests/lab/arm64/): an arm64 L1 under qemu-system-aarch64's
# TCG, arm64 L2 guests, krunkit cross-built for arm64 (`make ARCH=arm64`:
# build/arm64/krunkit). It runs tests/lab/arm64/scenarios.list, or
# LAB_ARM64_SCENARIOS. Part of `make check` on x86-64 hosts (the one kind
# of machine that cross-builds it here).
.PHONY: check-lab-arm64 lab-setup-arm64 arm64-krunkit
LAB_ARM64_SCENARIOS ?=

lab-setup-arm64:
	@tests/lab/setup.sh --arch arm64

arm64-krunkit:
	@$(MAKE) --no-print-directory ARCH=arm64 all

check-lab-arm64: lab-setup-arm64 arm64-krunkit
	@tests/lab/run.sh --arch arm64 $(LAB_ARM64_SCENARIOS)

ifeq ($(HOST_ARCH)-$(ARCH),x86-x86)
CHECK_TARGETS += check-lab-arm64
endif
