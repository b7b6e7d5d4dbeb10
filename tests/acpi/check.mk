# check-acpi: decode the ACPI tables we generate with ACPICA's iasl and
# acpiexec (Debian acpica-tools), for several machine shapes.

ACPI_GEN := $(BUILD)/acpi/acpi_gen

$(ACPI_GEN): tests/acpi/acpi_gen.c $(BUILD)/libkrunkit.a
	@mkdir -p $(dir $@)
	$(COMPILE_LINK) -o $@ $(filter %.c %.a,$^) $(LDLIBS)

.PHONY: check-acpi
check-acpi: deps $(ACPI_GEN)
	@scripts/deps.sh acpica-tools
	@tests/acpi/check-acpi.sh $(ACPI_GEN) $(BUILD)/acpi/out

CHECK_TARGETS += check-acpi

# check-acpi-firmware: the fw_cfg table-loader path end to end with stock
# firmware (SeaBIOS, x86-64 OVMF) and the Debian kernel under QEMU TCG.
.PHONY: check-acpi-firmware
check-acpi-firmware: deps $(ACPI_GEN)
	@scripts/deps.sh qemu-system-x86 ovmf seabios
	@ls /boot/vmlinuz-* >/dev/null 2>&1 || scripts/deps.sh linux-image-amd64
	@tests/acpi/check-acpi-firmware.sh $(ACPI_GEN) $(BUILD)/acpi/firmware

CHECK_TARGETS += check-acpi-firmware
