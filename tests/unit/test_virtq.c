/*
 * Split virtqueue walking (src/virtio/queue.c) against fake guest RAM:
 * well-formed chains, indirect tables, the used ring, EVENT_IDX, and
 * hostile rings that must be refused without touching memory outside RAM.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "support/fake_guest_mem.h"
#include "virtio/queue.h"

#define RAM_GPA 0x100000ull
#define RAM_SIZE 0x40000ull
#define QSIZE 8
#define DESC_GPA (RAM_GPA + 0x0000)
#define AVAIL_GPA (RAM_GPA + 0x1000)
#define USED_GPA (RAM_GPA + 0x2000)
#define DATA_GPA (RAM_GPA + 0x10000)

struct fixture {
    struct guest_mem gm;
    struct virtq *q;
    struct virtq_desc *desc;
    uint16_t *avail;
    uint8_t *used;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(fake_guest_mem_init(&f->gm, RAM_GPA, RAM_SIZE), 0);
    f->q = calloc(1, sizeof(*f->q));
    assert_non_null(f->q);
    f->desc = gm_ptr(&f->gm, DESC_GPA, 16 * QSIZE);
    f->avail = gm_ptr(&f->gm, AVAIL_GPA, virtq_avail_bytes(QSIZE));
    f->used = gm_ptr(&f->gm, USED_GPA, virtq_used_bytes(QSIZE));
    assert_int_equal(virtq_enable(f->q, &f->gm, QSIZE, DESC_GPA, AVAIL_GPA, USED_GPA, false, true),
                     0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    fake_guest_mem_free(&f->gm);
    free(f->q);
    free(f);
    return 0;
}

static void set_desc(struct virtq_desc *t, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
                     uint16_t next)
{
    t[i] = (struct virtq_desc){.addr = addr, .len = len, .flags = flags, .next = next};
}

/* Publish head as the next available entry. */
static void offer(struct fixture *f, uint16_t head)
{
    uint16_t idx = f->avail[1];
    f->avail[2 + idx % QSIZE] = head;
    f->avail[1] = (uint16_t)(idx + 1);
}

static uint16_t used_idx(struct fixture *f)
{
    uint16_t v;
    memcpy(&v, f->used + 2, 2);
    return v;
}

static void expect_broken(struct fixture *f)
{
    struct virtq_elem *e = (void *)1;
    assert_int_equal(virtq_pop(f->q, &e), -EBADMSG);
    assert_null(e);
    assert_true(f->q->broken);
    /* A broken queue stays quiet until it is set up again. */
    assert_int_equal(virtq_pop(f->q, &e), 0);
    assert_false(virtq_has_avail(f->q));
}

static void test_simple_chain(void **state)
{
    struct fixture *f = *state;
    set_desc(f->desc, 0, DATA_GPA, 16, VRING_DESC_F_NEXT, 1);
    set_desc(f->desc, 1, DATA_GPA + 0x100, 100, VRING_DESC_F_NEXT, 5);
    set_desc(f->desc, 5, DATA_GPA + 0x1000, 513, VRING_DESC_F_WRITE, 0);
    offer(f, 0);
    assert_true(virtq_has_avail(f->q));

    struct virtq_elem *e;
    assert_int_equal(virtq_pop(f->q, &e), 1);
    assert_int_equal(e->head, 0);
    assert_int_equal(e->nr_out, 2);
    assert_int_equal(e->nr_in, 1);
    assert_int_equal(e->out_len, 116);
    assert_int_equal(e->in_len, 513);
    assert_ptr_equal(e->iov[0].iov_base, gm_ptr(&f->gm, DATA_GPA, 16));
    assert_ptr_equal(e->iov[2].iov_base, gm_ptr(&f->gm, DATA_GPA + 0x1000, 513));
    assert_int_equal(virtq_pop(f->q, &(struct virtq_elem *){NULL}), 0);

    virtq_push(f->q, e->head, 77);
    assert_int_equal(used_idx(f), 0); /* not visible before flush */
    assert_true(virtq_flush(f->q));
    assert_int_equal(used_idx(f), 1);
    uint32_t id, len;
    memcpy(&id, f->used + 4, 4);
    memcpy(&len, f->used + 8, 4);
    assert_int_equal(id, 0);
    assert_int_equal(len, 77);
    free(e);
}

