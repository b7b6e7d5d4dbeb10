/*
 * i8042 keyboard controller with an idle AT keyboard and an empty AUX port
 * (IBM PC AT Technical Reference, "Keyboard Controller"; PS/2 command set).
 * See i8042.h for the scope.
 */
#include "arch/x86/i8042.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

/* Status register (read at 0x64). */
#define STS_OBF 0x01
#define STS_SYS 0x04
#define STS_CMD 0x08      /* last write went to the command port */
#define STS_UNLOCKED 0x10 /* keyboard not inhibited by the key lock */
#define STS_AUX_OBF 0x20
#define STS_TIMEOUT 0x40

/* Controller command byte ("CTR"). */
#define CTR_KBD_INT 0x01
#define CTR_AUX_INT 0x02
#define CTR_SYS 0x04
#define CTR_KBD_DISABLE 0x10
#define CTR_AUX_DISABLE 0x20
#define CTR_XLATE 0x40

/* Output port (commands 0xD0/0xD1). */
#define OUT_RESET_N 0x01 /* 0 asserts the CPU reset line */
#define OUT_A20 0x02

/* Controller commands. */
#define CMD_READ_CTR 0x20
#define CMD_WRITE_CTR 0x60
#define CMD_AUX_DISABLE 0xa7
#define CMD_AUX_ENABLE 0xa8
#define CMD_AUX_TEST 0xa9
#define CMD_SELF_TEST 0xaa
#define CMD_KBD_TEST 0xab
#define CMD_KBD_DISABLE 0xad
#define CMD_KBD_ENABLE 0xae
#define CMD_READ_INPUT 0xc0
#define CMD_READ_OUTPUT 0xd0
#define CMD_WRITE_OUTPUT 0xd1
#define CMD_WRITE_KBD_OBUF 0xd2
#define CMD_WRITE_AUX_OBUF 0xd3
#define CMD_WRITE_AUX 0xd4
#define CMD_READ_TEST 0xe0
#define CMD_PULSE_FIRST 0xf0

#define SELF_TEST_OK 0x55

/* Keyboard (PS/2 device) commands and replies. */
#define KBD_SET_LEDS 0xed
#define KBD_ECHO 0xee
#define KBD_SCANCODE_SET 0xf0
#define KBD_GET_ID 0xf2
#define KBD_TYPEMATIC 0xf3
#define KBD_ENABLE 0xf4
#define KBD_RESET_DISABLE 0xf5
#define KBD_RESET_ENABLE 0xf6
#define KBD_RESEND 0xfe
#define KBD_RESET 0xff
#define KBD_ACK 0xfa
#define KBD_NAK 0xfe
#define KBD_BAT_OK 0xaa
#define KBD_ID_BYTE0 0xab
#define KBD_ID_BYTE1 0x83
#define KBD_ID_BYTE1_XLATED 0x41

#define QUEUE_SIZE 16

struct obyte {
    uint8_t val;
    bool aux;
    bool timeout;
};

struct i8042 {
    pthread_mutex_t lock;
    const struct vm_hooks *hooks;
    struct platform_events events;

    uint8_t ctr, outport, last_write_cmd;
    uint8_t pending_cmd; /* controller command waiting for its data byte */
    uint8_t kbd_pending; /* keyboard command waiting for its parameter */
    uint8_t kbd_scancode_set;
    uint8_t last_data; /* what the data port reads when nothing is queued */
    uint8_t port61;

    bool obf;
    struct obyte obuf;
    struct obyte queue[QUEUE_SIZE];
    unsigned q_head, q_count;

    bool kbd_irq, aux_irq;
};

static void update_irq(struct i8042 *k)
{
    bool kbd = k->obf && !k->obuf.aux && (k->ctr & CTR_KBD_INT);
    bool aux = k->obf && k->obuf.aux && (k->ctr & CTR_AUX_INT);
    if (kbd != k->kbd_irq) {
        k->kbd_irq = kbd;
        platform_set_irq(k->hooks, I8042_KBD_IRQ, kbd);
    }
    if (aux != k->aux_irq) {
        k->aux_irq = aux;
        platform_set_irq(k->hooks, I8042_AUX_IRQ, aux);
    }
}

static void load_obuf(struct i8042 *k)
{
    if (k->obf || !k->q_count)
        return;
    k->obuf = k->queue[k->q_head];
    k->q_head = (k->q_head + 1) % QUEUE_SIZE;
    k->q_count--;
    k->obf = true;
}

static void queue_byte(struct i8042 *k, uint8_t val, bool aux, bool timeout)
{
    if (k->q_count == QUEUE_SIZE)
        return; /* the guest stopped reading; a real controller drops too */
    k->queue[(k->q_head + k->q_count) % QUEUE_SIZE] =
        (struct obyte){.val = val, .aux = aux, .timeout = timeout};
    k->q_count++;
    load_obuf(k);
}

