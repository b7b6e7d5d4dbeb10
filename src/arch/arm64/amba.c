/*
 * PL031 RTC and PL061 GPIO (see amba.h for the manuals followed). Register
 * accesses are 32-bit in both TRMs; narrower reads return the low bytes of
 * the register, narrower writes are taken as the whole register.
 */
#include "arch/arm64/amba.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hw/platform.h"

/* PrimeCell peripheral ids (part number, designer 0x41 "ARM", revision) and cell id. */
static const uint8_t pl031_periph_id[4] = {0x31, 0x10, 0x04, 0x00};
static const uint8_t pl061_periph_id[4] = {0x61, 0x10, 0x04, 0x00};
static const uint8_t primecell_id[4] = {0x0d, 0xf0, 0x05, 0xb1};

/* 0xfe0-0xfec: peripheral id bytes; 0xff0-0xffc: cell id bytes; else -1. */
static int primecell_reg(uint64_t off, const uint8_t periph[4], uint32_t *v)
{
    if (off >= 0xfe0 && off < 0xff0) {
        *v = periph[(off - 0xfe0) / 4];
        return 0;
    }
    if (off >= 0xff0 && off < 0x1000) {
        *v = primecell_id[(off - 0xff0) / 4];
        return 0;
    }
    return -1;
}

static void put(void *data, unsigned len, uint32_t v)
{
    memset(data, 0, len);
    memcpy(data, &v, len < 4 ? len : 4);
}

static uint32_t get(const void *data, unsigned len)
{
    uint32_t v = 0;
    memcpy(&v, data, len < 4 ? len : 4);
    return v;
}

/* ---- PL031 ---- */

#define RTCDR 0x00
#define RTCMR 0x04
#define RTCLR 0x08
#define RTCCR 0x0c
#define RTCIMSC 0x10
#define RTCRIS 0x14
#define RTCMIS 0x18
#define RTCICR 0x1c

struct pl031 {
    pthread_mutex_t lock;
    uint64_t (*now)(void);
    uint32_t load;      /* RTCLR's last value */
    uint64_t loaded_at; /* host seconds when it was written */
    uint32_t match, imsc;
};

static uint64_t realtime_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec;
}

struct pl031 *pl031_create(uint64_t (*now)(void))
{
    struct pl031 *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    pthread_mutex_init(&r->lock, NULL);
    r->now = now ? now : realtime_now;
    /* Out of reset the counter shows the host's time: the guest reads wall-clock time at boot. */
    r->loaded_at = r->now();
    r->load = (uint32_t)r->loaded_at;
    return r;
}

void pl031_destroy(struct pl031 *r)
{
    if (!r)
        return;
    pthread_mutex_destroy(&r->lock);
    free(r);
}

static void pl031_read(void *opaque, uint64_t off, void *data, unsigned len)
{
    struct pl031 *r = opaque;
    uint32_t v = 0;
    pthread_mutex_lock(&r->lock);
    if (primecell_reg(off, pl031_periph_id, &v) < 0) {
        switch (off) {
        case RTCDR:
            v = (uint32_t)(r->load + (r->now() - r->loaded_at));
            break;
        case RTCMR:
            v = r->match;
            break;
        case RTCLR:
            v = r->load;
            break;
        case RTCCR:
            v = 1; /* always started: the counter cannot be stopped (TRM: RTCCR bit 0) */
            break;
        case RTCIMSC:
            v = r->imsc;
            break;
        default:
            v = 0; /* RIS/MIS: no alarm is ever raised */
        }
    }
    pthread_mutex_unlock(&r->lock);
    put(data, len, v);
}

static void pl031_write(void *opaque, uint64_t off, const void *data, unsigned len)
{
    struct pl031 *r = opaque;
    uint32_t v = get(data, len);
    pthread_mutex_lock(&r->lock);
    switch (off) {
    case RTCMR:
        r->match = v;
        break;
    case RTCLR:
        r->load = v;
        r->loaded_at = r->now();
        break;
    case RTCIMSC:
        r->imsc = v & 1;
        break;
    default:
        break; /* RTCCR (start only), RTCICR (nothing to clear), read-only registers */
    }
    pthread_mutex_unlock(&r->lock);
}

const struct io_ops pl031_io_ops = {.read = pl031_read, .write = pl031_write};

/* ---- PL061 ---- */

#define GPIODATA_END 0x400 /* data: 0x000-0x3fc, address bits [9:2] mask the access */
#define GPIODIR 0x400
#define GPIOIS 0x404
#define GPIOIBE 0x408
#define GPIOIEV 0x40c
#define GPIOIE 0x410
#define GPIORIS 0x414
#define GPIOMIS 0x418
#define GPIOIC 0x41c
#define GPIOAFSEL 0x420

struct pl061 {
    pthread_mutex_t lock;
    const struct vm_hooks *hooks;
    unsigned line;
    uint8_t out; /* what the guest wrote for its output pins */
    uint8_t in;  /* what the outside drives on input pins */
    uint8_t dir; /* 1: output */
    uint8_t is, ibe, iev, ie, ris, afsel;
    uint8_t release_on_read; /* pins pressed by pl061_press, released once read high */
    bool irq_level;
};

struct pl061 *pl061_create(const struct vm_hooks *hooks, unsigned line)
{
    struct pl061 *g = calloc(1, sizeof(*g));
    if (!g)
        return NULL;
    pthread_mutex_init(&g->lock, NULL);
    g->hooks = hooks;
    g->line = line;
    return g;
}

