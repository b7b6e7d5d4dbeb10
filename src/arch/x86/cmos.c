/*
 * MC146818A RTC and CMOS RAM (Motorola data sheet: "Address Map",
 * "Registers A-D", "Update Cycle"). See cmos.h for the scope.
 */
#include "arch/x86/cmos.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Clock and control registers. */
#define RTC_SECONDS 0x00
#define RTC_MINUTES 0x02
#define RTC_HOURS 0x04
#define RTC_DAY_OF_WEEK 0x06
#define RTC_DAY_OF_MONTH 0x07
#define RTC_MONTH 0x08
#define RTC_YEAR 0x09
#define RTC_REG_A 0x0a
#define RTC_REG_B 0x0b
#define RTC_REG_C 0x0c
#define RTC_REG_D 0x0d
#define RTC_FIRST_RAM 0x0e

#define REG_A_UIP 0x80
#define REG_A_DEFAULT 0x26 /* 32.768 kHz time base, 1024 Hz periodic rate */

#define REG_B_SET 0x80
#define REG_B_PIE 0x40
#define REG_B_AIE 0x20
#define REG_B_UIE 0x10
#define REG_B_DM_BINARY 0x04
#define REG_B_24H 0x02
#define REG_B_DEFAULT REG_B_24H

#define REG_C_IRQF 0x80
#define REG_C_UF 0x10

#define REG_D_VRT 0x80 /* the battery is fine: RAM and time are valid */

#define HOUR_PM 0x80

/* UIP rises this long before the update starts (data sheet: tBUC). */
#define UIP_LEAD_NS 244000L

/* Firmware memory-size bytes (QEMU's PC layout). */
#define CMOS_BASE_MEM_LO 0x15
#define CMOS_EXT_MEM_LO 0x17
#define CMOS_EXT_MEM2_LO 0x30
#define CMOS_MEM_ABOVE_16M_LO 0x34
#define CMOS_MEM_ABOVE_4G 0x5b
#define CMOS_NR_CPUS_MINUS_1 0x5f

#define NMI_MASK 0x80

struct cmos {
    pthread_mutex_t lock;
    cmos_clock_fn clock;
    void *clock_opaque;

    uint8_t ram[CMOS_SIZE];
    uint8_t index;
    bool nmi_masked;
    int64_t offset_sec;  /* guest wall clock minus host wall clock */
    int64_t last_c_read; /* guest second when register C was last read */
};

static void host_clock(void *opaque, struct timespec *now)
{
    (void)opaque;
    clock_gettime(CLOCK_REALTIME, now);
}

static bool is_time_reg(unsigned idx)
{
    return idx == RTC_SECONDS || idx == RTC_MINUTES || idx == RTC_HOURS ||
           (idx >= RTC_DAY_OF_WEEK && idx <= RTC_YEAR) || idx == CMOS_CENTURY;
}

static void guest_now(const struct cmos *c, struct timespec *ts)
{
    c->clock(c->clock_opaque, ts);
    ts->tv_sec += c->offset_sec;
}

static bool binary_mode(const struct cmos *c)
{
    return c->ram[RTC_REG_B] & REG_B_DM_BINARY;
}

static uint8_t to_reg(const struct cmos *c, unsigned v)
{
    v %= 100;
    return binary_mode(c) ? (uint8_t)v : (uint8_t)((v / 10) << 4 | (v % 10));
}

static unsigned from_reg(const struct cmos *c, uint8_t v)
{
    return binary_mode(c) ? v : (unsigned)(v >> 4) * 10 + (v & 0x0f);
}

static uint8_t encode_hour(const struct cmos *c, int hour)
{
    if (c->ram[RTC_REG_B] & REG_B_24H)
        return to_reg(c, (unsigned)hour);
    unsigned h12 = hour % 12 ? (unsigned)(hour % 12) : 12;
    return (uint8_t)(to_reg(c, h12) | (hour >= 12 ? HOUR_PM : 0));
}

static int decode_hour(const struct cmos *c, uint8_t reg)
{
    if (c->ram[RTC_REG_B] & REG_B_24H)
        return (int)from_reg(c, reg);
    int h = (int)from_reg(c, reg & ~HOUR_PM) % 12; /* 12 AM is hour 0 */
    return (reg & HOUR_PM) ? h + 12 : h;
}

