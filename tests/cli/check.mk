# End-to-end tests of the krunkit binary's command line, --print-config,
# error exits and cleanup after a failed start (tests/cli/run-cli-tests.sh).

.PHONY: check-cli
check-cli: deps $(BUILD)/krunkit
	@scripts/deps.sh python3
	@tests/cli/run-cli-tests.sh $(BUILD)/krunkit

CHECK_TARGETS += check-cli