static void test_elem_copy_across_buffers(void **state)
{
    struct fixture *f = *state;
    uint8_t *a = gm_ptr(&f->gm, DATA_GPA, 8), *b = gm_ptr(&f->gm, DATA_GPA + 0x100, 8);
    memcpy(a, "ABCDEFGH", 8);
    memcpy(b, "IJKLMNOP", 8);
    set_desc(f->desc, 0, DATA_GPA, 8, VRING_DESC_F_NEXT, 1);
    set_desc(f->desc, 1, DATA_GPA + 0x100, 8, VRING_DESC_F_NEXT, 2);
    set_desc(f->desc, 2, DATA_GPA + 0x200, 3, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 3);
    set_desc(f->desc, 3, DATA_GPA + 0x300, 5, VRING_DESC_F_WRITE, 0);
    offer(f, 0);
    struct virtq_elem *e;
    assert_int_equal(virtq_pop(f->q, &e), 1);
    char buf[16] = {0};
    assert_int_equal(virtq_elem_read(e, 5, buf, 6), 6);
    assert_memory_equal(buf, "FGHIJK", 6);
    /* Reads stop at the end of the readable part. */
    assert_int_equal(virtq_elem_read(e, 12, buf, 10), 4);
    assert_int_equal(virtq_elem_write(e, 1, "wxyzuvq", 7), 7);
    assert_memory_equal(gm_ptr(&f->gm, DATA_GPA + 0x201, 2), "wx", 2);
    assert_memory_equal(gm_ptr(&f->gm, DATA_GPA + 0x300, 5), "yzuvq", 5);
    assert_int_equal(virtq_elem_write(e, 6, "12345", 5), 2);
    free(e);
}

static void test_empty_and_zero_length(void **state)
{
    struct fixture *f = *state;
    struct virtq_elem *e;
    assert_int_equal(virtq_pop(f->q, &e), 0);
    /* A zero-length descriptor carries nothing and is skipped, even at a bogus address. */
    set_desc(f->desc, 0, 0xdead00000000ull, 0, VRING_DESC_F_NEXT, 1);
    set_desc(f->desc, 1, DATA_GPA, 4, VRING_DESC_F_WRITE, 0);
    offer(f, 0);
    assert_int_equal(virtq_pop(f->q, &e), 1);
    assert_int_equal(e->nr_out + e->nr_in, 1);
    assert_int_equal(e->in_len, 4);
    free(e);
}

static void test_full_length_chain(void **state)
{
    struct fixture *f = *state;
    for (unsigned i = 0; i < QSIZE; i++)
        set_desc(f->desc, i, DATA_GPA + 64 * i, 64, i + 1 < QSIZE ? VRING_DESC_F_NEXT : 0,
                 (uint16_t)(i + 1));
    offer(f, 0);
    struct virtq_elem *e;
    assert_int_equal(virtq_pop(f->q, &e), 1);
    assert_int_equal(e->nr_out, QSIZE);
    free(e);
}

static void test_loop(void **state)
{
    struct fixture *f = *state;
    set_desc(f->desc, 0, DATA_GPA, 4, VRING_DESC_F_NEXT, 1);
    set_desc(f->desc, 1, DATA_GPA, 4, VRING_DESC_F_NEXT, 0);
    offer(f, 0);
    expect_broken(f);
}

static void test_self_loop(void **state)
{
    struct fixture *f = *state;
    set_desc(f->desc, 3, DATA_GPA, 4, VRING_DESC_F_NEXT, 3);
    offer(f, 3);
    expect_broken(f);
}