/* Write the current guest time into the clock registers. */
static void snapshot_time(struct cmos *c)
{
    struct timespec ts;
    struct tm tm;
    guest_now(c, &ts);
    time_t t = (time_t)ts.tv_sec;
    gmtime_r(&t, &tm);
    int year = tm.tm_year + 1900;
    c->ram[RTC_SECONDS] = to_reg(c, (unsigned)tm.tm_sec);
    c->ram[RTC_MINUTES] = to_reg(c, (unsigned)tm.tm_min);
    c->ram[RTC_HOURS] = encode_hour(c, tm.tm_hour);
    c->ram[RTC_DAY_OF_WEEK] = to_reg(c, (unsigned)tm.tm_wday + 1);
    c->ram[RTC_DAY_OF_MONTH] = to_reg(c, (unsigned)tm.tm_mday);
    c->ram[RTC_MONTH] = to_reg(c, (unsigned)tm.tm_mon + 1);
    c->ram[RTC_YEAR] = to_reg(c, (unsigned)(year % 100));
    c->ram[CMOS_CENTURY] = to_reg(c, (unsigned)(year / 100));
}

/* The guest set the clock: keep running from the registers' time. */
static void adopt_registers(struct cmos *c)
{
    struct tm tm = {
        .tm_sec = (int)from_reg(c, c->ram[RTC_SECONDS]),
        .tm_min = (int)from_reg(c, c->ram[RTC_MINUTES]),
        .tm_hour = decode_hour(c, c->ram[RTC_HOURS]),
        .tm_mday = (int)from_reg(c, c->ram[RTC_DAY_OF_MONTH]),
        .tm_mon = (int)from_reg(c, c->ram[RTC_MONTH]) - 1,
        .tm_year =
            (int)(from_reg(c, c->ram[CMOS_CENTURY]) * 100 + from_reg(c, c->ram[RTC_YEAR])) - 1900,
    };
    struct timespec host;
    /* timegm normalises out-of-range fields, so guest garbage stays harmless. */
    time_t guest = timegm(&tm);
    c->clock(c->clock_opaque, &host);
    c->offset_sec = (int64_t)guest - (int64_t)host.tv_sec;
}

static bool clock_running(const struct cmos *c)
{
    return !(c->ram[RTC_REG_B] & REG_B_SET);
}

static uint8_t read_reg(struct cmos *c, unsigned idx)
{
    struct timespec ts;

    if (is_time_reg(idx)) {
        if (clock_running(c))
            snapshot_time(c);
        return c->ram[idx];
    }
    switch (idx) {
    case RTC_REG_A: {
        uint8_t a = c->ram[RTC_REG_A] & ~REG_A_UIP;
        if (clock_running(c)) {
            guest_now(c, &ts);
            if (ts.tv_nsec >= 1000000000L - UIP_LEAD_NS)
                a |= REG_A_UIP;
        }
        return a;
    }
    case RTC_REG_C: {
        uint8_t flags = 0;
        if (clock_running(c)) {
            guest_now(c, &ts);
            if (ts.tv_sec != c->last_c_read)
                flags |= REG_C_UF;
            c->last_c_read = ts.tv_sec;
        }
        if ((flags & REG_C_UF) && (c->ram[RTC_REG_B] & REG_B_UIE))
            flags |= REG_C_IRQF;
        return flags;
    }
    case RTC_REG_D:
        return REG_D_VRT;
    default:
        return c->ram[idx];
    }
}

static void write_reg(struct cmos *c, unsigned idx, uint8_t val)
{
    if (is_time_reg(idx)) {
        /* Other fields keep counting from now, the written one is replaced. */
        if (clock_running(c))
            snapshot_time(c);
        c->ram[idx] = val;
        if (clock_running(c))
            adopt_registers(c);
        return;
    }
    switch (idx) {
    case RTC_REG_A:
        c->ram[RTC_REG_A] = val & ~REG_A_UIP;
        break;
    case RTC_REG_B: {
        bool was_set = !clock_running(c);
        if (!was_set && (val & REG_B_SET))
            snapshot_time(c); /* freeze what the guest is about to edit */
        /* SET stops updates, so it also clears the update-ended enable. */
        if (val & REG_B_SET)
            val &= ~REG_B_UIE;
        c->ram[RTC_REG_B] = val;
        if (was_set && !(val & REG_B_SET))
            adopt_registers(c);
        break;
    }
    case RTC_REG_C:
    case RTC_REG_D:
        break; /* read-only */
    default:
        c->ram[idx] = val;
        break;
    }
}

static void cmos_io_read(void *opaque, uint64_t offset, void *data, unsigned len)
{
    struct cmos *c = opaque;
    uint8_t *out = data;

    pthread_mutex_lock(&c->lock);
    for (unsigned i = 0; i < len; i++) {
        /* The index register is write-only. */
        out[i] = offset + i == 1 ? read_reg(c, c->index) : 0xff;
    }
    pthread_mutex_unlock(&c->lock);
}

