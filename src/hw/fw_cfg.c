/*
 * fw_cfg device model (see fw_cfg.h; QEMU docs/specs/fw_cfg.rst, sections
 * "Selector Register", "Data Register", "DMA Address Register",
 * "Directory of Named Files" and "DMA interface").
 *
 * The DMA descriptor and every buffer it names come from the guest: they
 * are reached only through gm_ptr(), which rejects anything that is not
 * entirely inside one RAM region. A bad descriptor sets the error bit (when
 * the descriptor itself is readable) and never touches host memory.
 */
#include "hw/fw_cfg.h"

#include <endian.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define FW_CFG_ENTRY_MASK 0x3fff
#define FW_CFG_INVALID 0xffff

struct fw_cfg_item {
    uint8_t *data;
    uint32_t len;
    bool writable;
};

struct fw_cfg_file {
    char name[FW_CFG_MAX_NAME];
    struct fw_cfg_item item;
    fw_cfg_select_fn select_cb;
    void *cb_opaque;
    void (*cb_release)(void *opaque);
};

struct fw_cfg {
    const struct guest_mem *gm;
    pthread_mutex_t lock;
    /* [0] generic, [1] FW_CFG_ARCH_LOCAL; only keys below FW_CFG_FILE_FIRST. */
    struct fw_cfg_item items[2][FW_CFG_FILE_FIRST];
    struct fw_cfg_file files[FW_CFG_MAX_FILES]; /* sorted by name */
    unsigned nr_files;
    uint16_t cur_key; /* FW_CFG_INVALID: nothing selected */
    uint32_t cur_offset;
    uint64_t dma_addr; /* high half latched until the low half is written */
};

/* Directory entry layout: all fields big-endian. */
struct fw_cfg_dir_entry {
    uint32_t size;
    uint16_t select;
    uint16_t reserved;
    char name[FW_CFG_MAX_NAME];
} __attribute__((packed));

struct fw_cfg_dma_access {
    uint32_t control;
    uint32_t length;
    uint64_t address;
} __attribute__((packed));

static void item_set(struct fw_cfg_item *it, uint8_t *data, uint32_t len, bool writable)
{
    free(it->data);
    it->data = data;
    it->len = len;
    it->writable = writable;
}

static uint8_t *dup_bytes(const void *data, size_t len)
{
    /* One byte more so an empty item still has a non-NULL buffer. */
    uint8_t *p = malloc(len + 1);
    if (p && len)
        memcpy(p, data, len);
    return p;
}

/* Rebuilt after each file change: the directory is an item like any other. */
static int rebuild_dir(struct fw_cfg *fw)
{
    size_t len = 4 + (size_t)fw->nr_files * sizeof(struct fw_cfg_dir_entry);
    uint8_t *dir = calloc(1, len);
    if (!dir)
        return -ENOMEM;
    uint32_t count = htobe32(fw->nr_files);
    memcpy(dir, &count, 4);
    for (unsigned i = 0; i < fw->nr_files; i++) {
        struct fw_cfg_dir_entry e = {
            .size = htobe32(fw->files[i].item.len),
            .select = htobe16((uint16_t)(FW_CFG_FILE_FIRST + i)),
        };
        memcpy(e.name, fw->files[i].name, FW_CFG_MAX_NAME);
        memcpy(dir + 4 + i * sizeof(e), &e, sizeof(e));
    }
    item_set(&fw->items[0][FW_CFG_FILE_DIR], dir, (uint32_t)len, false);
    return 0;
}

struct fw_cfg *fw_cfg_create(const struct guest_mem *gm)
{
    struct fw_cfg *fw = calloc(1, sizeof(*fw));
    if (!fw)
        return NULL;
    fw->gm = gm;
    /* Recursive: select callbacks may modify files while the guest's access holds it. */
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&fw->lock, &attr);
    pthread_mutexattr_destroy(&attr);
    fw->cur_key = FW_CFG_INVALID;
    int rc = fw_cfg_add_bytes(fw, FW_CFG_SIGNATURE, "QEMU", 4);
    rc = rc ?: fw_cfg_add_u32(fw, FW_CFG_ID, FW_CFG_VERSION | FW_CFG_VERSION_DMA);
    rc = rc ?: rebuild_dir(fw);
    if (rc) {
        fw_cfg_destroy(fw);
        return NULL;
    }
    return fw;
}

