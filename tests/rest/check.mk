# REST service tests: tests/rest/*.c (the harness and its fake VM) linked
# with libkrunkit.a, driven over real TCP and UNIX sockets by test_rest.py
# with curl and raw bytes. The same suite runs a second time against a
# harness built with clang's address and undefined-behaviour sanitizers.

REST_HARNESS      := $(BUILD)/rest/rest_harness
REST_HARNESS_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(sort $(wildcard tests/rest/*.c)))

$(REST_HARNESS): $(REST_HARNESS_OBJS) $(BUILD)/libkrunkit.a
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(LDLIBS)

# The sanitizer build takes only what the service is made of.
REST_ASAN_SRCS    := src/cli/rest.c src/cli/http.c src/cli/vm_control.c src/core/log.c src/vmm/sandbox.c \
                     src/vmm/evloop.c src/arch/$(ARCH)/seccomp.c src/util/unix_socket.c \
                     $(sort $(wildcard tests/rest/*.c))
REST_ASAN_FLAGS   := -std=gnu11 -O1 -g -Isrc -D_GNU_SOURCE -fno-omit-frame-pointer \
                     -fsanitize=address,undefined -fno-sanitize-recover=undefined
REST_ASAN_HARNESS := $(BUILD)/rest-asan/rest_harness

$(BUILD)/rest-asan/obj/%.o: %.c
	@mkdir -p $(dir $@)
	clang $(CPPFLAGS) $(CFLAGS) $(REST_ASAN_FLAGS) -c $< -o $@

$(REST_ASAN_HARNESS): $(REST_ASAN_SRCS:%.c=$(BUILD)/rest-asan/obj/%.o)
	@mkdir -p $(dir $@)
	clang $(CFLAGS) $(REST_ASAN_FLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS)

.PHONY: check-rest
check-rest: deps $(REST_HARNESS) $(REST_ASAN_HARNESS)
	@scripts/deps.sh python3 curl
	@timeout 600 python3 tests/rest/test_rest.py $(REST_HARNESS)
	@timeout 600 python3 tests/rest/test_rest.py $(REST_ASAN_HARNESS)

CHECK_TARGETS += check-rest
