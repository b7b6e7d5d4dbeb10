/*
 * CFI flash, Intel/Sharp command set (see pflash.h). The query table
 * follows JESD68 section 4 (CFI query identification, system interface,
 * device geometry) and the Intel primary extended query ("PRI" 1.0), for a
 * byte-wide (x8) device where query offsets are byte addresses.
 */
#include "hw/pflash.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/log.h"

enum {
    CMD_READ_ARRAY = 0x00, /* our internal state value for read-array mode */
    CMD_PROGRAM = 0x10,
    CMD_ERASE = 0x20,
    CMD_PROGRAM_ALT = 0x40,
    CMD_CLEAR_STATUS = 0x50,
    CMD_LOCK_SETUP = 0x60,
    CMD_READ_STATUS = 0x70,
    CMD_READ_ID = 0x90,
    CMD_QUERY = 0x98,
    CMD_CONFIRM = 0xd0,
    CMD_READ_ARRAY_STD = 0xff,
};

#define SR_SEQUENCE_ERROR (PFLASH_SR_ERASE_ERROR | PFLASH_SR_PROGRAM_ERROR)
#define CFI_TABLE_LEN 0x3e

struct pflash {
    pthread_mutex_t lock;
    uint8_t *buf;
    size_t size;
    int fd;
    bool readonly;
    bool dirty; /* written to the file, not yet fdatasync'ed */
    uint8_t cmd;
    uint8_t wcycle; /* 1: the next write is the command's second cycle */
    uint8_t status;
    uint64_t erase_offset;
    uint8_t cfi[CFI_TABLE_LEN];
    pflash_mode_fn mode_fn;
    void *mode_opaque;
};

static unsigned log2_ceil(size_t v)
{
    unsigned n = 0;
    while (((size_t)1 << n) < v)
        n++;
    return n;
}

static void build_cfi_table(struct pflash *p)
{
    uint8_t *t = p->cfi;
    size_t blocks = p->size / PFLASH_BLOCK_SIZE;
    memset(t, 0, CFI_TABLE_LEN);
    t[0x10] = 'Q';
    t[0x11] = 'R';
    t[0x12] = 'Y';
    t[0x13] = 0x01; /* primary command set 0x0001: Intel/Sharp */
    t[0x15] = 0x31; /* primary extended table at 0x31 */
    t[0x1b] = 0x45; /* Vcc 4.5 .. 5.5 V */
    t[0x1c] = 0x55;
    t[0x1f] = 0x07; /* typical byte program 2^7 us */
    t[0x21] = 0x0a; /* typical block erase 2^10 ms */
    t[0x23] = 0x04; /* maxima: 2^4 times typical */
    t[0x25] = 0x04;
    /* Device size as 2^n bytes: a variable store need not be a power of two. */
    t[0x27] = (uint8_t)log2_ceil(p->size);
    t[0x28] = 0x00; /* x8 asynchronous interface */
    t[0x2a] = 0x00; /* no multi-byte (buffered) write */
    t[0x2c] = 0x01; /* one erase block region: */
    t[0x2d] = (uint8_t)(blocks - 1);
    t[0x2e] = (uint8_t)((blocks - 1) >> 8);
    t[0x2f] = (uint8_t)(PFLASH_BLOCK_SIZE / 256);
    t[0x30] = (uint8_t)((PFLASH_BLOCK_SIZE / 256) >> 8);
    t[0x31] = 'P';
    t[0x32] = 'R';
    t[0x33] = 'I';
    t[0x34] = '1';
    t[0x35] = '0';
    /* 0x36..0x3d: no optional features, suspend or protection registers. */
}

int pflash_create(struct pflash **out, const void *init, size_t size, int fd, bool readonly)
{
    *out = NULL;
    if (size == 0 || size % PFLASH_BLOCK_SIZE || size / PFLASH_BLOCK_SIZE > 0x10000)
        return -EINVAL;
    struct pflash *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    /* Page aligned, so the VMM can hand it to KVM as a memory slot. */
    p->buf = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p->buf == MAP_FAILED) {
        free(p);
        return -ENOMEM;
    }
    memcpy(p->buf, init, size);
    p->size = size;
    p->fd = fd;
    p->readonly = readonly;
    pthread_mutex_init(&p->lock, NULL);
    p->status = PFLASH_SR_READY;
    p->cmd = CMD_READ_ARRAY;
    build_cfi_table(p);
    *out = p;
    return 0;
}