static void reply(struct i8042 *k, uint8_t val)
{
    queue_byte(k, val, false, false);
}

static void keyboard_reset_state(struct i8042 *k)
{
    k->kbd_pending = 0;
    k->kbd_scancode_set = 2;
}

static void keyboard_write(struct i8042 *k, uint8_t val)
{
    if (k->kbd_pending) {
        uint8_t cmd = k->kbd_pending;
        k->kbd_pending = 0;
        reply(k, KBD_ACK);
        if (cmd == KBD_SCANCODE_SET) {
            if (val == 0)
                reply(k, k->kbd_scancode_set);
            else if (val <= 3)
                k->kbd_scancode_set = val;
        }
        return;
    }
    switch (val) {
    case KBD_SET_LEDS:
    case KBD_SCANCODE_SET:
    case KBD_TYPEMATIC:
        k->kbd_pending = val;
        reply(k, KBD_ACK);
        break;
    case KBD_ECHO:
        reply(k, KBD_ECHO);
        break;
    case KBD_GET_ID:
        reply(k, KBD_ACK);
        reply(k, KBD_ID_BYTE0);
        /* With translation on, the controller turns the ID's 0x83 into 0x41. */
        reply(k, (k->ctr & CTR_XLATE) ? KBD_ID_BYTE1_XLATED : KBD_ID_BYTE1);
        break;
    case KBD_RESET:
        keyboard_reset_state(k);
        reply(k, KBD_ACK);
        reply(k, KBD_BAT_OK);
        break;
    case KBD_RESET_DISABLE:
    case KBD_RESET_ENABLE:
        keyboard_reset_state(k);
        reply(k, KBD_ACK);
        break;
    case KBD_ENABLE:
    case 0xf7: /* the 0xF7-0xFD typematic/make-break mode commands */
    case 0xf8:
    case 0xf9:
    case 0xfa:
    case 0xfb:
    case 0xfc:
    case 0xfd:
    case KBD_RESEND:
        reply(k, KBD_ACK);
        break;
    default:
        reply(k, KBD_NAK);
        break;
    }
}

/* Returns true when the write asked for a system reset. */
static bool write_outport(struct i8042 *k, uint8_t val)
{
    k->outport = val;
    return !(val & OUT_RESET_N);
}

static bool data_write(struct i8042 *k, uint8_t val)
{
    uint8_t cmd = k->pending_cmd;
    k->pending_cmd = 0;
    switch (cmd) {
    case CMD_WRITE_CTR:
        k->ctr = val;
        break;
    case CMD_WRITE_OUTPUT:
        return write_outport(k, val);
    case CMD_WRITE_KBD_OBUF:
        queue_byte(k, val, false, false);
        break;
    case CMD_WRITE_AUX_OBUF:
        queue_byte(k, val, true, false);
        break;
    case CMD_WRITE_AUX:
        /* No mouse: the controller reports a transmit timeout. */
        queue_byte(k, KBD_NAK, true, true);
        break;
    default:
        keyboard_write(k, val);
        break;
    }
    return false;
}

static bool command_write(struct i8042 *k, uint8_t cmd)
{
    k->pending_cmd = 0;
    if (cmd >= CMD_PULSE_FIRST)
        return !(cmd & OUT_RESET_N); /* bit 0 clear pulses the reset line */

    switch (cmd) {
    case CMD_READ_CTR:
        reply(k, k->ctr);
        break;
    case CMD_WRITE_CTR:
    case CMD_WRITE_OUTPUT:
    case CMD_WRITE_KBD_OBUF:
    case CMD_WRITE_AUX_OBUF:
    case CMD_WRITE_AUX:
        k->pending_cmd = cmd;
        break;
    case CMD_AUX_DISABLE:
        k->ctr |= CTR_AUX_DISABLE;
        break;
    case CMD_AUX_ENABLE:
        k->ctr &= ~CTR_AUX_DISABLE;
        break;
    case CMD_AUX_TEST:
    case CMD_KBD_TEST:
        reply(k, 0x00); /* interface lines OK */
        break;
    case CMD_SELF_TEST:
        k->ctr |= CTR_SYS;
        reply(k, SELF_TEST_OK);
        break;
    case CMD_KBD_DISABLE:
        k->ctr |= CTR_KBD_DISABLE;
        break;
    case CMD_KBD_ENABLE:
        k->ctr &= ~CTR_KBD_DISABLE;
        break;
    case CMD_READ_INPUT:
        reply(k, 0x80); /* keyboard not inhibited */
        break;
    case CMD_READ_OUTPUT:
        reply(k, k->outport);
        break;
    case CMD_READ_TEST:
        reply(k, 0x00);
        break;
    default:
        break; /* unknown commands are ignored, as the real part does */
    }
    return false;
}

