# REST service tests: tests/rest/*.c (the harness and its fake VM) linked
# with libkrunkit.a, driven over real TCP and UNIX sockets by test_rest.py
# with curl and raw bytes.

REST_HARNESS      := $(BUILD)/rest/rest_harness
REST_HARNESS_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(sort $(wildcard tests/rest/*.c)))

$(REST_HARNESS): $(REST_HARNESS_OBJS) $(BUILD)/libkrunkit.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

.PHONY: check-rest
check-rest: deps $(REST_HARNESS)
	@scripts/deps.sh python3 curl
	@timeout 600 python3 tests/rest/test_rest.py $(REST_HARNESS)

CHECK_TARGETS += check-rest