int pflash_flush(struct pflash *p)
{
    int rc = 0;
    pthread_mutex_lock(&p->lock);
    if (p->fd >= 0 && p->dirty) {
        if (fdatasync(p->fd) < 0)
            rc = -errno;
        else
            p->dirty = false;
    }
    pthread_mutex_unlock(&p->lock);
    return rc;
}

void pflash_destroy(struct pflash *p)
{
    if (!p)
        return;
    int rc = pflash_flush(p);
    if (rc)
        log_error("variable store: cannot sync to disk: %s", strerror(-rc));
    if (p->fd >= 0)
        close(p->fd);
    munmap(p->buf, p->size);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

uint8_t *pflash_host(struct pflash *p)
{
    return p->buf;
}

size_t pflash_size(const struct pflash *p)
{
    return p->size;
}

bool pflash_array_mode(struct pflash *p)
{
    pthread_mutex_lock(&p->lock);
    bool a = p->cmd == CMD_READ_ARRAY;
    pthread_mutex_unlock(&p->lock);
    return a;
}

void pflash_set_mode_handler(struct pflash *p, pflash_mode_fn fn, void *opaque)
{
    pthread_mutex_lock(&p->lock);
    p->mode_fn = fn;
    p->mode_opaque = opaque;
    pthread_mutex_unlock(&p->lock);
}

/* Lock held. The one place the command state changes, so mode changes are never missed. */
static void set_cmd(struct pflash *p, uint8_t cmd, uint8_t wcycle)
{
    bool was_array = p->cmd == CMD_READ_ARRAY;
    bool is_array = cmd == CMD_READ_ARRAY;
    p->cmd = cmd;
    p->wcycle = is_array ? 0 : wcycle;
    if (is_array && p->fd >= 0 && p->dirty) {
        /* The driver finished a write or erase sequence: make it durable. */
        if (fdatasync(p->fd) < 0)
            log_error("variable store: fdatasync: %m");
        else
            p->dirty = false;
    }
    if (was_array != is_array && p->mode_fn)
        p->mode_fn(p->mode_opaque, is_array);
}

void pflash_reset(struct pflash *p)
{
    pthread_mutex_lock(&p->lock);
    p->status = PFLASH_SR_READY;
    set_cmd(p, CMD_READ_ARRAY, 0);
    pthread_mutex_unlock(&p->lock);
}

/* Lock held. Mirror [off, off+len) of the buffer into the backing file. */
static bool persist(struct pflash *p, uint64_t off, size_t len)
{
    if (p->fd < 0)
        return true;
    size_t done = 0;
    while (done < len) {
        ssize_t n = pwrite(p->fd, p->buf + off + done, len - done, (off_t)(off + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            log_error("variable store: write at offset %llu: %m", (unsigned long long)(off + done));
            return false;
        }
        done += (size_t)n;
    }
    p->dirty = true;
    return true;
}

static void program(struct pflash *p, uint64_t off, const uint8_t *data, unsigned len)
{
    if (p->readonly || off >= p->size || len > p->size - off) {
        p->status |= PFLASH_SR_PROGRAM_ERROR;
    } else {
        /* Stored as written, like QEMU's model: OVMF only ever clears bits anyway. */
        memcpy(p->buf + off, data, len);
        if (!persist(p, off, len))
            p->status |= PFLASH_SR_PROGRAM_ERROR;
    }
    p->status |= PFLASH_SR_READY;
}

static void erase(struct pflash *p, uint64_t off)
{
    off &= ~(uint64_t)(PFLASH_BLOCK_SIZE - 1);
    if (p->readonly || off >= p->size) {
        p->status |= PFLASH_SR_ERASE_ERROR;
    } else {
        memset(p->buf + off, 0xff, PFLASH_BLOCK_SIZE);
        if (!persist(p, off, PFLASH_BLOCK_SIZE))
            p->status |= PFLASH_SR_ERASE_ERROR;
    }
    p->status |= PFLASH_SR_READY;
}

static void first_cycle(struct pflash *p, uint64_t off, uint8_t cmd)
{
    switch (cmd) {
    case CMD_PROGRAM:
    case CMD_PROGRAM_ALT:
    case CMD_LOCK_SETUP:
    case CMD_QUERY:
        set_cmd(p, cmd, 1);
        break;
    case CMD_ERASE:
        p->erase_offset = off;
        set_cmd(p, cmd, 1);
        break;
    case CMD_CLEAR_STATUS:
        /* OVMF's flash probe relies on this returning to read-array mode. */
        p->status = 0;
        set_cmd(p, CMD_READ_ARRAY, 0);
        break;
    case CMD_READ_STATUS:
    case CMD_READ_ID:
        set_cmd(p, cmd, 0);
        break;
    case CMD_READ_ARRAY:
    case CMD_READ_ARRAY_STD:
    case 0xf0: /* AMD-style reset, harmless to accept */
        set_cmd(p, CMD_READ_ARRAY, 0);
        break;
    default:
        /* Unknown command (buffered write 0xE8 included): back to array, as QEMU does. */
        log_debug("pflash: unsupported command 0x%02x at 0x%llx", cmd, (unsigned long long)off);
        set_cmd(p, CMD_READ_ARRAY, 0);
        break;
    }
}

/*
 * The second cycle of erase or lock setup was not its confirm: read array
 * cancels the command, anything else is a command sequence error.
 */
static void cancel_sequence(struct pflash *p, uint8_t v)
{
    if (v == CMD_READ_ARRAY_STD) {
        set_cmd(p, CMD_READ_ARRAY, 0);
    } else {
        p->status |= SR_SEQUENCE_ERROR | PFLASH_SR_READY;
        set_cmd(p, CMD_READ_STATUS, 0);
    }
}

static void second_cycle(struct pflash *p, uint64_t off, const uint8_t *data, unsigned len)
{
    uint8_t v = data[0];
    switch (p->cmd) {
    case CMD_PROGRAM:
    case CMD_PROGRAM_ALT:
        program(p, off, data, len);
        set_cmd(p, p->cmd, 0); /* reads now return status */
        break;
    case CMD_ERASE:
        if (v == CMD_CONFIRM) {
            erase(p, p->erase_offset);
            set_cmd(p, p->cmd, 0);
        } else {
            cancel_sequence(p, v);
        }
        break;
    case CMD_LOCK_SETUP:
        if (v == CMD_CONFIRM || v == 0x01 || v == 0x2f) {
            p->status |= PFLASH_SR_READY;
            set_cmd(p, CMD_READ_STATUS, 0);
        } else {
            cancel_sequence(p, v);
        }
        break;
    case CMD_QUERY:
        /* Query mode lasts until read array; other writes are ignored. */
        if (v == CMD_READ_ARRAY_STD || v == CMD_READ_ARRAY)
            set_cmd(p, CMD_READ_ARRAY, 0);
        else if (v == CMD_READ_STATUS || v == CMD_READ_ID)
            set_cmd(p, v, 0);
        break;
    default:
        set_cmd(p, CMD_READ_ARRAY, 0);
        break;
    }
}

static void pflash_write(void *opaque, uint64_t offset, const void *data, unsigned len)
{
    struct pflash *p = opaque;
    pthread_mutex_lock(&p->lock);
    if (p->wcycle)
        second_cycle(p, offset, data, len);
    else
        first_cycle(p, offset, ((const uint8_t *)data)[0]);
    pthread_mutex_unlock(&p->lock);
}

static uint8_t id_byte(uint64_t off)
{
    /* Per block: 0 manufacturer, 1 device, 2 lock status (never locked). */
    switch (off & 0xff) {
    case 0:
        return PFLASH_MANUFACTURER_ID;
    case 1:
        return PFLASH_DEVICE_ID;
    default:
        return 0;
    }
}

static void pflash_read(void *opaque, uint64_t offset, void *data, unsigned len)
{
    struct pflash *p = opaque;
    uint8_t *out = data;
    pthread_mutex_lock(&p->lock);
    switch (p->cmd) {
    case CMD_READ_ARRAY:
        for (unsigned i = 0; i < len; i++)
            out[i] = offset + i < p->size ? p->buf[offset + i] : 0xff;
        break;
    case CMD_READ_ID:
        for (unsigned i = 0; i < len; i++)
            out[i] = id_byte(offset + i);
        break;
    case CMD_QUERY:
        for (unsigned i = 0; i < len; i++) {
            uint64_t q = (offset + i) & 0xff;
            out[i] = q < CFI_TABLE_LEN ? p->cfi[q] : 0;
        }
        break;
    default:
        /* Status answers in the low byte of any access, as on a byte-wide part. */
        memset(out, 0, len);
        out[0] = p->status;
        break;
    }
    pthread_mutex_unlock(&p->lock);
}

const struct io_ops pflash_io_ops = {.read = pflash_read, .write = pflash_write};

int pflash_register(struct pflash *p, struct io_bus *mmio, uint64_t gpa)
{
    return io_bus_register(mmio, gpa, p->size, &pflash_io_ops, p);
}
