/*
 * PIIX4-style ACPI PM1 event/control blocks, PM timer and GPE0 (ACPI 6.5
 * sections 4.8.3.1 "PM1 Event Grouping", 4.8.3.2 "PM1 Control Grouping",
 * 4.8.3.3 "Power Management Timer", 4.8.4.1 "General-Purpose Event Register
 * Blocks"). See acpi_pm.h for the register map and the S5 value.
 */
#include "arch/x86/acpi_pm.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "core/log.h"

/* Status bits that are write-1-to-clear, and the enables that pair with them. */
#define PM1_STS_MASK                                                                               \
    (ACPI_PM1_TMR_STS | 0x0010 /* BM_STS */ | ACPI_PM1_GBL_STS | ACPI_PM1_PWRBTN_STS |             \
     ACPI_PM1_SLPBTN_STS | ACPI_PM1_RTC_STS | ACPI_PM1_WAK_STS)
#define PM1_EN_MASK                                                                                \
    (ACPI_PM1_TMR_STS | ACPI_PM1_GBL_STS | ACPI_PM1_PWRBTN_STS | ACPI_PM1_SLPBTN_STS |             \
     ACPI_PM1_RTC_STS)
/* PM1_CNT bits that read back: BM_RLD and SLP_TYP (GBL_RLS and SLP_EN are write-only). */
#define PM1_CNT_BM_RLD 0x0002
#define PM1_CNT_STORED (PM1_CNT_BM_RLD | ACPI_PM1_SLP_TYP_MASK)

#define PM_TMR_MASK 0xffffffu
/* TMR_STS is set whenever bit 23 of the counter changes. */
#define PM_TMR_STS_SHIFT 23

#define NS_PER_SEC 1000000000u

struct acpi_pm {
    pthread_mutex_t lock; /* register state */
    const struct vm_hooks *hooks;
    struct platform_events events;
    acpi_pm_clock_fn clock;
    void *clock_opaque;

    uint16_t pm1_sts, pm1_en, pm1_cnt;
    uint16_t gpe_sts, gpe_en;
    uint64_t tmr_half_periods; /* counter >> 23 when TMR_STS was last evaluated */
    bool sci_level;

    /* Where the PM block is mapped; never taken while `lock` is held. */
    pthread_mutex_t map_lock;
    struct io_bus *pio;
    uint16_t base;
    bool mapped, gpe_mapped;
};