static void cmos_io_write(void *opaque, uint64_t offset, const void *data, unsigned len)
{
    struct cmos *c = opaque;
    const uint8_t *in = data;

    pthread_mutex_lock(&c->lock);
    for (unsigned i = 0; i < len; i++) {
        if (offset + i == 0) {
            c->index = in[i] & (CMOS_SIZE - 1);
            c->nmi_masked = in[i] & NMI_MASK;
        } else if (offset + i == 1) {
            write_reg(c, c->index, in[i]);
        }
    }
    pthread_mutex_unlock(&c->lock);
}

const struct io_ops cmos_io_ops = {.read = cmos_io_read, .write = cmos_io_write};

struct cmos *cmos_create(cmos_clock_fn clock, void *clock_opaque)
{
    struct cmos *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    pthread_mutex_init(&c->lock, NULL);
    c->clock = clock ? clock : host_clock;
    c->clock_opaque = clock_opaque;
    c->ram[RTC_REG_A] = REG_A_DEFAULT;
    c->ram[RTC_REG_B] = REG_B_DEFAULT;
    struct timespec ts;
    guest_now(c, &ts);
    c->last_c_read = ts.tv_sec;
    return c;
}

void cmos_destroy(struct cmos *c)
{
    if (!c)
        return;
    pthread_mutex_destroy(&c->lock);
    free(c);
}

int cmos_register(struct cmos *c, struct io_bus *pio)
{
    return io_bus_register(pio, CMOS_BASE_PORT, CMOS_NR_PORTS, &cmos_io_ops, c);
}

int cmos_set_byte(struct cmos *c, unsigned index, uint8_t val)
{
    if (index < RTC_FIRST_RAM || index >= CMOS_SIZE || index == CMOS_CENTURY)
        return -EINVAL;
    pthread_mutex_lock(&c->lock);
    c->ram[index] = val;
    pthread_mutex_unlock(&c->lock);
    return 0;
}

uint8_t cmos_get_byte(struct cmos *c, unsigned index)
{
    if (index >= CMOS_SIZE)
        return 0xff;
    pthread_mutex_lock(&c->lock);
    uint8_t v = read_reg(c, index);
    pthread_mutex_unlock(&c->lock);
    return v;
}

static void set_u16(struct cmos *c, unsigned index, uint64_t v)
{
    c->ram[index] = (uint8_t)v;
    c->ram[index + 1] = (uint8_t)(v >> 8);
}

void cmos_set_memory(struct cmos *c, uint64_t ram_below_4g, uint64_t ram_above_4g)
{
    const uint64_t kib = 1024, mib = 1024 * 1024;
    uint64_t ext_kib = ram_below_4g > mib ? (ram_below_4g - mib) / kib : 0;
    uint64_t above_16m = ram_below_4g > 16 * mib ? (ram_below_4g - 16 * mib) >> 16 : 0;
    uint64_t above_4g = ram_above_4g >> 16;

    if (ext_kib > 0xffff)
        ext_kib = 0xffff;
    if (above_16m > 0xffff)
        above_16m = 0xffff;
    if (above_4g > 0xffffff)
        above_4g = 0xffffff;

    pthread_mutex_lock(&c->lock);
    set_u16(c, CMOS_BASE_MEM_LO, 640); /* conventional memory, KiB */
    set_u16(c, CMOS_EXT_MEM_LO, ext_kib);
    set_u16(c, CMOS_EXT_MEM2_LO, ext_kib);
    set_u16(c, CMOS_MEM_ABOVE_16M_LO, above_16m);
    c->ram[CMOS_MEM_ABOVE_4G] = (uint8_t)above_4g;
    c->ram[CMOS_MEM_ABOVE_4G + 1] = (uint8_t)(above_4g >> 8);
    c->ram[CMOS_MEM_ABOVE_4G + 2] = (uint8_t)(above_4g >> 16);
    pthread_mutex_unlock(&c->lock);
}

void cmos_set_cpus(struct cmos *c, unsigned cpus)
{
    pthread_mutex_lock(&c->lock);
    c->ram[CMOS_NR_CPUS_MINUS_1] = (uint8_t)(cpus ? cpus - 1 : 0);
    pthread_mutex_unlock(&c->lock);
}

bool cmos_nmi_masked(struct cmos *c)
{
    pthread_mutex_lock(&c->lock);
    bool masked = c->nmi_masked;
    pthread_mutex_unlock(&c->lock);
    return masked;
}
