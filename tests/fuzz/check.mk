# libFuzzer targets: every tests/fuzz/fuzz_*.c is built with clang's
# fuzzer, address and undefined-behaviour sanitizers against the project's
# sources and run for FUZZ_SECONDS, starting from tests/fuzz/corpus/<name>/.
# The user's CPPFLAGS/CFLAGS/LDFLAGS are passed too, before FUZZ_FLAGS so
# that the sanitizer build keeps its own -O1; no hardening flags here.

FUZZ_SECONDS ?= 20
FUZZ_CC      := clang
FUZZ_FLAGS   := -std=gnu11 -O1 -g -Isrc -D_GNU_SOURCE -fno-omit-frame-pointer \
                -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
FUZZ_SRCS    := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS    := $(FUZZ_SRCS:tests/fuzz/%.c=$(BUILD)/fuzz/%)
FUZZ_LIBOBJS := $(LIB_SRCS:%.c=$(BUILD)/fuzz/obj/%.o)
# The unit tests' fake machine and test driver (tests/unit/support), for
# targets that drive a device the way a guest would.
FUZZ_SUPPORT_OBJS := $(SUPPORT_SRCS:%.c=$(BUILD)/fuzz/obj/%.o)

# -MMD: the .d files (included by the Makefile) rebuild an object when a header it reads changes.
$(BUILD)/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CPPFLAGS) $(CFLAGS) $(FUZZ_FLAGS) -MMD -MP -c $< -o $@

$(BUILD)/fuzz/%: tests/fuzz/%.c $(FUZZ_LIBOBJS) $(FUZZ_SUPPORT_OBJS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CPPFLAGS) $(CFLAGS) $(FUZZ_FLAGS) -fsanitize=fuzzer $^ -o $@ $(LDFLAGS) $(LDLIBS)

# Keep the sanitizer objects between runs (make would delete them as intermediates).
.SECONDARY: $(FUZZ_LIBOBJS) $(FUZZ_SUPPORT_OBJS)

.PHONY: check-fuzz fuzz-build
fuzz-build: $(FUZZ_BINS)

check-fuzz: deps $(FUZZ_BINS)
	@set -e; for f in $(FUZZ_BINS); do \
	    name=$$(basename $$f); corpus=tests/fuzz/corpus/$$name; \
	    work=$(BUILD)/fuzz/work-$$name; rm -rf $$work; mkdir -p $$work; \
	    echo "fuzz: $$name for $(FUZZ_SECONDS)s"; \
	    $$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=0 $$work \
	        $$( [ -d $$corpus ] && echo $$corpus ) >$$work.log 2>&1 \
	        || { tail -40 $$work.log; echo "FAILED: fuzz $$name"; exit 1; }; \
	done

CHECK_TARGETS += check-fuzz