static uint64_t monotonic_ns(void *opaque)
{
    struct timespec ts;
    (void)opaque;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

/* Timer ticks since the clock's origin, without overflowing the product. */
static uint64_t timer_ticks(const struct acpi_pm *pm)
{
    uint64_t ns = pm->clock(pm->clock_opaque);
    return (ns / NS_PER_SEC) * ACPI_PM_TIMER_HZ + (ns % NS_PER_SEC) * ACPI_PM_TIMER_HZ / NS_PER_SEC;
}

static void update_timer_status(struct acpi_pm *pm, uint64_t ticks)
{
    uint64_t half = ticks >> PM_TMR_STS_SHIFT;
    if (half != pm->tmr_half_periods) {
        pm->tmr_half_periods = half;
        pm->pm1_sts |= ACPI_PM1_TMR_STS;
    }
}

/* Called with the lock held after every state change. */
static void update_sci(struct acpi_pm *pm)
{
    bool level = (pm->pm1_sts & pm->pm1_en & PM1_EN_MASK) || (pm->gpe_sts & pm->gpe_en);
    if (level != pm->sci_level) {
        pm->sci_level = level;
        platform_set_irq(pm->hooks, ACPI_SCI_IRQ, level);
    }
}

/*
 * The guest may use any width at any offset, so accesses are assembled from
 * (and split into) the 16/32-bit registers byte by byte.
 */
static uint8_t pm_byte(const struct acpi_pm *pm, unsigned off, uint32_t tmr)
{
    switch (off) {
    case 0:
    case 1:
        return (uint8_t)(pm->pm1_sts >> (8 * (off & 1)));
    case 2:
    case 3:
        return (uint8_t)(pm->pm1_en >> (8 * (off & 1)));
    case 4:
    case 5:
        return (uint8_t)((pm->pm1_cnt | ACPI_PM1_SCI_EN) >> (8 * (off & 1)));
    case 8:
    case 9:
    case 10:
    case 11:
        return (uint8_t)(tmr >> (8 * (off - 8)));
    default:
        return 0;
    }
}

static void acpi_pm_io_read(void *opaque, uint64_t offset, void *data, unsigned len)
{
    struct acpi_pm *pm = opaque;
    uint8_t *out = data;

    pthread_mutex_lock(&pm->lock);
    uint64_t ticks = timer_ticks(pm);
    update_timer_status(pm, ticks);
    for (unsigned i = 0; i < len; i++) {
        uint64_t off = offset + i;
        out[i] =
            off < ACPI_PM_LEN ? pm_byte(pm, (unsigned)off, (uint32_t)(ticks & PM_TMR_MASK)) : 0xff;
    }
    update_sci(pm);
    pthread_mutex_unlock(&pm->lock);
}

/* Gather the bytes of [offset, offset+len) that fall on the 16-bit register at reg. */
static uint16_t reg16_bytes(uint64_t offset, const uint8_t *in, unsigned len, unsigned reg,
                            uint16_t *mask)
{
    uint16_t val = 0;
    *mask = 0;
    for (unsigned i = 0; i < len; i++) {
        uint64_t off = offset + i;
        if (off == reg || off == reg + 1u) {
            unsigned shift = 8 * (unsigned)(off - reg);
            val |= (uint16_t)(in[i] << shift);
            *mask |= (uint16_t)(0xff << shift);
        }
    }
    return val;
}

/* Returns true when the write entered S5. */
static bool write_pm1_cnt(struct acpi_pm *pm, uint16_t val, uint16_t mask)
{
    uint16_t cnt = (uint16_t)((pm->pm1_cnt & ~mask) | (val & mask));
    pm->pm1_cnt = cnt & PM1_CNT_STORED;
    if (!(mask & val & ACPI_PM1_SLP_EN))
        return false;
    unsigned slp_typ = (cnt & ACPI_PM1_SLP_TYP_MASK) >> ACPI_PM1_SLP_TYP_SHIFT;
    if (slp_typ == ACPI_S5_SLP_TYP)
        return true;
    log_warn("acpi: guest asked for sleep type %u, which this machine does not support", slp_typ);
    return false;
}

static void acpi_pm_io_write(void *opaque, uint64_t offset, const void *data, unsigned len)
{
    struct acpi_pm *pm = opaque;
    const uint8_t *in = data;
    uint16_t val, mask;
    bool poweroff = false;

    pthread_mutex_lock(&pm->lock);
    update_timer_status(pm, timer_ticks(pm));

    val = reg16_bytes(offset, in, len, 0, &mask);
    pm->pm1_sts &= (uint16_t) ~(val & mask & PM1_STS_MASK);

    val = reg16_bytes(offset, in, len, 2, &mask);
    pm->pm1_en = (uint16_t)(((pm->pm1_en & ~mask) | (val & mask)) & PM1_EN_MASK);

    val = reg16_bytes(offset, in, len, 4, &mask);
    if (mask)
        poweroff = write_pm1_cnt(pm, val, mask);

    update_sci(pm);
    pthread_mutex_unlock(&pm->lock);

    if (poweroff) {
        log_info("acpi: guest entered S5, powering off");
        platform_poweroff(&pm->events);
    }
}

const struct io_ops acpi_pm_io_ops = {.read = acpi_pm_io_read, .write = acpi_pm_io_write};

static void acpi_gpe0_read(void *opaque, uint64_t offset, void *data, unsigned len)
{
    struct acpi_pm *pm = opaque;
    uint8_t *out = data;

    pthread_mutex_lock(&pm->lock);
    uint32_t regs = pm->gpe_sts | (uint32_t)pm->gpe_en << 16;
    for (unsigned i = 0; i < len; i++) {
        uint64_t off = offset + i;
        out[i] = off < ACPI_GPE0_LEN ? (uint8_t)(regs >> (8 * off)) : 0xff;
    }
    pthread_mutex_unlock(&pm->lock);
}

static void acpi_gpe0_write(void *opaque, uint64_t offset, const void *data, unsigned len)
{
    struct acpi_pm *pm = opaque;
    const uint8_t *in = data;
    uint16_t val, mask;

    pthread_mutex_lock(&pm->lock);
    val = reg16_bytes(offset, in, len, 0, &mask);
    pm->gpe_sts &= (uint16_t) ~(val & mask);
    val = reg16_bytes(offset, in, len, 2, &mask);
    pm->gpe_en = (uint16_t)((pm->gpe_en & ~mask) | (val & mask));
    update_sci(pm);
    pthread_mutex_unlock(&pm->lock);
}

const struct io_ops acpi_gpe0_io_ops = {.read = acpi_gpe0_read, .write = acpi_gpe0_write};

struct acpi_pm *acpi_pm_create(const struct vm_hooks *hooks, const struct platform_events *events,
                               acpi_pm_clock_fn clock, void *clock_opaque)
{
    struct acpi_pm *pm = calloc(1, sizeof(*pm));
    if (!pm)
        return NULL;
    pthread_mutex_init(&pm->lock, NULL);
    pthread_mutex_init(&pm->map_lock, NULL);
    pm->hooks = hooks;
    if (events)
        pm->events = *events;
    pm->clock = clock ? clock : monotonic_ns;
    pm->clock_opaque = clock_opaque;
    pm->tmr_half_periods = timer_ticks(pm) >> PM_TMR_STS_SHIFT;
    pm->base = ACPI_PM_BASE_DEFAULT;
    return pm;
}

void acpi_pm_destroy(struct acpi_pm *pm)
{
    if (!pm)
        return;
    pthread_mutex_lock(&pm->map_lock);
    if (pm->mapped)
        io_bus_unregister(pm->pio, pm->base);
    if (pm->gpe_mapped)
        io_bus_unregister(pm->pio, ACPI_GPE0_BASE);
    pthread_mutex_unlock(&pm->map_lock);
    pthread_mutex_destroy(&pm->map_lock);
    pthread_mutex_destroy(&pm->lock);
    free(pm);
}

int acpi_pm_register(struct acpi_pm *pm, struct io_bus *pio)
{
    int ret;

    pthread_mutex_lock(&pm->map_lock);
    pm->pio = pio;
    ret = io_bus_register(pio, pm->base, ACPI_PM_LEN, &acpi_pm_io_ops, pm);
    if (ret < 0) {
        log_error("acpi: cannot map the PM block at 0x%x: %d", pm->base, ret);
        goto out;
    }
    pm->mapped = true;
    ret = io_bus_register(pio, ACPI_GPE0_BASE, ACPI_GPE0_LEN, &acpi_gpe0_io_ops, pm);
    if (ret < 0) {
        log_error("acpi: cannot map GPE0 at 0x%x: %d", ACPI_GPE0_BASE, ret);
        io_bus_unregister(pio, pm->base);
        pm->mapped = false;
        goto out;
    }
    pm->gpe_mapped = true;
out:
    pthread_mutex_unlock(&pm->map_lock);
    return ret;
}

int acpi_pm_set_base(struct acpi_pm *pm, uint16_t base, bool enabled)
{
    int ret = 0;

    base &= (uint16_t) ~(ACPI_PM_LEN - 1);
    pthread_mutex_lock(&pm->map_lock);
    if (!pm->pio) {
        ret = -ENODEV;
        goto out;
    }
    if (pm->mapped == enabled && pm->base == base)
        goto out; /* firmware rewrote the same value: nothing moves */
    if (pm->mapped) {
        io_bus_unregister(pm->pio, pm->base);
        pm->mapped = false;
    }
    pm->base = base;
    if (enabled && base) {
        ret = io_bus_register(pm->pio, base, ACPI_PM_LEN, &acpi_pm_io_ops, pm);
        if (ret < 0)
            log_warn("acpi: guest moved the PM block to 0x%x, which is taken: %d", base, ret);
        else
            pm->mapped = true;
    }
out:
    pthread_mutex_unlock(&pm->map_lock);
    return ret;
}

void acpi_pm_press_power_button(struct acpi_pm *pm)
{
    pthread_mutex_lock(&pm->lock);
    pm->pm1_sts |= ACPI_PM1_PWRBTN_STS;
    update_sci(pm);
    pthread_mutex_unlock(&pm->lock);
}

void acpi_pm_raise_gpe(struct acpi_pm *pm, unsigned bit)
{
    if (bit >= 16)
        return;
    pthread_mutex_lock(&pm->lock);
    pm->gpe_sts |= (uint16_t)(1u << bit);
    update_sci(pm);
    pthread_mutex_unlock(&pm->lock);
}
