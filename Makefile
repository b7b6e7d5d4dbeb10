# krunkit: `make` builds build/krunkit, `make check` runs every test,
# `make demo` boots the demo guest, `make clean` removes build/.
# Missing Debian packages are installed by scripts/deps.sh (as root).
#
# The user's CC, CPPFLAGS, CFLAGS and LDFLAGS are honoured on every compile
# and link; the project's own flags (KRUNKIT_*) are kept apart and always
# added, so `make CFLAGS=-O0` still gets -Isrc, -std, the warnings.
# WERROR=0 turns -Werror off; HARDEN=0 turns the hardening flags off.

CC      ?= cc
BUILD   := build
CFLAGS  ?= -O2 -g
WERROR  ?= 1
HARDEN  ?= 1
PREFIX  ?= /usr/local
DESTDIR ?=
LDLIBS  := -ljansson -luring -lz -lseccomp -lpthread

WERROR_FLAG := $(if $(filter 1 yes,$(WERROR)),-Werror)
# _FORTIFY_SOURCE needs optimisation: skip it at -O0 or without any -O, and
# when the user's flags already choose a level.
NO_OPT := $(if $(filter -O0,$(CFLAGS)),1,$(if $(filter -O%,$(CFLAGS)),,1))
FORTIFY_FLAGS := $(if $(NO_OPT),,$(if $(findstring _FORTIFY_SOURCE,$(CPPFLAGS) $(CFLAGS)),,\
                 -U_FORTIFY_SOURCE -D_FORTIFY_SOURCE=2))
HARDEN_CPPFLAGS := $(if $(filter 1 yes,$(HARDEN)),$(FORTIFY_FLAGS))
HARDEN_CFLAGS   := $(if $(filter 1 yes,$(HARDEN)),-fstack-protector-strong -fPIE)
RELRO_LDFLAGS   := -Wl,-z,relro,-z,now
HARDEN_LDFLAGS  := $(if $(filter 1 yes,$(HARDEN)),-pie $(RELRO_LDFLAGS))

KRUNKIT_CPPFLAGS := -Isrc -D_GNU_SOURCE $(HARDEN_CPPFLAGS)
KRUNKIT_CFLAGS   := -std=gnu11 -Wall -Wextra $(WERROR_FLAG) -MMD -MP $(HARDEN_CFLAGS)
KRUNKIT_LDFLAGS  := $(HARDEN_LDFLAGS)
# Used by every rule here and in tests/*/check.mk. User flags come last so
# that they can override (e.g. CFLAGS="-O2 -Wno-error=...").
COMPILE = $(CC) $(KRUNKIT_CPPFLAGS) $(CPPFLAGS) $(KRUNKIT_CFLAGS) $(CFLAGS)
LINK    = $(CC) $(KRUNKIT_CFLAGS) $(CFLAGS) $(KRUNKIT_LDFLAGS) $(LDFLAGS)
# Compile and link in one command (a test tool built from one .c file).
COMPILE_LINK = $(COMPILE) $(KRUNKIT_LDFLAGS) $(LDFLAGS)

# Debian packages the build and the unit tests need (libfdt-dev: the host-run
# tests of src/arch/arm64's device tree, below).
BUILD_DEPS := libcmocka-dev libjansson-dev liburing-dev libseccomp-dev zlib1g-dev libfdt-dev \
              curl clang