void fw_cfg_destroy(struct fw_cfg *fw)
{
    if (!fw)
        return;
    for (unsigned a = 0; a < 2; a++)
        for (unsigned k = 0; k < FW_CFG_FILE_FIRST; k++)
            free(fw->items[a][k].data);
    for (unsigned i = 0; i < fw->nr_files; i++) {
        free(fw->files[i].item.data);
        if (fw->files[i].cb_release)
            fw->files[i].cb_release(fw->files[i].cb_opaque);
    }
    pthread_mutex_destroy(&fw->lock);
    free(fw);
}

int fw_cfg_add_bytes(struct fw_cfg *fw, uint16_t key, const void *data, size_t len)
{
    unsigned arch = (key & FW_CFG_ARCH_LOCAL) ? 1 : 0;
    unsigned idx = key & FW_CFG_ENTRY_MASK;
    if ((key & FW_CFG_WRITE_CHANNEL) || idx >= FW_CFG_FILE_FIRST ||
        (!arch && idx == FW_CFG_FILE_DIR))
        return -EINVAL;
    if (len > UINT32_MAX)
        return -EFBIG;
    uint8_t *copy = dup_bytes(data, len);
    if (!copy)
        return -ENOMEM;
    pthread_mutex_lock(&fw->lock);
    item_set(&fw->items[arch][idx], copy, (uint32_t)len, false);
    pthread_mutex_unlock(&fw->lock);
    return 0;
}

int fw_cfg_add_u16(struct fw_cfg *fw, uint16_t key, uint16_t value)
{
    uint16_t le = htole16(value);
    return fw_cfg_add_bytes(fw, key, &le, sizeof(le));
}

int fw_cfg_add_u32(struct fw_cfg *fw, uint16_t key, uint32_t value)
{
    uint32_t le = htole32(value);
    return fw_cfg_add_bytes(fw, key, &le, sizeof(le));
}

int fw_cfg_add_u64(struct fw_cfg *fw, uint16_t key, uint64_t value)
{
    uint64_t le = htole64(value);
    return fw_cfg_add_bytes(fw, key, &le, sizeof(le));
}

