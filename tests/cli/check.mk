# End-to-end tests of the krunkit binary's command line, --print-config,
# error exits and cleanup after a failed start (tests/cli/run-cli-tests.sh),
# and a libFuzzer run of the command-line parser (tests/cli/fuzz_args.c,
# seeded from tests/cli/corpus/) for CLI_FUZZ_SECONDS.

CLI_FUZZ_SECONDS ?= 20
# The parser walks the device table (src/devices/), whose descriptors reach
# the device models: link the fuzz build of the whole library (its objects
# are tests/fuzz/check.mk's), the linker keeps what is used.
CLI_FUZZ_LIBOBJS := $(LIB_SRCS:%.c=$(BUILD)/fuzz/obj/%.o)

.PHONY: check-cli check-cli-fuzz
check-cli: deps $(BUILD)/krunkit
	@scripts/deps.sh python3
	@tests/cli/run-cli-tests.sh $(BUILD)/krunkit

$(BUILD)/cli-fuzz/fuzz_args: tests/cli/fuzz_args.c $(CLI_FUZZ_LIBOBJS)
	@mkdir -p $(dir $@)
	@rm -f $(BUILD)/cli-fuzz/libkrunkit.a
	ar rcs $(BUILD)/cli-fuzz/libkrunkit.a $(CLI_FUZZ_LIBOBJS)
	clang $(CPPFLAGS) $(CFLAGS) -std=gnu11 -O1 -g -Isrc -D_GNU_SOURCE -fno-omit-frame-pointer \
	    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	    tests/cli/fuzz_args.c $(BUILD)/cli-fuzz/libkrunkit.a -o $@ $(LDFLAGS) $(LDLIBS)

check-cli-fuzz: deps $(BUILD)/cli-fuzz/fuzz_args
	@work=$(BUILD)/cli-fuzz/work; rm -rf $$work; mkdir -p $$work; \
	echo "fuzz: fuzz_args for $(CLI_FUZZ_SECONDS)s"; \
	$(BUILD)/cli-fuzz/fuzz_args -max_total_time=$(CLI_FUZZ_SECONDS) -print_final_stats=0 \
	    $$work tests/cli/corpus >$$work.log 2>&1 \
	    || { tail -40 $$work.log; echo "FAILED: fuzz fuzz_args"; exit 1; }

CHECK_TARGETS += check-cli check-cli-fuzz