static void test_address_outside_ram(void **state)
{
    struct fixture *f = *state;
    set_desc(f->desc, 0, RAM_GPA + RAM_SIZE, 1, 0, 0);
    offer(f, 0);
    expect_broken(f);
}

static void test_address_below_ram(void **state)
{
    struct fixture *f = *state;
    set_desc(f->desc, 0, 0x1000, 16, 0, 0);
    offer(f, 0);
    expect_broken(f);
}

static void test_oversized_length(void **state)
{
    struct fixture *f = *state;
    /* Starts in RAM, runs past its end. */
    set_desc(f->desc, 0, RAM_GPA + RAM_SIZE - 16, 17, VRING_DESC_F_WRITE, 0);
    offer(f, 0);
    expect_broken(f);
}

static void test_address_wraps(void **state)
{
    struct fixture *f = *state;
    set_desc(f->desc, 0, UINT64_MAX - 7, 0xffffffffu, 0, 0);
    offer(f, 0);
    expect_broken(f);
}

static void test_readable_after_writable(void **state)
{
    struct fixture *f = *state;
    set_desc(f->desc, 0, DATA_GPA, 4, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
    set_desc(f->desc, 1, DATA_GPA + 16, 4, 0, 0);
    offer(f, 0);
    expect_broken(f);
}

static void test_next_out_of_range(void **state)
{
    struct fixture *f = *state;
    set_desc(f->desc, 0, DATA_GPA, 4, VRING_DESC_F_NEXT, QSIZE);
    offer(f, 0);
    expect_broken(f);
}

static void test_head_out_of_range(void **state)
{
    struct fixture *f = *state;
    offer(f, QSIZE + 3);
    expect_broken(f);
}

static void test_avail_idx_jump(void **state)
{
    struct fixture *f = *state;
    set_desc(f->desc, 0, DATA_GPA, 4, 0, 0);
    f->avail[1] = QSIZE + 1; /* claims more chains than the ring holds */
    expect_broken(f);
}

static void test_avail_idx_full_ring_ok(void **state)
{
    struct fixture *f = *state;
    for (unsigned i = 0; i < QSIZE; i++) {
        set_desc(f->desc, i, DATA_GPA + 16 * i, 16, 0, 0);
        offer(f, (uint16_t)i);
    }
    for (unsigned i = 0; i < QSIZE; i++) {
        struct virtq_elem *e;
        assert_int_equal(virtq_pop(f->q, &e), 1);
        assert_int_equal(e->head, i);
        free(e);
    }
}

/* Indirect table of n descriptors at gpa. */
static struct virtq_desc *indirect_table(struct fixture *f, uint64_t gpa, unsigned n)
{
    return gm_ptr(&f->gm, gpa, 16ull * n);
}

#define IND_GPA (RAM_GPA + 0x3000)

static void test_indirect(void **state)
{
    struct fixture *f = *state;
    struct virtq_desc *t = indirect_table(f, IND_GPA, 3);
    set_desc(t, 0, DATA_GPA, 16, VRING_DESC_F_NEXT, 2);
    set_desc(t, 2, DATA_GPA + 0x100, 512, VRING_DESC_F_NEXT, 1);
    set_desc(t, 1, DATA_GPA + 0x400, 1, VRING_DESC_F_WRITE, 0);
    set_desc(f->desc, 4, IND_GPA, 48, VRING_DESC_F_INDIRECT, 0);
    offer(f, 4);
    struct virtq_elem *e;
    assert_int_equal(virtq_pop(f->q, &e), 1);
    assert_int_equal(e->head, 4);
    assert_int_equal(e->nr_out, 2);
    assert_int_equal(e->nr_in, 1);
    assert_int_equal(e->out_len, 528);
    free(e);
}

static void test_indirect_not_negotiated(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(virtq_enable(f->q, &f->gm, QSIZE, DESC_GPA, AVAIL_GPA, USED_GPA, false, false),
                     0);
    set_desc(indirect_table(f, IND_GPA, 1), 0, DATA_GPA, 16, 0, 0);
    set_desc(f->desc, 0, IND_GPA, 16, VRING_DESC_F_INDIRECT, 0);
    offer(f, 0);
    expect_broken(f);
}

static void test_indirect_nested(void **state)
{
    struct fixture *f = *state;
    struct virtq_desc *t = indirect_table(f, IND_GPA, 2);
    set_desc(t, 0, DATA_GPA, 16, VRING_DESC_F_NEXT, 1);
    set_desc(t, 1, IND_GPA, 32, VRING_DESC_F_INDIRECT, 0);
    set_desc(f->desc, 0, IND_GPA, 32, VRING_DESC_F_INDIRECT, 0);
    offer(f, 0);
    expect_broken(f);
}

static void test_indirect_with_next(void **state)
{
    struct fixture *f = *state;
    set_desc(indirect_table(f, IND_GPA, 1), 0, DATA_GPA, 16, 0, 0);
    set_desc(f->desc, 0, IND_GPA, 16, VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT, 1);
    set_desc(f->desc, 1, DATA_GPA, 16, 0, 0);
    offer(f, 0);
    expect_broken(f);
}

static void test_indirect_bad_length(void **state)
{
    struct fixture *f = *state;
    set_desc(f->desc, 0, IND_GPA, 24, VRING_DESC_F_INDIRECT, 0);
    offer(f, 0);
    expect_broken(f);
}

static void test_indirect_empty(void **state)
{
    struct fixture *f = *state;
    set_desc(f->desc, 0, IND_GPA, 0, VRING_DESC_F_INDIRECT, 0);
    offer(f, 0);
    expect_broken(f);
}

static void test_indirect_too_long(void **state)
{
    struct fixture *f = *state;
    set_desc(f->desc, 0, RAM_GPA, 16 * (VIRTQ_MAX_SEGS + 1), VRING_DESC_F_INDIRECT, 0);
    offer(f, 0);
    expect_broken(f);
}

static void test_indirect_outside_ram(void **state)
{
    struct fixture *f = *state;
    set_desc(f->desc, 0, RAM_GPA + RAM_SIZE - 16, 32, VRING_DESC_F_INDIRECT, 0);
    offer(f, 0);
    expect_broken(f);
}

static void test_indirect_loop(void **state)
{
    struct fixture *f = *state;
    struct virtq_desc *t = indirect_table(f, IND_GPA, 2);
    set_desc(t, 0, DATA_GPA, 16, VRING_DESC_F_NEXT, 1);
    set_desc(t, 1, DATA_GPA, 16, VRING_DESC_F_NEXT, 0);
    set_desc(f->desc, 0, IND_GPA, 32, VRING_DESC_F_INDIRECT, 0);
    offer(f, 0);
    expect_broken(f);
}

static void test_indirect_next_out_of_table(void **state)
{
    struct fixture *f = *state;
    struct virtq_desc *t = indirect_table(f, IND_GPA, 2);
    set_desc(t, 0, DATA_GPA, 16, VRING_DESC_F_NEXT, 2);
    set_desc(f->desc, 0, IND_GPA, 32, VRING_DESC_F_INDIRECT, 0);
    offer(f, 0);
    expect_broken(f);
}

static void test_enable_checks(void **state)
{
    struct fixture *f = *state;
    struct virtq *q = f->q;
    assert_int_equal(virtq_enable(q, &f->gm, 0, DESC_GPA, AVAIL_GPA, USED_GPA, 0, 0), -EINVAL);
    assert_int_equal(virtq_enable(q, &f->gm, 6, DESC_GPA, AVAIL_GPA, USED_GPA, 0, 0), -EINVAL);
    assert_int_equal(virtq_enable(q, &f->gm, 2048, DESC_GPA, AVAIL_GPA, USED_GPA, 0, 0), -EINVAL);
    assert_int_equal(virtq_enable(q, &f->gm, 8, DESC_GPA + 8, AVAIL_GPA, USED_GPA, 0, 0), -EINVAL);
    assert_int_equal(virtq_enable(q, &f->gm, 8, DESC_GPA, AVAIL_GPA + 1, USED_GPA, 0, 0), -EINVAL);
    assert_int_equal(virtq_enable(q, &f->gm, 8, DESC_GPA, AVAIL_GPA, USED_GPA + 2, 0, 0), -EINVAL);
    /* Used ring running past the end of RAM. */
    assert_int_equal(virtq_enable(q, &f->gm, 8, DESC_GPA, AVAIL_GPA, RAM_GPA + RAM_SIZE - 32, 0, 0),
                     -EINVAL);
    assert_int_equal(virtq_enable(q, &f->gm, 8, 0, AVAIL_GPA, USED_GPA, 0, 0), -EINVAL);
    assert_false(virtq_ready(q));
    struct virtq_elem *e;
    assert_int_equal(virtq_pop(q, &e), 0);
    assert_false(virtq_flush(q));
}

static void test_no_interrupt_flag(void **state)
{
    struct fixture *f = *state;
    set_desc(f->desc, 0, DATA_GPA, 4, 0, 0);
    offer(f, 0);
    offer(f, 0);
    struct virtq_elem *e;
    assert_int_equal(virtq_pop(f->q, &e), 1);
    virtq_push(f->q, e->head, 0);
    free(e);
    f->avail[0] = VRING_AVAIL_F_NO_INTERRUPT;
    assert_false(virtq_flush(f->q));
    assert_int_equal(used_idx(f), 1);
    assert_false(virtq_flush(f->q)); /* nothing new */
    f->avail[0] = 0;
    assert_int_equal(virtq_pop(f->q, &e), 1);
    virtq_push(f->q, e->head, 0);
    free(e);
    assert_true(virtq_flush(f->q));
}

static void test_need_event_math(void **state)
{
    (void)state;
    /* Moving old -> new crosses event when old <= event < new (mod 2^16). */
    assert_true(vring_need_event(0, 1, 0));
    assert_false(vring_need_event(1, 1, 0));
    assert_true(vring_need_event(5, 10, 3));
    assert_false(vring_need_event(10, 10, 3));
    assert_false(vring_need_event(2, 10, 3));
    assert_true(vring_need_event(3, 10, 3));
    /* Across the 16-bit wrap. */
    assert_true(vring_need_event(0xffff, 2, 0xfffe));
    assert_true(vring_need_event(1, 2, 0xfffe));
    assert_false(vring_need_event(2, 2, 0xfffe));
    assert_false(vring_need_event(0xfffd, 2, 0xfffe));
}

static void pop_push(struct fixture *f)
{
    struct virtq_elem *e;
    assert_int_equal(virtq_pop(f->q, &e), 1);
    virtq_push(f->q, e->head, 1);
    free(e);
}

static void test_event_idx_suppression(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(virtq_enable(f->q, &f->gm, QSIZE, DESC_GPA, AVAIL_GPA, USED_GPA, true, true),
                     0);
    uint16_t *used_event = &f->avail[2 + QSIZE];
    set_desc(f->desc, 0, DATA_GPA, 4, 0, 0);
    for (int i = 0; i < 6; i++)
        offer(f, 0);
    /* The first completion always interrupts. */
    *used_event = 0;
    pop_push(f);
    assert_true(virtq_flush(f->q));
    /* Driver wants an interrupt only once used idx passes 3. */
    *used_event = 3;
    pop_push(f);
    assert_false(virtq_flush(f->q)); /* idx 2 */
    pop_push(f);
    assert_false(virtq_flush(f->q)); /* idx 3 */
    pop_push(f);
    assert_true(virtq_flush(f->q)); /* idx 4 crosses used_event 3 */
    /* A batch that jumps over used_event still interrupts, once. */
    *used_event = 4;
    pop_push(f);
    pop_push(f);
    assert_true(virtq_flush(f->q));
    assert_int_equal(used_idx(f), 6);
}

static void test_event_idx_avail_event(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(virtq_enable(f->q, &f->gm, QSIZE, DESC_GPA, AVAIL_GPA, USED_GPA, true, true),
                     0);
    uint16_t avail_event;
    set_desc(f->desc, 0, DATA_GPA, 4, 0, 0);
    offer(f, 0);
    offer(f, 0);
    virtq_disable_notify(f->q);
    pop_push(f);
    pop_push(f);
    assert_false(virtq_enable_notify(f->q));
    memcpy(&avail_event, f->used + 4 + 8 * QSIZE, 2);
    assert_int_equal(avail_event, 2);
    /* A chain that arrived before re-enabling is reported. */
    offer(f, 0);
    assert_true(virtq_enable_notify(f->q));
}

static void test_no_notify_flag(void **state)
{
    struct fixture *f = *state;
    uint16_t flags;
    virtq_disable_notify(f->q);
    memcpy(&flags, f->used, 2);
    assert_int_equal(flags, VRING_USED_F_NO_NOTIFY);
    assert_false(virtq_enable_notify(f->q));
    memcpy(&flags, f->used, 2);
    assert_int_equal(flags, 0);
}

static void test_unpop(void **state)
{
    struct fixture *f = *state;
    set_desc(f->desc, 2, DATA_GPA, 4, 0, 0);
    offer(f, 2);
    struct virtq_elem *e;
    assert_int_equal(virtq_pop(f->q, &e), 1);
    free(e);
    virtq_unpop(f->q);
    assert_int_equal(virtq_pop(f->q, &e), 1);
    assert_int_equal(e->head, 2);
    free(e);
}

static void test_index_wraparound(void **state)
{
    struct fixture *f = *state;
    set_desc(f->desc, 0, DATA_GPA, 4, 0, 0);
    for (unsigned i = 0; i < 70000; i++) {
        offer(f, 0);
        pop_push(f);
        assert_true(virtq_flush(f->q));
    }
    assert_int_equal(used_idx(f), (uint16_t)70000);
    assert_int_equal(f->q->last_avail, (uint16_t)70000);
}

static void test_disable_resets(void **state)
{
    struct fixture *f = *state;
    set_desc(f->desc, 0, DATA_GPA, 4, VRING_DESC_F_NEXT, 0);
    offer(f, 0);
    expect_broken(f);
    virtq_disable(f->q);
    assert_false(f->q->broken);
    memset(f->avail, 0, virtq_avail_bytes(QSIZE));
    assert_int_equal(virtq_enable(f->q, &f->gm, QSIZE, DESC_GPA, AVAIL_GPA, USED_GPA, false, true),
                     0);
    set_desc(f->desc, 0, DATA_GPA, 4, 0, 0);
    offer(f, 0);
    struct virtq_elem *e;
    assert_int_equal(virtq_pop(f->q, &e), 1);
    free(e);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_simple_chain),
        T(test_elem_copy_across_buffers),
        T(test_empty_and_zero_length),
        T(test_full_length_chain),
        T(test_loop),
        T(test_self_loop),
        T(test_address_outside_ram),
        T(test_address_below_ram),
        T(test_oversized_length),
        T(test_address_wraps),
        T(test_readable_after_writable),
        T(test_next_out_of_range),
        T(test_head_out_of_range),
        T(test_avail_idx_jump),
        T(test_avail_idx_full_ring_ok),
        T(test_indirect),
        T(test_indirect_not_negotiated),
        T(test_indirect_nested),
        T(test_indirect_with_next),
        T(test_indirect_bad_length),
        T(test_indirect_empty),
        T(test_indirect_too_long),
        T(test_indirect_outside_ram),
        T(test_indirect_loop),
        T(test_indirect_next_out_of_table),
        T(test_enable_checks),
        T(test_no_interrupt_flag),
        T(test_need_event_math),
        T(test_event_idx_suppression),
        T(test_event_idx_avail_event),
        T(test_no_notify_flag),
        T(test_unpop),
        T(test_index_wraparound),
        T(test_disable_resets),
    };
    return cmocka_run_group_tests_name("virtq", tests, NULL, NULL);
}