static int find_file(const struct fw_cfg *fw, const char *name, unsigned *pos)
{
    unsigned lo = 0, hi = fw->nr_files;
    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        int c = strcmp(fw->files[mid].name, name);
        if (c == 0) {
            *pos = mid;
            return 0;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *pos = lo;
    return -ENOENT;
}

static int add_file(struct fw_cfg *fw, const char *name, const void *data, size_t len,
                    bool writable)
{
    if (!name[0] || strlen(name) >= FW_CFG_MAX_NAME)
        return name[0] ? -ENAMETOOLONG : -EINVAL;
    if (len > UINT32_MAX)
        return -EFBIG;
    uint8_t *copy = dup_bytes(data, len);
    if (!copy)
        return -ENOMEM;
    pthread_mutex_lock(&fw->lock);
    unsigned pos;
    int rc = 0;
    if (find_file(fw, name, &pos) == 0)
        rc = -EEXIST;
    else if (fw->nr_files == FW_CFG_MAX_FILES)
        rc = -ENOSPC;
    if (rc == 0) {
        memmove(&fw->files[pos + 1], &fw->files[pos], (fw->nr_files - pos) * sizeof(fw->files[0]));
        memset(&fw->files[pos], 0, sizeof(fw->files[pos]));
        strcpy(fw->files[pos].name, name);
        fw->files[pos].item =
            (struct fw_cfg_item){.data = copy, .len = (uint32_t)len, .writable = writable};
        fw->nr_files++;
        copy = NULL;
        rc = rebuild_dir(fw);
        if (rc) {
            free(fw->files[pos].item.data);
            fw->nr_files--;
            memmove(&fw->files[pos], &fw->files[pos + 1],
                    (fw->nr_files - pos) * sizeof(fw->files[0]));
        }
    }
    pthread_mutex_unlock(&fw->lock);
    free(copy);
    return rc;
}

int fw_cfg_add_file(struct fw_cfg *fw, const char *name, const void *data, size_t len)
{
    return add_file(fw, name, data, len, false);
}

int fw_cfg_add_file_writable(struct fw_cfg *fw, const char *name, const void *data, size_t len)
{
    return add_file(fw, name, data, len, true);
}

int fw_cfg_modify_file(struct fw_cfg *fw, const char *name, const void *data, size_t len)
{
    if (len > UINT32_MAX)
        return -EFBIG;
    uint8_t *copy = dup_bytes(data, len);
    if (!copy)
        return -ENOMEM;
    pthread_mutex_lock(&fw->lock);
    unsigned pos;
    int rc = find_file(fw, name, &pos);
    if (rc == 0) {
        struct fw_cfg_item *it = &fw->files[pos].item;
        item_set(it, copy, (uint32_t)len, it->writable);
        copy = NULL;
        rc = rebuild_dir(fw);
    }
    pthread_mutex_unlock(&fw->lock);
    free(copy);
    return rc;
}

int fw_cfg_file_key(struct fw_cfg *fw, const char *name)
{
    pthread_mutex_lock(&fw->lock);
    unsigned pos;
    int rc = find_file(fw, name, &pos);
    pthread_mutex_unlock(&fw->lock);
    return rc ? rc : (int)(FW_CFG_FILE_FIRST + pos);
}

int fw_cfg_set_select_cb(struct fw_cfg *fw, const char *name, fw_cfg_select_fn fn, void *opaque,
                         void (*release)(void *opaque))
{
    pthread_mutex_lock(&fw->lock);
    unsigned pos;
    int rc = find_file(fw, name, &pos);
    if (rc == 0) {
        struct fw_cfg_file *f = &fw->files[pos];
        if (f->cb_release)
            f->cb_release(f->cb_opaque);
        f->select_cb = fn;
        f->cb_opaque = opaque;
        f->cb_release = release;
    }
    pthread_mutex_unlock(&fw->lock);
    return rc;
}

void fw_cfg_reset(struct fw_cfg *fw)
{
    pthread_mutex_lock(&fw->lock);
    fw->cur_key = FW_CFG_INVALID;
    fw->cur_offset = 0;
    fw->dma_addr = 0;
    pthread_mutex_unlock(&fw->lock);
}

/* The selected item, or NULL when the selector names nothing. Lock held. */
static struct fw_cfg_item *cur_item(struct fw_cfg *fw)
{
    uint16_t key = fw->cur_key;
    if (key == FW_CFG_INVALID)
        return NULL;
    unsigned arch = (key & FW_CFG_ARCH_LOCAL) ? 1 : 0;
    unsigned idx = key & FW_CFG_ENTRY_MASK;
    struct fw_cfg_item *it = NULL;
    if (idx < FW_CFG_FILE_FIRST)
        it = &fw->items[arch][idx];
    else if (!arch && idx - FW_CFG_FILE_FIRST < fw->nr_files)
        it = &fw->files[idx - FW_CFG_FILE_FIRST].item;
    return it && it->data ? it : NULL;
}

static void select_key(struct fw_cfg *fw, uint16_t key)
{
    fw->cur_offset = 0;
    /* The write-channel bit only says the guest intends to write; keep the item. */
    fw->cur_key = key & (FW_CFG_ARCH_LOCAL | FW_CFG_ENTRY_MASK);
    if (!cur_item(fw)) {
        fw->cur_key = FW_CFG_INVALID;
        return;
    }
    unsigned idx = fw->cur_key - FW_CFG_FILE_FIRST;
    if (fw->cur_key >= FW_CFG_FILE_FIRST && idx < fw->nr_files && fw->files[idx].select_cb)
        fw->files[idx].select_cb(fw->files[idx].cb_opaque, fw->files[idx].name);
}

static uint8_t read_data_byte(struct fw_cfg *fw)
{
    struct fw_cfg_item *it = cur_item(fw);
    if (!it || fw->cur_offset >= it->len)
        return 0;
    return it->data[fw->cur_offset++];
}

static void fw_cfg_io_read(void *opaque, uint64_t offset, void *data, unsigned len)
{
    struct fw_cfg *fw = opaque;
    (void)offset; /* QEMU answers data reads at either port */
    uint8_t *out = data;
    pthread_mutex_lock(&fw->lock);
    for (unsigned i = 0; i < len; i++)
        out[i] = read_data_byte(fw);
    pthread_mutex_unlock(&fw->lock);
}

static void fw_cfg_io_write(void *opaque, uint64_t offset, const void *data, unsigned len)
{
    struct fw_cfg *fw = opaque;
    /* Data-port writes were removed from QEMU (2.4); only the selector remains. */
    if (offset != 0 || len != 2)
        return;
    uint16_t key;
    memcpy(&key, data, 2);
    pthread_mutex_lock(&fw->lock);
    select_key(fw, le16toh(key));
    pthread_mutex_unlock(&fw->lock);
}

const struct io_ops fw_cfg_io_ops = {.read = fw_cfg_io_read, .write = fw_cfg_io_write};

/* One DMA transfer, described at guest address desc_addr. Lock held. */
static void dma_transfer(struct fw_cfg *fw, uint64_t desc_addr)
{
    struct fw_cfg_dma_access d;
    if (!gm_read(fw->gm, desc_addr, &d, sizeof(d)))
        return; /* nowhere to report the error */
    uint32_t control = be32toh(d.control);
    uint64_t length = be32toh(d.length);
    uint64_t addr = be64toh(d.address);

    if (control & FW_CFG_DMA_CTL_SELECT)
        select_key(fw, (uint16_t)(control >> 16));
    bool read = false, write = false;
    if (control & FW_CFG_DMA_CTL_READ)
        read = true;
    else if (control & FW_CFG_DMA_CTL_WRITE)
        write = true;
    else if (!(control & FW_CFG_DMA_CTL_SKIP))
        length = 0;

    uint32_t status = 0;
    while (length > 0 && !(status & FW_CFG_DMA_CTL_ERROR)) {
        struct fw_cfg_item *it = cur_item(fw);
        uint64_t chunk;
        if (!it || fw->cur_offset >= it->len) {
            /* Past the end: reads see zeros, skips succeed, writes fail. */
            chunk = length;
            if (read) {
                void *dst = gm_ptr(fw->gm, addr, chunk);
                if (dst)
                    memset(dst, 0, chunk);
                else
                    status |= FW_CFG_DMA_CTL_ERROR;
            }
            if (write)
                status |= FW_CFG_DMA_CTL_ERROR;
        } else {
            uint64_t avail = it->len - fw->cur_offset;
            chunk = length < avail ? length : avail;
            if (read) {
                void *dst = gm_ptr(fw->gm, addr, chunk);
                if (dst)
                    memcpy(dst, it->data + fw->cur_offset, chunk);
                else
                    status |= FW_CFG_DMA_CTL_ERROR;
            }
            if (write) {
                /* A write must fit the item entirely, as in QEMU. */
                const void *src = gm_ptr(fw->gm, addr, chunk);
                if (!it->writable || chunk != length || !src)
                    status |= FW_CFG_DMA_CTL_ERROR;
                else
                    memcpy(it->data + fw->cur_offset, src, chunk);
            }
            if (!(status & FW_CFG_DMA_CTL_ERROR))
                fw->cur_offset += (uint32_t)chunk;
        }
        addr += chunk;
        length -= chunk;
    }
    uint32_t be = htobe32(status);
    gm_write(fw->gm, desc_addr + offsetof(struct fw_cfg_dma_access, control), &be, sizeof(be));
}

static void fw_cfg_dma_read(void *opaque, uint64_t offset, void *data, unsigned len)
{
    (void)opaque;
    uint64_t sig = htobe64(FW_CFG_DMA_SIGNATURE);
    const uint8_t *s = (const uint8_t *)&sig;
    uint8_t *out = data;
    for (unsigned i = 0; i < len; i++)
        out[i] = offset + i < sizeof(sig) ? s[offset + i] : 0xff;
}

static void fw_cfg_dma_write(void *opaque, uint64_t offset, const void *data, unsigned len)
{
    struct fw_cfg *fw = opaque;
    uint64_t trigger = 0;
    bool go = false;
    pthread_mutex_lock(&fw->lock);
    if (len == 4) {
        uint32_t v;
        memcpy(&v, data, 4);
        v = be32toh(v);
        if (offset == 0) {
            fw->dma_addr = (uint64_t)v << 32;
        } else if (offset == 4) {
            trigger = fw->dma_addr | v;
            go = true;
        }
    } else if (len == 8 && offset == 0) {
        uint64_t v;
        memcpy(&v, data, 8);
        trigger = be64toh(v);
        go = true;
    }
    if (go) {
        fw->dma_addr = 0;
        dma_transfer(fw, trigger);
    }
    pthread_mutex_unlock(&fw->lock);
}

const struct io_ops fw_cfg_dma_ops = {.read = fw_cfg_dma_read, .write = fw_cfg_dma_write};

int fw_cfg_register(struct fw_cfg *fw, struct io_bus *pio)
{
    int rc = io_bus_register(pio, FW_CFG_IO_BASE, FW_CFG_IO_LEN, &fw_cfg_io_ops, fw);
    if (rc)
        return rc;
    rc = io_bus_register(pio, FW_CFG_DMA_BASE, FW_CFG_DMA_LEN, &fw_cfg_dma_ops, fw);
    if (rc)
        io_bus_unregister(pio, FW_CFG_IO_BASE);
    return rc;
}

/*
 * The MMIO flavour (QEMU's standard layout, the one arm64's virt board
 * uses): the data register at +0 (reads of 1-8 bytes at its start give
 * the next bytes in order), the selector at +8 (16 bits, big-endian) and
 * the DMA address at +16 (the same register as on port 0x514).
 */
static void fw_cfg_mmio_read(void *opaque, uint64_t offset, void *data, unsigned len)
{
    if (offset == FW_CFG_MMIO_DATA) {
        fw_cfg_io_read(opaque, 1, data, len);
    } else if (offset >= FW_CFG_MMIO_DMA) {
        fw_cfg_dma_read(opaque, offset - FW_CFG_MMIO_DMA, data, len);
    } else {
        memset(data, 0, len);
    }
}

static void fw_cfg_mmio_write(void *opaque, uint64_t offset, const void *data, unsigned len)
{
    struct fw_cfg *fw = opaque;
    if (offset == FW_CFG_MMIO_SELECTOR && len == 2) {
        uint16_t key;
        memcpy(&key, data, 2);
        pthread_mutex_lock(&fw->lock);
        select_key(fw, be16toh(key));
        pthread_mutex_unlock(&fw->lock);
    } else if (offset >= FW_CFG_MMIO_DMA) {
        fw_cfg_dma_write(opaque, offset - FW_CFG_MMIO_DMA, data, len);
    }
}

const struct io_ops fw_cfg_mmio_ops = {.read = fw_cfg_mmio_read, .write = fw_cfg_mmio_write};

int fw_cfg_register_mmio(struct fw_cfg *fw, struct io_bus *mmio, uint64_t base)
{
    return io_bus_register(mmio, base, FW_CFG_MMIO_LEN, &fw_cfg_mmio_ops, fw);
}
