# EFI checks that need no VM: `make check-efi` builds the EFI test disks of
# tests/efi/build-disk.sh around stand-in files and reads them back, and
# runs the SMBIOS unit test with Debian's dmidecode required (it parses our
# tables from a dump file). Booting those disks is the lab's job.

.PHONY: check-efi

check-efi: deps $(BUILD)/tests/$(ARCH)/test_smbios
	@scripts/deps.sh dmidecode mtools dosfstools fdisk
	@SMBIOS_REQUIRE_DMIDECODE=1 $(BUILD)/tests/$(ARCH)/test_smbios >$(BUILD)/efi-smbios.log 2>&1 \
	    || { cat $(BUILD)/efi-smbios.log; echo "FAILED: efi smbios/dmidecode"; exit 1; }
	@echo "ok: efi smbios tables read by dmidecode"
	@tests/efi/check-disk.sh $(BUILD)/efi-check

CHECK_TARGETS += check-efi
