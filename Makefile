# krunkit: `make` builds build/krunkit, `make check` runs every test,
# `make demo` boots the demo guest, `make clean` removes build/.
# Missing Debian packages are installed by scripts/deps.sh (as root).

CC      ?= cc
BUILD   := build
CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu11 -Wall -Wextra -Werror -Isrc -D_GNU_SOURCE -MMD -MP
LDLIBS  := -ljansson -luring -lz -lseccomp -lpthread

# Debian packages the build and the unit tests need.
BUILD_DEPS := libcmocka-dev libjansson-dev liburing-dev libseccomp-dev zlib1g-dev curl clang

LIB_SRCS  := $(filter-out src/main.c,$(shell find src -name '*.c' | sort))
LIB_OBJS  := $(LIB_SRCS:%.c=$(BUILD)/%.o)
UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
# Shared test doubles (fake guest memory, ...), linked into every unit test.
SUPPORT_SRCS := $(sort $(wildcard tests/unit/support/*.c))
SUPPORT_OBJS := $(SUPPORT_SRCS:%.c=$(BUILD)/%.o)

.PHONY: all deps check check-unit clean demo format
all: deps $(BUILD)/krunkit

deps:
	@scripts/deps.sh $(BUILD_DEPS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libkrunkit.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/krunkit: $(BUILD)/src/main.o $(BUILD)/libkrunkit.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(SUPPORT_OBJS) $(BUILD)/libkrunkit.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

# Each test area adds its own targets to CHECK_TARGETS in tests/<area>/check.mk.
CHECK_TARGETS := check-unit
-include $(sort $(wildcard tests/*/check.mk))

check-unit: deps $(UNIT_BINS) $(BUILD)/krunkit
	@scripts/run-unit-tests.sh $(UNIT_BINS)

check: deps
	@$(MAKE) --no-print-directory $(CHECK_TARGETS)

demo: all
	scripts/demo.sh

format:
	clang-format -i $$(find src tests bench -name '*.[ch]')

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