static uint8_t status(const struct i8042 *k)
{
    uint8_t st = STS_UNLOCKED;
    if (k->obf) {
        st |= STS_OBF;
        if (k->obuf.aux)
            st |= STS_AUX_OBF;
        if (k->obuf.timeout)
            st |= STS_TIMEOUT;
    }
    if (k->ctr & CTR_SYS)
        st |= STS_SYS;
    if (k->last_write_cmd)
        st |= STS_CMD;
    return st;
}

static uint8_t data_read(struct i8042 *k)
{
    if (k->obf) {
        k->last_data = k->obuf.val;
        k->obf = false;
        /* Drop the line before the next byte raises it again: one edge each. */
        update_irq(k);
        load_obuf(k);
    }
    return k->last_data;
}

static void i8042_data_read(void *opaque, uint64_t offset, void *data, unsigned len)
{
    struct i8042 *k = opaque;
    uint8_t *out = data;
    (void)offset;

    pthread_mutex_lock(&k->lock);
    out[0] = data_read(k);
    update_irq(k);
    pthread_mutex_unlock(&k->lock);
    for (unsigned i = 1; i < len; i++)
        out[i] = 0xff;
}

static void i8042_data_write(void *opaque, uint64_t offset, const void *data, unsigned len)
{
    struct i8042 *k = opaque;
    (void)offset;
    (void)len;

    pthread_mutex_lock(&k->lock);
    k->last_write_cmd = 0;
    bool reset = data_write(k, *(const uint8_t *)data);
    update_irq(k);
    pthread_mutex_unlock(&k->lock);
    if (reset)
        platform_reset(&k->events);
}

static void i8042_cmd_read(void *opaque, uint64_t offset, void *data, unsigned len)
{
    struct i8042 *k = opaque;
    uint8_t *out = data;
    (void)offset;

    pthread_mutex_lock(&k->lock);
    out[0] = status(k);
    pthread_mutex_unlock(&k->lock);
    for (unsigned i = 1; i < len; i++)
        out[i] = 0xff;
}

static void i8042_cmd_write(void *opaque, uint64_t offset, const void *data, unsigned len)
{
    struct i8042 *k = opaque;
    (void)offset;
    (void)len;

    pthread_mutex_lock(&k->lock);
    k->last_write_cmd = 1;
    bool reset = command_write(k, *(const uint8_t *)data);
    update_irq(k);
    pthread_mutex_unlock(&k->lock);
    if (reset)
        platform_reset(&k->events);
}

const struct io_ops i8042_data_ops = {.read = i8042_data_read, .write = i8042_data_write};
const struct io_ops i8042_cmd_ops = {.read = i8042_cmd_read, .write = i8042_cmd_write};

/* Port B bits. */
#define P61_GATE2 0x01
#define P61_SPEAKER 0x02
#define P61_WRITABLE 0x0f
#define P61_REFRESH 0x10

static void port61_read(void *opaque, uint64_t offset, void *data, unsigned len)
{
    struct i8042 *k = opaque;
    uint8_t *out = data;
    struct timespec ts;
    (void)offset;

    /* DRAM refresh request toggles about every 15 us; firmware times delays by it. */
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    pthread_mutex_lock(&k->lock);
    out[0] = (uint8_t)(k->port61 | ((ns >> 14) & 1 ? P61_REFRESH : 0));
    pthread_mutex_unlock(&k->lock);
    for (unsigned i = 1; i < len; i++)
        out[i] = 0xff;
}

static void port61_write(void *opaque, uint64_t offset, const void *data, unsigned len)
{
    struct i8042 *k = opaque;
    (void)offset;
    (void)len;

    pthread_mutex_lock(&k->lock);
    k->port61 = *(const uint8_t *)data & P61_WRITABLE;
    pthread_mutex_unlock(&k->lock);
}

const struct io_ops i8042_port61_ops = {.read = port61_read, .write = port61_write};

struct i8042 *i8042_create(const struct vm_hooks *hooks, const struct platform_events *events)
{
    struct i8042 *k = calloc(1, sizeof(*k));
    if (!k)
        return NULL;
    pthread_mutex_init(&k->lock, NULL);
    k->hooks = hooks;
    if (events)
        k->events = *events;
    /* The state firmware leaves behind: interrupts on, POST passed, translation. */
    k->ctr = CTR_KBD_INT | CTR_AUX_INT | CTR_SYS | CTR_XLATE;
    k->outport = OUT_RESET_N | OUT_A20;
    keyboard_reset_state(k);
    return k;
}

void i8042_destroy(struct i8042 *k)
{
    if (!k)
        return;
    pthread_mutex_destroy(&k->lock);
    free(k);
}

int i8042_register(struct i8042 *k, struct io_bus *pio)
{
    int ret = io_bus_register(pio, I8042_DATA_PORT, 1, &i8042_data_ops, k);
    if (ret < 0)
        return ret;
    ret = io_bus_register(pio, I8042_CMD_PORT, 1, &i8042_cmd_ops, k);
    if (ret < 0)
        io_bus_unregister(pio, I8042_DATA_PORT);
    return ret;
}
