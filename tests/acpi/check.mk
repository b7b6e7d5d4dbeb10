# check-acpi: decode the ACPI tables we generate with ACPICA's iasl and
# acpiexec (Debian acpica-tools), for several machine shapes.

ACPI_GEN := $(BUILD)/acpi/acpi_gen

$(ACPI_GEN): tests/acpi/acpi_gen.c $(BUILD)/libkrunkit.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $(filter %.c %.a,$^) $(LDLIBS)

.PHONY: check-acpi
check-acpi: deps $(ACPI_GEN)
	@scripts/deps.sh acpica-tools
	@tests/acpi/check-acpi.sh $(ACPI_GEN) $(BUILD)/acpi/out

CHECK_TARGETS += check-acpi
