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
