# End-to-end tests of the krunkit binary's command line, --print-config,
# error exits and cleanup after a failed start (tests/cli/run-cli-tests.sh),
# and a libFuzzer run of the command-line parser (tests/cli/fuzz_args.c,
# seeded from tests/cli/corpus/) for CLI_FUZZ_SECONDS.

CLI_FUZZ_SECONDS ?= 20
CLI_FUZZ_SRCS    := tests/cli/fuzz_args.c src/cli/args.c src/cli/devopts.c src/core/config.c \
                    src/core/log.c

.PHONY: check-cli check-cli-fuzz
check-cli: deps $(BUILD)/krunkit
	@scripts/deps.sh python3
	@tests/cli/run-cli-tests.sh $(BUILD)/krunkit

$(BUILD)/cli-fuzz/fuzz_args: $(CLI_FUZZ_SRCS) src/cli/args.h src/cli/devopts.h src/core/config.h
	@mkdir -p $(dir $@)
	clang $(CPPFLAGS) $(CFLAGS) -std=gnu11 -O1 -g -Isrc -D_GNU_SOURCE -fno-omit-frame-pointer \
	    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	    $(CLI_FUZZ_SRCS) -o $@ $(LDFLAGS) -ljansson

check-cli-fuzz: deps $(BUILD)/cli-fuzz/fuzz_args
	@work=$(BUILD)/cli-fuzz/work; rm -rf $$work; mkdir -p $$work; \
	echo "fuzz: fuzz_args for $(CLI_FUZZ_SECONDS)s"; \
	$(BUILD)/cli-fuzz/fuzz_args -max_total_time=$(CLI_FUZZ_SECONDS) -print_final_stats=0 \
	    $$work tests/cli/corpus >$$work.log 2>&1 \
	    || { tail -40 $$work.log; echo "FAILED: fuzz fuzz_args"; exit 1; }

CHECK_TARGETS += check-cli check-cli-fuzz