void pl061_destroy(struct pl061 *g)
{
    if (!g)
        return;
    pthread_mutex_destroy(&g->lock);
    free(g);
}

static uint8_t pins(const struct pl061 *g)
{
    return (uint8_t)((g->out & g->dir) | (g->in & ~g->dir));
}

/*
 * Level-sensitive pins (IS = 1) are pending while at their active level
 * (IEV: 1 high, 0 low); edge pins latch in RIS when the edge happens. The
 * output is MIS != 0. Returns whether the output changed (called locked,
 * the line is driven after unlocking).
 */
static bool update_irq(struct pl061 *g)
{
    uint8_t p = pins(g);
    uint8_t level = (uint8_t)(g->is & ~(p ^ g->iev));
    g->ris = (uint8_t)((g->ris & ~g->is) | level);
    bool lvl = (g->ris & g->ie) != 0;
    bool changed = lvl != g->irq_level;
    g->irq_level = lvl;
    return changed;
}

/* The pins changed from old to the current state: latch edge interrupts. */
static void latch_edges(struct pl061 *g, uint8_t old)
{
    uint8_t now = pins(g);
    uint8_t changed = (uint8_t)(old ^ now);
    uint8_t rising = (uint8_t)(changed & now), falling = (uint8_t)(changed & ~now);
    uint8_t edge = (uint8_t)(changed & g->ibe) |
                   (uint8_t)(~g->ibe & ((rising & g->iev) | (falling & ~g->iev)));
    g->ris |= (uint8_t)(edge & ~g->is);
}

static void drive(struct pl061 *g, bool changed, bool level)
{
    if (changed)
        platform_set_irq(g->hooks, g->line, level);
}

static void pl061_read(void *opaque, uint64_t off, void *data, unsigned len)
{
    struct pl061 *g = opaque;
    uint32_t v = 0;
    bool changed = false, level = false;
    pthread_mutex_lock(&g->lock);
    if (primecell_reg(off, pl061_periph_id, &v) == 0) {
        /* identification */
    } else if (off < GPIODATA_END) {
        uint8_t mask = (uint8_t)(off >> 2);
        v = pins(g) & mask;
        /* A pressed button the guest has now seen high is released (amba.h). */
        uint8_t seen = (uint8_t)(g->release_on_read & mask & pins(g));
        if (seen) {
            uint8_t old = pins(g);
            g->in &= (uint8_t)~seen;
            g->release_on_read &= (uint8_t)~seen;
            latch_edges(g, old);
            changed = update_irq(g);
            level = g->irq_level;
        }
    } else {
        switch (off) {
        case GPIODIR:
            v = g->dir;
            break;
        case GPIOIS:
            v = g->is;
            break;
        case GPIOIBE:
            v = g->ibe;
            break;
        case GPIOIEV:
            v = g->iev;
            break;
        case GPIOIE:
            v = g->ie;
            break;
        case GPIORIS:
            v = g->ris;
            break;
        case GPIOMIS:
            v = g->ris & g->ie;
            break;
        case GPIOAFSEL:
            v = g->afsel;
            break;
        default:
            v = 0;
        }
    }
    pthread_mutex_unlock(&g->lock);
    drive(g, changed, level);
    put(data, len, v);
}

static void pl061_write(void *opaque, uint64_t off, const void *data, unsigned len)
{
    struct pl061 *g = opaque;
    uint8_t v = (uint8_t)get(data, len);
    pthread_mutex_lock(&g->lock);
    uint8_t old = pins(g);
    if (off < GPIODATA_END) {
        uint8_t mask = (uint8_t)(off >> 2);
        g->out = (uint8_t)((g->out & ~mask) | (v & mask));
    } else {
        switch (off) {
        case GPIODIR:
            g->dir = v;
            break;
        case GPIOIS:
            g->is = v;
            break;
        case GPIOIBE:
            g->ibe = v;
            break;
        case GPIOIEV:
            g->iev = v;
            break;
        case GPIOIE:
            g->ie = v;
            break;
        case GPIOIC:
            g->ris &= (uint8_t)~v;
            break;
        case GPIOAFSEL:
            g->afsel = v;
            break;
        default:
            break;
        }
    }
    latch_edges(g, old);
    bool changed = update_irq(g);
    bool level = g->irq_level;
    pthread_mutex_unlock(&g->lock);
    drive(g, changed, level);
}

const struct io_ops pl061_io_ops = {.read = pl061_read, .write = pl061_write};

void pl061_set_input(struct pl061 *g, unsigned pin, bool level)
{
    if (pin > 7)
        return;
    pthread_mutex_lock(&g->lock);
    uint8_t old = pins(g);
    if (level)
        g->in |= (uint8_t)(1u << pin);
    else
        g->in &= (uint8_t) ~(1u << pin);
    latch_edges(g, old);
    bool changed = update_irq(g);
    bool lvl = g->irq_level;
    pthread_mutex_unlock(&g->lock);
    drive(g, changed, lvl);
}

void pl061_press(struct pl061 *g, unsigned pin)
{
    if (pin > 7)
        return;
    /* Marked first: a read before the line is high releases nothing (only high pins are). */
    pthread_mutex_lock(&g->lock);
    g->release_on_read |= (uint8_t)(1u << pin);
    pthread_mutex_unlock(&g->lock);
    pl061_set_input(g, pin, true);
}
