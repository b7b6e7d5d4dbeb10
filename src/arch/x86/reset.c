/*
 * Port 0x92 and the 0xCF9 reset control register (82371AB PIIX4 data
 * sheet, "RC - Reset Control Register"; IBM PS/2 "System Control Port A").
 */
#include "arch/x86/reset.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#define PORT92_RESET 0x01
#define PORT92_A20 0x02

/* RC bits that read back; RST_CPU only triggers. */
#define RC_SYS_RST 0x02
#define RC_FULL_RST 0x08

struct reset_ctl {
    pthread_mutex_t lock;
    struct platform_events events;
    uint8_t port92, rc;
};

static void port92_read(void *opaque, uint64_t offset, void *data, unsigned len)
{
    struct reset_ctl *r = opaque;
    uint8_t *out = data;
    (void)offset;

    pthread_mutex_lock(&r->lock);
    out[0] = r->port92;
    pthread_mutex_unlock(&r->lock);
    for (unsigned i = 1; i < len; i++)
        out[i] = 0xff;
}

static void port92_write(void *opaque, uint64_t offset, const void *data, unsigned len)
{
    struct reset_ctl *r = opaque;
    uint8_t val = *(const uint8_t *)data;
    (void)offset;
    (void)len;

    pthread_mutex_lock(&r->lock);
    bool reset = !(r->port92 & PORT92_RESET) && (val & PORT92_RESET);
    /* The reset bit does not stick: after the reset it reads 0 again. */
    r->port92 = val & PORT92_A20;
    pthread_mutex_unlock(&r->lock);
    if (reset)
        platform_reset(&r->events);
}

const struct io_ops port92_io_ops = {.read = port92_read, .write = port92_write};

uint8_t reset_ctl_read(struct reset_ctl *r)
{
    pthread_mutex_lock(&r->lock);
    uint8_t v = r->rc;
    pthread_mutex_unlock(&r->lock);
    return v;
}

void reset_ctl_write(void *reset_ctl, uint8_t val)
{
    struct reset_ctl *r = reset_ctl;

    pthread_mutex_lock(&r->lock);
    r->rc = val & (RC_SYS_RST | RC_FULL_RST);
    pthread_mutex_unlock(&r->lock);
    if (val & RESET_CTL_RST_CPU)
        platform_reset(&r->events);
}

struct reset_ctl *reset_ctl_create(const struct platform_events *events)
{
    struct reset_ctl *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    pthread_mutex_init(&r->lock, NULL);
    if (events)
        r->events = *events;
    r->port92 = PORT92_A20; /* firmware enables A20 before anything we boot runs */
    return r;
}

void reset_ctl_destroy(struct reset_ctl *r)
{
    if (!r)
        return;
    pthread_mutex_destroy(&r->lock);
    free(r);
}

int reset_ctl_register(struct reset_ctl *r, struct io_bus *pio)
{
    return io_bus_register(pio, RESET_PORT92, 1, &port92_io_ops, r);
}
