/*
 * The arm64 Linux boot protocol's kernel half (Documentation/arch/arm64/
 * booting.rst, "Call the kernel image" and the Image header): the 64-byte
 * header (magic "ARM\x64" at 56, text_offset, image_size, flags), a gzip
 * wrapper undone with zlib, and where the kernel, the initrd and the
 * device tree go in RAM.
 *
 * Pure: no KVM, so tests/unit/arm64/test_arm64_image.c runs on any host.
 */
#ifndef KRUNKIT_ARCH_ARM64_IMAGE_H
#define KRUNKIT_ARCH_ARM64_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#define ARM64_IMAGE_MAGIC 0x644d5241u /* "ARM\x64", little-endian at offset 56 */
#define ARM64_IMAGE_HEADER_SIZE 64
#define ARM64_IMAGE_ALIGN (2ull << 20) /* the kernel's base is 2 MiB aligned */
#define ARM64_IMAGE_LEGACY_TEXT_OFFSET 0x80000ull
#define ARM64_DTB_MAX (2ull << 20) /* booting.rst: at most 2 MiB, 8-byte aligned */
/* The largest kernel inflated from gzip: well above any distribution Image. */
#define ARM64_IMAGE_MAX_INFLATED (256ull << 20)

struct arm64_image {
    uint64_t text_offset; /* load at a 2 MiB aligned base + text_offset */
    uint64_t image_size;  /* bytes the kernel occupies from there, BSS included */
    uint64_t flags;
    unsigned page_kib; /* 4, 16 or 64; 0: unspecified */
    int anywhere;      /* flags bit 3: any 2 MiB base in RAM, not just the lowest */
};

/*
 * Parse the header of an Image of len bytes. -ENOEXEC: not an arm64 Image
 * (bad magic, too short), -ENOTSUP: a big-endian kernel. A pre-3.17 header
 * (image_size 0) gets text_offset 0x80000 and the file's size plus a
 * margin for its BSS, as booting.rst says such kernels need.
 */
int arm64_image_parse(const uint8_t *img, size_t len, struct arm64_image *out);

/* True when buf starts with a gzip member (RFC 1952 magic, deflate). */
int arm64_image_is_gzip(const uint8_t *buf, size_t len);

/*
 * Inflate a gzip'ed Image into a malloc'ed buffer (at most
 * ARM64_IMAGE_MAX_INFLATED bytes). -EINVAL: corrupt, -EFBIG: too large,
 * -ENOMEM.
 */
int arm64_image_gunzip(const uint8_t *gz, size_t len, uint8_t **out, size_t *out_len);

/* Where each part of a direct boot goes. */
struct arm64_boot_layout {
    uint64_t kernel;     /* load address (base + text_offset), the entry point */
    uint64_t kernel_end; /* kernel + image_size */
    uint64_t initrd;     /* 0 when initrd_size is 0 */
    uint64_t dtb;        /* 2 MiB aligned, in its own 2 MiB region */
};

/*
 * Lay out a boot in RAM [ram_base, ram_base + ram_size): the kernel at the
 * lowest 2 MiB aligned base (ram_base is one) + text_offset, the initrd on
 * the next 2 MiB boundary after the kernel (so kernel and initrd share the
 * 1 GiB aligned, at most 32 GiB window booting.rst asks for), the DTB on
 * the 2 MiB boundary after that. -ENOMEM (nothing written) when it does
 * not fit, -EINVAL for an unaligned ram_base.
 */
int arm64_boot_layout(const struct arm64_image *im, uint64_t ram_base, uint64_t ram_size,
                      uint64_t initrd_size, uint64_t dtb_size, struct arm64_boot_layout *out);

#endif
