/*
 * A small emitter of ACPI Machine Language (ACPI 6.4, chapter 20 "ACPI
 * Machine Language Specification"; resource descriptors from 6.4.2/6.4.3):
 * name strings, integers, strings, names, scopes, devices, methods,
 * packages, buffers and resource templates, with PkgLength encoding.
 *
 * Errors are sticky: the first failure (bad name, oversized package, no
 * memory) is recorded in the buffer and every later call does nothing, so a
 * table is built without checking each call and aml_status() is read once.
 */
#ifndef KRUNKIT_ARCH_X86_AML_H
#define KRUNKIT_ARCH_X86_AML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* PkgLength can express at most 28 bits (20.2.4). */
#define AML_PKGLEN_MAX 0x0fffffffu

struct aml {
    uint8_t *buf;
    size_t len;
    size_t cap;
    int err; /* 0 or the first -errno */
};

/* Where an open scope/device/method/package/buffer starts; see aml_end(). */
struct aml_mark {
    size_t pos;
    int kind;
};

void aml_init(struct aml *a);
void aml_release(struct aml *a);
/* 0, or the first error hit while emitting (-EINVAL, -ENOMEM, -E2BIG). */
int aml_status(const struct aml *a);

/*
 * Encode the PkgLength of an object whose body (what follows the PkgLength)
 * is body_len bytes; the encoded value counts its own bytes too. Returns the
 * number of bytes written to out (1..4) or -E2BIG.
 */
int aml_pkglen_encode(size_t body_len, uint8_t out[4]);
/* Decode a PkgLength at p; returns bytes consumed or -EINVAL. */
int aml_pkglen_decode(const uint8_t *p, size_t avail, uint32_t *value);

/* Compressed EISA id ("PNP0A03") as its 32-bit integer value; -EINVAL if malformed. */
int64_t aml_eisaid_value(const char *id);

/* Raw bytes, appended as they are (table headers, resource bodies). */
void aml_raw(struct aml *a, const void *p, size_t n);
void aml_byte(struct aml *a, uint8_t b);

/* A NameString: "\\_SB.PCI0", "^FOO", "_S5", "\\" (segments of up to 4 chars, padded with '_'). */
void aml_namestring(struct aml *a, const char *path);
/* The shortest encoding of v: ZeroOp, OneOp, or Byte/Word/DWord/QWord const. */
void aml_integer(struct aml *a, uint64_t v);
void aml_string(struct aml *a, const char *s);
void aml_eisaid(struct aml *a, const char *id);
/* Name (name, <the next object emitted>). */
void aml_name_decl(struct aml *a, const char *name);
/* Return (<the next object emitted>). */
void aml_return(struct aml *a);

struct aml_mark aml_scope_begin(struct aml *a, const char *name);
struct aml_mark aml_device_begin(struct aml *a, const char *name);
struct aml_mark aml_method_begin(struct aml *a, const char *name, unsigned nargs, bool serialized);
/* A Package of exactly nelems elements (at most 255) follows, then aml_end(). */
struct aml_mark aml_package_begin(struct aml *a, unsigned nelems);
/* Buffer: raw bytes follow, then aml_end() (which prefixes the BufferSize). */
struct aml_mark aml_buffer_begin(struct aml *a);
/* Close what m opened: insert its PkgLength (and, for a buffer, BufferSize). */
void aml_end(struct aml *a, struct aml_mark m);

/* ResourceTemplate (): a Buffer of descriptors closed with an End Tag. */
struct aml_mark aml_restemplate_begin(struct aml *a);
void aml_restemplate_end(struct aml *a, struct aml_mark m);

/* IO (Decode16, min, max, align, len): 6.4.2.5. */
void aml_res_io(struct aml *a, uint16_t min, uint16_t max, uint8_t align, uint8_t len);
/* IRQNoFlags () {irqs in mask}: 6.4.2.1, edge triggered, active high. */
void aml_res_irq_noflags(struct aml *a, uint16_t mask);

/* Address space resource types (6.4.3.5, _RT) and type-specific flags. */
enum aml_addr_space {
    AML_ADDR_MEMORY = 0,
    AML_ADDR_IO = 1,
    AML_ADDR_BUS = 2,
};
#define AML_MEM_READWRITE 0x01u
#define AML_MEM_CACHEABLE 0x02u /* _MEM = 1 */
#define AML_IO_ENTIRE_RANGE 0x03u

/*
 * Word/DWord/QWord address space descriptors for a bridge window: resource
 * producer, positive decode, minimum and maximum fixed, granularity 0, no
 * translation, length max - min + 1. -EINVAL when max < min or the length
 * does not fit the descriptor's width.
 */
void aml_res_word(struct aml *a, enum aml_addr_space type, uint8_t type_flags, uint16_t min,
                  uint16_t max);
void aml_res_dword(struct aml *a, enum aml_addr_space type, uint8_t type_flags, uint32_t min,
                   uint32_t max);
void aml_res_qword(struct aml *a, enum aml_addr_space type, uint8_t type_flags, uint64_t min,
                   uint64_t max);

#endif