# The architecture built for: one folder of src/arch/ (docs/porting.md).
HOST_ARCH := $(patsubst x86_64,x86,$(patsubst aarch64,arm64,$(shell uname -m)))
ARCH ?= $(HOST_ARCH)
ifeq ($(wildcard src/arch/$(ARCH)/arch.c),)
$(error ARCH=$(ARCH): no src/arch/$(ARCH)/arch.c (this VMM has: $(notdir $(wildcard src/arch/*))))
endif

# arm64 needs libfdt (its device tree). Cross-built from another host
# (`make ARCH=arm64` on x86-64) it goes to build/arm64/ with Debian's cross
# compiler and the :arm64 libraries (multiarch; scripts/deps.sh adds the
# architecture). libfdt-dev cannot be installed for two architectures at
# once (the packages conflict), and the host's copy is kept for the host-run
# tests: its headers are architecture-neutral, and the arm64 link takes the
# runtime library libfdt1:arm64 by its file name.
ifeq ($(ARCH),arm64)
ifneq ($(HOST_ARCH),arm64)
CROSS   := aarch64-linux-gnu-
BUILD   := build/arm64
ifneq ($(filter default undefined,$(origin CC)),)
CC      := $(CROSS)gcc
endif
BUILD_DEPS := gcc-aarch64-linux-gnu libc6-dev-arm64-cross libcmocka-dev:arm64 \
              libjansson-dev:arm64 liburing-dev:arm64 libseccomp-dev:arm64 zlib1g-dev:arm64 \
              libfdt1:arm64 libfdt-dev
LDLIBS  += -l:libfdt.so.1
else
BUILD_DEPS += libfdt-dev
LDLIBS  += -lfdt
endif
endif

LIB_SRCS  := $(filter-out src/main.c $(filter-out src/arch/$(ARCH)/%,$(wildcard src/arch/*/*.c)),\
             $(shell find src -name '*.c' | sort))
LIB_OBJS  := $(LIB_SRCS:%.c=$(BUILD)/%.o)
# Unit tests: the arch-neutral ones, and those of src/arch/$(ARCH) (tests/unit/$(ARCH)/).
UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c)) $(sort $(wildcard tests/unit/$(ARCH)/test_*.c))
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
# Shared test doubles (fake guest memory, ...), linked into every unit test.
SUPPORT_SRCS := $(sort $(wildcard tests/unit/support/*.c))
SUPPORT_OBJS := $(SUPPORT_SRCS:%.c=$(BUILD)/%.o)

.PHONY: all deps check check-unit clean demo format format-check lint install uninstall FORCE
all: deps $(BUILD)/krunkit

deps:
	@scripts/deps.sh $(BUILD_DEPS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(COMPILE) -c $< -o $@

# One version source (scripts/version.sh: git describe, else the VERSION
# file); build/version.h is rewritten only when the version changes, so
# main.o is rebuilt exactly then.
$(BUILD)/version.h: FORCE
	@mkdir -p $(dir $@)
	@scripts/version.sh --header $@

$(BUILD)/src/main.o: $(BUILD)/version.h
$(BUILD)/src/main.o: KRUNKIT_CPPFLAGS += -include $(BUILD)/version.h

FORCE:

$(BUILD)/libkrunkit.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/krunkit: $(BUILD)/src/main.o $(BUILD)/libkrunkit.a
	$(LINK) -o $@ $^ $(LDLIBS)

# Without optimisation gcc's range analysis is too weak for
# -Wformat-truncation and it flags test-name buffers in two tests
# (test_acpi.c, test_net_backend.c) that cannot overflow; not for src/.
$(BUILD)/tests/unit/%.o: KRUNKIT_CFLAGS += $(if $(NO_OPT),-Wno-format-truncation)
# Tests in tests/unit/<arch>/ include support/... like the others.
$(BUILD)/tests/unit/%.o: KRUNKIT_CPPFLAGS += -Itests/unit

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(SUPPORT_OBJS) $(BUILD)/libkrunkit.a
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(LDLIBS) -lcmocka

# Tests of another arch's pure parts (no KVM, no arch header: arm64's Image
# parser, device tree builder, PL031 and PL061) also run on this host, each
# built with the sources it tests (PORTABLE_<test>). When ARCH is that arch
# they are ordinary unit tests of tests/unit/$(ARCH)/ and not built twice.
PORTABLE_test_arm64_image := src/arch/arm64/image.c
PORTABLE_test_arm64_fdt   := src/arch/arm64/fdt.c
PORTABLE_test_arm64_amba  := src/arch/arm64/amba.c
PORTABLE_TESTS := $(if $(filter arm64,$(ARCH)),,\
                  arm64/test_arm64_image arm64/test_arm64_fdt arm64/test_arm64_amba)
PORTABLE_BINS  := $(PORTABLE_TESTS:%=$(BUILD)/tests/%)
# (A function, so that the pattern rule below does not take its % for the stem.)
portable_objs = $(patsubst %.c,$(BUILD)/portable/%.o,$(PORTABLE_$(1)))

.SECONDEXPANSION:
$(PORTABLE_BINS): $(BUILD)/tests/%: $(BUILD)/tests/unit/%.o \
                  $$(call portable_objs,$$(notdir $$*)) $(SUPPORT_OBJS) $(BUILD)/libkrunkit.a
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(LDLIBS) -lfdt -lcmocka

$(BUILD)/portable/%.o: %.c
	@mkdir -p $(dir $@)
	$(COMPILE) -c $< -o $@

CHECK_TARGETS := check-unit

# A cross build's tests are built (every one links) but cannot run on this host.
check-unit: deps $(UNIT_BINS) $(PORTABLE_BINS) $(BUILD)/krunkit
ifdef CROSS
	@echo "check-unit: $(words $(UNIT_BINS)) $(ARCH) unit tests built in $(BUILD)/tests, not run" \
	     "(a cross build: run \`make check-unit\` on an $(ARCH) host)"
else
	@scripts/run-unit-tests.sh $(UNIT_BINS) $(PORTABLE_BINS)
endif

# The unit tests again, built with clang under ASan and UBSan into
# build/asan/ (libkrunkit, the test doubles and every test). Excluded, each
# with its reason (UNIT_ASAN_EXCLUDE, test names without .c):
# - test_sandbox: ASan's runtime calls sigaltstack(NULL, &old) in each
#   thread it starts or ends, which the seccomp filters under test rightly
#   forbid (the thread dies by SIGSYS); use_sigaltstack=0 does not avoid it.
#   The filters are checked by the plain build in check-unit.
UNIT_ASAN_EXCLUDE := test_sandbox
ASAN_CC     := clang
ASAN_FLAGS  := -std=gnu11 -O1 -g -Isrc -D_GNU_SOURCE -fno-omit-frame-pointer \
               -fsanitize=address,undefined -fno-sanitize-recover=undefined -MMD -MP
ASAN_OBJS   := $(LIB_SRCS:%.c=$(BUILD)/asan/%.o)
ASAN_SUPPORT_OBJS := $(SUPPORT_SRCS:%.c=$(BUILD)/asan/%.o)
ASAN_BINS   := $(filter-out $(UNIT_ASAN_EXCLUDE:%=$(BUILD)/asan/tests/%),\
               $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/asan/tests/%))

$(BUILD)/asan/%.o: %.c
	@mkdir -p $(dir $@)
	$(ASAN_CC) $(CPPFLAGS) $(CFLAGS) $(ASAN_FLAGS) -Itests/unit -c $< -o $@

$(BUILD)/asan/libkrunkit.a: $(ASAN_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/asan/tests/%: $(BUILD)/asan/tests/unit/%.o $(ASAN_SUPPORT_OBJS) $(BUILD)/asan/libkrunkit.a
	@mkdir -p $(dir $@)
	$(ASAN_CC) $(CFLAGS) $(ASAN_FLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS) -lcmocka

# The portable tests (above) under the sanitizers too.
ASAN_PORTABLE_BINS := $(PORTABLE_TESTS:%=$(BUILD)/asan/tests/%)
asan_portable_objs = $(patsubst %.c,$(BUILD)/asan/portable/%.o,$(PORTABLE_$(1)))
$(ASAN_PORTABLE_BINS): $(BUILD)/asan/tests/%: $(BUILD)/asan/tests/unit/%.o \
                       $$(call asan_portable_objs,$$(notdir $$*)) $(ASAN_SUPPORT_OBJS) \
                       $(BUILD)/asan/libkrunkit.a
	@mkdir -p $(dir $@)
	$(ASAN_CC) $(CFLAGS) $(ASAN_FLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS) -lfdt -lcmocka

$(BUILD)/asan/portable/%.o: %.c
	@mkdir -p $(dir $@)
	$(ASAN_CC) $(CPPFLAGS) $(CFLAGS) $(ASAN_FLAGS) -Itests/unit -c $< -o $@

ASAN_BINS += $(ASAN_PORTABLE_BINS)

.SECONDARY: $(ASAN_OBJS) $(ASAN_SUPPORT_OBJS)

# detect_leaks=0: LeakSanitizer needs ptrace, which the test containers and
# the seccomp tests do not allow; ASan's other checks stay on.
ASAN_RUN_ENV := ASAN_OPTIONS=abort_on_error=0:detect_leaks=0 \
                UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

.PHONY: check-unit-asan
check-unit-asan: deps $(ASAN_BINS)
	@$(ASAN_RUN_ENV) scripts/run-unit-tests.sh $(ASAN_BINS)

CHECK_TARGETS += check-unit-asan

# cppcheck over src/ and tests/: the checks and each suppression with its
# reason are in .cppcheck-suppressions; a finding fails `make lint`. Then
# scripts/check-arch-seam.sh: no x86 KVM set-up, 0xCF8 or bzImage/e820
# code outside src/arch/x86.
CPPCHECK_FLAGS := --quiet --enable=warning,portability,performance --error-exitcode=1 \
                  --inline-suppr --suppressions-list=.cppcheck-suppressions \
                  -j2 --std=c11 -Isrc -Itests/unit -D_GNU_SOURCE -D__linux__ -D__x86_64__ \
                  --cppcheck-build-dir=$(BUILD)/cppcheck
.PHONY: lint
lint:
	@scripts/deps.sh cppcheck
	@mkdir -p $(BUILD)/cppcheck
	cppcheck $(CPPCHECK_FLAGS) src tests bench
	@scripts/check-arch-seam.sh

CHECK_TARGETS += lint

# Every C file formatted as .clang-format says (`make format` fixes them).
FORMAT_FILES = $(shell find src tests bench -name '*.[ch]' | sort)
.PHONY: format-check
format-check:
	@scripts/deps.sh clang-format
	clang-format --dry-run -Werror $(FORMAT_FILES)

CHECK_TARGETS += format-check

# make install [PREFIX=/usr/local] [DESTDIR=]; check-install tries it in a
# temporary DESTDIR.
BINDIR := $(PREFIX)/bin
MAN1DIR := $(PREFIX)/share/man/man1
install: $(BUILD)/krunkit
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MAN1DIR)
	install -m 0755 $(BUILD)/krunkit $(DESTDIR)$(BINDIR)/krunkit
	install -m 0644 docs/krunkit.1 $(DESTDIR)$(MAN1DIR)/krunkit.1

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/krunkit $(DESTDIR)$(MAN1DIR)/krunkit.1

.PHONY: check-install
check-install: $(BUILD)/krunkit
	@MAKE="$(MAKE)" tests/cli/check-install.sh

CHECK_TARGETS += check-install

# Each test area adds its own targets to CHECK_TARGETS in tests/<area>/check.mk.
-include $(sort $(wildcard tests/*/check.mk))

check: deps
	@$(MAKE) --no-print-directory $(CHECK_TARGETS)

# The quick tier for the edit loop: unit, CLI and REST tests and each fuzz
# target for FAST_FUZZ_SECONDS; no lab. `make check` stays the full suite.
FAST_FUZZ_SECONDS ?= 3
.PHONY: check-fast
check-fast: deps
	@$(MAKE) --no-print-directory check-unit check-cli check-rest check-fuzz check-cli-fuzz \
	    FUZZ_SECONDS=$(FAST_FUZZ_SECONDS) CLI_FUZZ_SECONDS=$(FAST_FUZZ_SECONDS)

demo: all
	scripts/demo.sh

format:
	clang-format -i $(FORMAT_FILES)

clean:
	rm -rf $(BUILD)

# The compilers' dependency files; build/lab holds unpacked packages (with
# directories such as etc/ld.so.conf.d), never ours, and a cross build's tree
# (build/arm64/) has its own, not read here.
-include $(shell find $(BUILD) \( -path $(BUILD)/lab -o -path $(BUILD)/arm64 \) -prune -o -type f -name '*.d' -print 2>/dev/null)
