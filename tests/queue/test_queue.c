/* Unit tests of the devmux queue (include/devmux/queue.h) in one process.
 * The "peer" of the side under test is either the real other side on the
 * same ring or this test writing the shared words directly, which is what a
 * hostile peer could do. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "devmux/queue.h"

#define CAP 8u

/* ---- fixture ------------------------------------------------------------ */

struct fault_log {
    unsigned calls;
    enum dmq_fault last;
    const char *queue;
    uint64_t a, b;
};

struct fx {
    void *mem;
    size_t size;
    struct dmq_producer p;
    struct dmq_consumer c;
    struct fault_log plog, clog;
};

static void record_fault(void *ctx, enum dmq_fault fault, const char *queue, uint64_t a, uint64_t b)
{
    struct fault_log *log = ctx;
    log->calls++;
    log->last = fault;
    log->queue = queue;
    log->a = a;
    log->b = b;
}

static void *ring_alloc(uint32_t cap, size_t *size)
{
    *size = DMQ_RING_BYTES(cap);
    void *mem = aligned_alloc(DMQ_CACHELINE, *size);
    assert_non_null(mem);
    /* Slots full of junk: nothing may rely on them being zero. */
    memset(mem, 0xa5, *size);
    return mem;
}

static struct dmq_ring *ring_of(struct fx *f)
{
    return f->mem;
}

static void attach(struct fx *f, bool fresh)
{
    assert_int_equal(dmq_producer_init(&f->p, f->mem, f->size, CAP, "prod", fresh), 0);
    assert_int_equal(dmq_consumer_init(&f->c, f->mem, f->size, CAP, "cons", false), 0);
    memset(&f->plog, 0, sizeof(f->plog));
    memset(&f->clog, 0, sizeof(f->clog));
    dmq_set_fault_handler(&f->p.q, record_fault, &f->plog);
    dmq_set_fault_handler(&f->c.q, record_fault, &f->clog);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    f->mem = ring_alloc(CAP, &f->size);
    attach(f, true);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    free(f->mem);
    free(f);
    return 0;
}

static struct dmq_desc mkdesc(uint32_t n)
{
    struct dmq_desc d = {
        .offset = 0x100000000ull * (n + 1) + n * 4096u,
        .len = 100 + n,
        .meta = 0xdead0000u | n,
    };
    return d;
}

static void assert_desc(const struct dmq_desc *d, uint32_t n)
{
    struct dmq_desc want = mkdesc(n);
    assert_int_equal(d->offset, want.offset);
    assert_int_equal(d->len, want.len);
    assert_int_equal(d->meta, want.meta);
}

static void assert_no_faults(struct fx *f)
{
    assert_int_equal(f->p.q.stats.bad_index, 0);
    assert_int_equal(f->c.q.stats.bad_index, 0);
    assert_int_equal(f->plog.calls, 0);
    assert_int_equal(f->clog.calls, 0);
}

/* ---- layout and attach -------------------------------------------------- */

static void test_layout(void **state)
{
    (void)state;
    assert_int_equal(offsetof(struct dmq_ring, tail), 0);
    assert_int_equal(offsetof(struct dmq_ring, head), 64);
    assert_int_equal(offsetof(struct dmq_ring, wake_consumer), 128);
    assert_int_equal(offsetof(struct dmq_ring, wake_producer), 192);
    assert_int_equal(offsetof(struct dmq_ring, slots), 256);
    assert_int_equal(DMQ_RING_HEADER_BYTES, 256);
    assert_int_equal(DMQ_RING_BYTES(8), 256 + 8 * 16);
    /* Shared between processes, so the atomics must not use hidden locks. */
    struct dmq_ring r;
    assert_true(atomic_is_lock_free(&r.tail));
    assert_true(atomic_is_lock_free(&r.head));
    _Atomic uint64_t slot_word;
    assert_true(atomic_is_lock_free(&slot_word));
}

static void test_init_rejects(void **state)
{
    (void)state;
    size_t size;
    uint8_t *mem = ring_alloc(CAP, &size);
    struct dmq_producer p;
    struct dmq_consumer c;

    assert_int_equal(dmq_producer_init(&p, NULL, size, CAP, NULL, true), -EINVAL);
    assert_int_equal(dmq_producer_init(&p, mem, size, 0, NULL, true), -EINVAL);
    assert_int_equal(dmq_producer_init(&p, mem, size, 6, NULL, true), -EINVAL);
    assert_int_equal(dmq_consumer_init(&c, mem, size, 3, NULL, true), -EINVAL);
    assert_int_equal(dmq_producer_init(&p, mem, SIZE_MAX, DMQ_MAX_CAPACITY * 2, NULL, true),
                     -EINVAL);
    assert_int_equal(dmq_producer_init(&p, mem + 8, size - 8, 2, NULL, true), -EINVAL);
    assert_int_equal(dmq_consumer_init(&c, mem, size - 1, CAP, NULL, true), -EINVAL);
    assert_int_equal(dmq_producer_init(&p, mem, size, CAP * 2, NULL, true), -EINVAL);

    assert_int_equal(dmq_producer_init(&p, mem, size, CAP, NULL, true), 0);
    assert_int_equal(dmq_capacity(&p.q), CAP);
    assert_string_equal(p.q.name, "queue");
    assert_int_equal(dmq_consumer_init(&c, mem, size, 1, "one", false), 0);
    assert_int_equal(dmq_capacity(&c.q), 1);
    free(mem);
}

/* ---- normal operation --------------------------------------------------- */

static void test_fifo(void **state)
{
    struct fx *f = *state;
    struct dmq_desc d;

    assert_int_equal(dmq_dequeue(&f->c, &d), -1);
    for (uint32_t n = 0; n < 5; n++) {
        d = mkdesc(n);
        assert_int_equal(dmq_enqueue(&f->p, &d), 0);
    }
    assert_int_equal(atomic_load(&ring_of(f)->tail), 5);
    assert_int_equal(dmq_avail(&f->c), 5);
    for (uint32_t n = 0; n < 5; n++) {
        memset(&d, 0, sizeof(d));
        assert_int_equal(dmq_dequeue(&f->c, &d), 0);
        assert_desc(&d, n);
    }
    assert_int_equal(atomic_load(&ring_of(f)->head), 5);
    assert_int_equal(dmq_dequeue(&f->c, &d), -1);
    assert_int_equal(dmq_space(&f->p), CAP);
    assert_no_faults(f);
}

/* dmq_put() several, then one dmq_publish(): nothing is visible before. */
static void test_batch_publish(void **state)
{
    struct fx *f = *state;
    struct dmq_desc d;

    for (uint32_t n = 0; n < 3; n++) {
        d = mkdesc(n);
        dmq_put(&f->p, &d);
    }
    assert_int_equal(dmq_avail(&f->c), 0);
    assert_false(dmq_publish(&f->p));
    assert_int_equal(dmq_avail(&f->c), 3);
    for (uint32_t n = 0; n < 3; n++) {
        dmq_take(&f->c, &d);
        assert_desc(&d, n);
    }
    /* Taken but not released: the producer still sees them in use. */
    assert_int_equal(dmq_space(&f->p), CAP - 3);
    assert_false(dmq_release(&f->c));
    assert_int_equal(dmq_space(&f->p), CAP);
    assert_no_faults(f);
}

static void test_full_empty(void **state)
{
    struct fx *f = *state;
    struct dmq_desc d;
    uint32_t next_in = 0, next_out = 0;

    for (int round = 0; round < 3; round++) {
        while (next_in - next_out < CAP) {
            d = mkdesc(next_in++);
            assert_int_equal(dmq_enqueue(&f->p, &d), 0);
        }
        d = mkdesc(999);
        assert_int_equal(dmq_enqueue(&f->p, &d), -1);
        assert_int_equal(dmq_space(&f->p), 0);
        assert_int_equal(dmq_avail(&f->c), CAP);

        /* Free one slot: exactly one more fits. */
        assert_int_equal(dmq_dequeue(&f->c, &d), 0);
        assert_desc(&d, next_out++);
        d = mkdesc(next_in++);
        assert_int_equal(dmq_enqueue(&f->p, &d), 0);
        assert_int_equal(dmq_enqueue(&f->p, &d), -1);

        while (next_out != next_in) {
            assert_int_equal(dmq_dequeue(&f->c, &d), 0);
            assert_desc(&d, next_out++);
        }
        assert_int_equal(dmq_dequeue(&f->c, &d), -1);
        assert_int_equal(dmq_avail(&f->c), 0);
    }
    assert_no_faults(f);
}

/* Start both free-running indices just below 2^32 and run across the wrap. */
static void test_wraparound(void **state)
{
    struct fx *f = *state;
    struct dmq_desc d;
    const uint32_t start = UINT32_MAX - 5;

    atomic_store(&ring_of(f)->tail, start);
    atomic_store(&ring_of(f)->head, start);
    attach(f, false);
    assert_int_equal(f->p.tail, start);
    assert_int_equal(f->c.head, start);
    assert_int_equal(dmq_space(&f->p), CAP);
    assert_int_equal(dmq_avail(&f->c), 0);

    uint32_t next_in = 0, next_out = 0;
    for (int step = 0; step < 40; step++) {
        /* Fill to the brim each time, then drain a varying amount. */
        while (dmq_space(&f->p) > 0) {
            assert_true(next_in - next_out < CAP);
            d = mkdesc(next_in++);
            assert_int_equal(dmq_enqueue(&f->p, &d), 0);
        }
        assert_int_equal(dmq_avail(&f->c), CAP);
        for (int k = 0; k <= step % 5; k++) {
            assert_int_equal(dmq_dequeue(&f->c, &d), 0);
            assert_desc(&d, next_out++);
        }
    }
    while (next_out != next_in) {
        assert_int_equal(dmq_dequeue(&f->c, &d), 0);
        assert_desc(&d, next_out++);
    }
    assert_int_equal(dmq_dequeue(&f->c, &d), -1);
    assert_int_equal(next_out, next_in);
    assert_true(next_in > 10);
    /* The indices really wrapped past zero. */
    assert_int_equal(atomic_load(&ring_of(f)->tail), (uint32_t)(start + next_in));
    assert_true(atomic_load(&ring_of(f)->tail) < start);
    assert_int_equal(atomic_load(&ring_of(f)->head), atomic_load(&ring_of(f)->tail));
    assert_no_faults(f);
}

/* Restart with fresh=false keeps the entries in flight. */
static void test_resume(void **state)
{
    struct fx *f = *state;
    struct dmq_desc d;

    for (uint32_t n = 0; n < 5; n++) {
        d = mkdesc(n);
        assert_int_equal(dmq_enqueue(&f->p, &d), 0);
    }
    assert_int_equal(dmq_dequeue(&f->c, &d), 0);
    assert_desc(&d, 0);

    attach(f, false);
    assert_int_equal(dmq_space(&f->p), CAP - 4);
    assert_int_equal(dmq_avail(&f->c), 4);
    for (uint32_t n = 1; n < 5; n++) {
        assert_int_equal(dmq_dequeue(&f->c, &d), 0);
        assert_desc(&d, n);
    }
    assert_no_faults(f);
}

/* A resume that finds an impossible index pair starts empty and counts it. */
static void test_resume_bad_pair(void **state)
{
    struct fx *f = *state;
    struct dmq_producer p;
    struct dmq_consumer c;

    atomic_store(&ring_of(f)->tail, 1000);
    atomic_store(&ring_of(f)->head, 1000 - CAP - 1);
    assert_int_equal(dmq_producer_init(&p, f->mem, f->size, CAP, "p", false), 0);
    assert_int_equal(p.q.stats.bad_index, 1);
    assert_int_equal(p.tail, 1000);
    assert_int_equal(p.head_seen, 1000);
    assert_int_equal(dmq_space(&p), CAP);

    atomic_store(&ring_of(f)->tail, 1000);
    atomic_store(&ring_of(f)->head, 1001); /* head ahead of tail */
    assert_int_equal(dmq_consumer_init(&c, f->mem, f->size, CAP, "c", false), 0);
    assert_int_equal(c.q.stats.bad_index, 1);
    assert_int_equal(c.head, 1001);
    assert_int_equal(c.tail_seen, 1001);
}

/* ---- notification flags ------------------------------------------------- */

static void test_notify_consumer(void **state)
{
    struct fx *f = *state;
    struct dmq_ring *r = ring_of(f);
    struct dmq_desc d = mkdesc(0);

    /* Nobody asked: no notify. */
    assert_int_equal(dmq_enqueue(&f->p, &d), 0);
    /* Items present: the consumer must not sleep and leaves no flag. */
    assert_true(dmq_consumer_sleep(&f->c));
    assert_int_equal(atomic_load(&r->wake_consumer), 0);
    assert_int_equal(dmq_dequeue(&f->c, &d), 0);

    /* Empty: the consumer asks for a notify and is told to sleep. */
    assert_false(dmq_consumer_sleep(&f->c));
    assert_int_equal(atomic_load(&r->wake_consumer), 1);
    d = mkdesc(1);
    assert_int_equal(dmq_enqueue(&f->p, &d), 1);
    assert_int_equal(atomic_load(&r->wake_consumer), 0);
    /* One notify per request. */
    d = mkdesc(2);
    assert_int_equal(dmq_enqueue(&f->p, &d), 0);

    /* The same through dmq_publish() directly. */
    assert_int_equal(dmq_dequeue(&f->c, &d), 0);
    assert_int_equal(dmq_dequeue(&f->c, &d), 0);
    assert_false(dmq_consumer_sleep(&f->c));
    d = mkdesc(3);
    dmq_put(&f->p, &d);
    assert_true(dmq_publish(&f->p));
    assert_int_equal(atomic_load(&r->wake_consumer), 0);
    assert_false(dmq_publish(&f->p));
    assert_int_equal(dmq_dequeue(&f->c, &d), 0);
    assert_desc(&d, 3);
    assert_no_faults(f);
}

static void test_notify_producer(void **state)
{
    struct fx *f = *state;
    struct dmq_ring *r = ring_of(f);
    struct dmq_desc d;

    for (uint32_t n = 0; n < CAP; n++) {
        d = mkdesc(n);
        assert_int_equal(dmq_enqueue(&f->p, &d), 0);
    }
    /* Full: the producer asks for a notify and is told to wait. */
    assert_false(dmq_producer_sleep(&f->p));
    assert_int_equal(atomic_load(&r->wake_producer), 1);
    assert_int_equal(dmq_dequeue(&f->c, &d), 1);
    assert_int_equal(atomic_load(&r->wake_producer), 0);
    assert_int_equal(dmq_dequeue(&f->c, &d), 0);

    /* Space present: no sleep, no flag left behind. */
    assert_true(dmq_producer_sleep(&f->p));
    assert_int_equal(atomic_load(&r->wake_producer), 0);
    assert_false(dmq_release(&f->c));
    assert_no_faults(f);
}

/* ---- hostile consumer: garbage head ------------------------------------- */

static void test_hostile_head(void **state)
{
    struct fx *f = *state;
    struct dmq_ring *r = ring_of(f);
    struct dmq_desc d;

    for (uint32_t n = 0; n < 4; n++) {
        d = mkdesc(n);
        assert_int_equal(dmq_enqueue(&f->p, &d), 0);
    }
    /* Head ahead of our tail. */
    atomic_store(&r->head, 5);
    assert_int_equal(dmq_space(&f->p), CAP - 4);
    assert_int_equal(f->p.q.stats.bad_index, 1);
    assert_int_equal(f->plog.calls, 1);
    assert_int_equal(f->plog.last, DMQ_FAULT_INDEX);
    assert_string_equal(f->plog.queue, "prod");
    assert_int_equal(f->plog.a, 5);
    assert_int_equal(f->plog.b, 0);
    assert_int_equal(f->p.head_seen, 0);

    /* Far ahead, as if claiming to have consumed 2^31 entries. */
    atomic_store(&r->head, 0x80000000u);
    assert_int_equal(dmq_space(&f->p), CAP - 4);
    assert_int_equal(f->p.q.stats.bad_index, 2);

    /* A valid head is taken. */
    atomic_store(&r->head, 3);
    assert_int_equal(dmq_space(&f->p), CAP - 1);
    assert_int_equal(f->p.head_seen, 3);

    /* Backwards, to just before the last good head and to far behind. */
    atomic_store(&r->head, 2);
    assert_int_equal(dmq_space(&f->p), CAP - 1);
    atomic_store(&r->head, (uint32_t)-100);
    assert_int_equal(dmq_space(&f->p), CAP - 1);
    assert_int_equal(f->p.q.stats.bad_index, 4);
    assert_int_equal(f->plog.calls, 4);
    assert_int_equal(f->plog.a, (uint32_t)-100);
    assert_int_equal(f->plog.b, 3);
    assert_int_equal(f->p.head_seen, 3);

    /* The producer keeps working from its own view: it may fill the 7 free
     * slots and no more, whatever the head says. */
    atomic_store(&r->head, 1000);
    uint32_t sent = 0;
    while (sent < 4 * CAP) {
        d = mkdesc(100 + sent);
        if (dmq_enqueue(&f->p, &d) < 0)
            break;
        sent++;
    }
    assert_int_equal(sent, CAP - 1);
    assert_int_equal(f->p.tail, 3 + CAP);
    assert_int_equal(atomic_load(&r->tail), 3 + CAP);
    assert_true(f->p.q.stats.bad_index > 4);
    assert_int_equal(f->c.q.stats.bad_index, 0);

    /* The slot of entry 3 was not overwritten. */
    uint64_t w0 = atomic_load(&r->slots[(3 % CAP) * 2]);
    assert_int_equal(w0, mkdesc(3).offset);

    /* Once the consumer behaves again, all is normal. */
    atomic_store(&r->head, 3 + CAP);
    assert_int_equal(dmq_space(&f->p), CAP);
    d = mkdesc(7);
    assert_int_equal(dmq_enqueue(&f->p, &d), 0);
}

/* A full ring with a lying head must not let the producer overwrite. */
static void test_hostile_head_when_full(void **state)
{
    struct fx *f = *state;
    struct dmq_ring *r = ring_of(f);
    struct dmq_desc d;

    for (uint32_t n = 0; n < CAP; n++) {
        d = mkdesc(n);
        assert_int_equal(dmq_enqueue(&f->p, &d), 0);
    }
    atomic_store(&r->head, CAP + 1);
    d = mkdesc(50);
    assert_int_equal(dmq_enqueue(&f->p, &d), -1);
    assert_false(dmq_producer_sleep(&f->p));
    assert_int_equal(f->p.q.stats.bad_index, 2);
    assert_int_equal(f->plog.calls, 2);
    for (uint32_t n = 0; n < CAP; n++)
        assert_int_equal(atomic_load(&r->slots[n * 2]), mkdesc(n).offset);
}

/* ---- hostile producer: garbage tail ------------------------------------- */

static void test_hostile_tail(void **state)
{
    struct fx *f = *state;
    struct dmq_ring *r = ring_of(f);
    struct dmq_desc d;

    /* Claims more than capacity entries (slots hold 0xa5 junk). */
    atomic_store(&r->tail, CAP + 1);
    assert_int_equal(dmq_avail(&f->c), 0);
    assert_int_equal(dmq_dequeue(&f->c, &d), -1);
    assert_int_equal(f->c.q.stats.bad_index, 2);
    assert_int_equal(f->clog.calls, 2);
    assert_int_equal(f->clog.last, DMQ_FAULT_INDEX);
    assert_string_equal(f->clog.queue, "cons");
    assert_int_equal(f->clog.a, CAP + 1);
    assert_int_equal(f->clog.b, 0);
    /* ...or behind our head. */
    atomic_store(&r->tail, UINT32_MAX);
    assert_false(dmq_consumer_sleep(&f->c));
    assert_int_equal(f->c.q.stats.bad_index, 3);
    assert_int_equal(f->c.head, 0);
    assert_int_equal(atomic_load(&r->head), 0);

    /* Back to the real producer: three genuine entries (the first one
     * answers the consumer's request for a notify). */
    atomic_store(&r->tail, 0);
    for (uint32_t n = 0; n < 3; n++) {
        d = mkdesc(n);
        assert_int_equal(dmq_enqueue(&f->p, &d), n == 0 ? 1 : 0);
    }
    assert_int_equal(dmq_dequeue(&f->c, &d), 0);
    assert_desc(&d, 0);
    assert_int_equal(f->c.tail_seen, 3);

    /* The tail moves backwards: rejected, the last good tail stays. */
    atomic_store(&r->tail, 2);
    assert_int_equal(dmq_avail(&f->c), 2);
    assert_int_equal(f->c.q.stats.bad_index, 4);
    assert_int_equal(f->clog.a, 2);
    assert_int_equal(f->clog.b, 3);
    /* The tail jumps beyond capacity: rejected as well. */
    atomic_store(&r->tail, 1 + CAP + 1);
    assert_int_equal(dmq_avail(&f->c), 2);
    assert_int_equal(f->c.q.stats.bad_index, 5);

    /* The consumer keeps working: exactly the two genuine entries. */
    assert_int_equal(dmq_dequeue(&f->c, &d), 0);
    assert_desc(&d, 1);
    assert_int_equal(dmq_dequeue(&f->c, &d), 0);
    assert_desc(&d, 2);
    /* (A tail of 10 would now be plausible, 7 ahead of head 3: the
     * producer gets it back to the truth.) */
    atomic_store(&r->tail, 3);
    assert_int_equal(dmq_dequeue(&f->c, &d), -1);
    assert_int_equal(f->c.head, 3);
    assert_int_equal(f->c.q.stats.bad_index, 5);
    assert_int_equal(f->p.q.stats.bad_index, 0);
}

/* A fault handler is optional: faults are still counted without one. */
static void test_no_fault_handler(void **state)
{
    struct fx *f = *state;
    dmq_set_fault_handler(&f->c.q, NULL, NULL);
    atomic_store(&ring_of(f)->tail, 0x12345678);
    assert_int_equal(dmq_avail(&f->c), 0);
    assert_int_equal(f->c.q.stats.bad_index, 1);
    assert_int_equal(f->clog.calls, 0);
}

/* ---- buffer pool -------------------------------------------------------- */

#define BUF  2048u
#define NBUF 16u

static void test_pool_init(void **state)
{
    (void)state;
    struct dmq_pool pool;
    assert_int_equal(dmq_pool_init(&pool, BUF * NBUF, 0, NBUF, false), -EINVAL);
    assert_int_equal(dmq_pool_init(&pool, BUF * NBUF, BUF, 0, false), -EINVAL);
    assert_int_equal(dmq_pool_init(&pool, BUF * NBUF - 1, BUF, NBUF, false), -EINVAL);
    assert_int_equal(dmq_pool_init(&pool, (size_t)1 << 20, 1u << 31, 4, false), -EINVAL);
    assert_int_equal(dmq_pool_init(&pool, BUF * NBUF, BUF, NBUF, true), 0);
    assert_int_equal(pool.count, NBUF);
    for (uint32_t i = 0; i < NBUF; i++)
        assert_int_equal(pool.held_by_peer[i], 1);
    /* A peer restart forgets who held what, either way. */
    pool.held_by_peer[1] = 0;
    dmq_pool_reset(&pool, true);
    for (uint32_t i = 0; i < NBUF; i++)
        assert_int_equal(pool.held_by_peer[i], 1);
    dmq_pool_reset(&pool, false);
    for (uint32_t i = 0; i < NBUF; i++)
        assert_int_equal(pool.held_by_peer[i], 0);
    dmq_pool_fini(&pool);
    assert_null(pool.held_by_peer);
}

static void test_pool_bad_desc(void **state)
{
    struct fx *f = *state;
    struct dmq_pool pool;
    /* The region is larger than the buffers: the tail end is not a buffer. */
    assert_int_equal(dmq_pool_init(&pool, BUF * NBUF + 3 * BUF, BUF, NBUF, true), 0);
    uint32_t idx = 12345;
    const struct dmq_desc bad[] = {
        {.offset = BUF + 8, .len = 10},             /* misaligned */
        {.offset = 1, .len = 0},                    /* misaligned */
        {.offset = (uint64_t)BUF * NBUF, .len = 1}, /* just past the buffers */
        {.offset = (uint64_t)BUF * (NBUF + 2), .len = 1},
        {.offset = 1ull << 63, .len = 1},          /* far beyond */
        {.offset = (uint64_t)BUF << 32, .len = 1}, /* index 2^32 would truncate to 0 */
        {.offset = 0, .len = BUF + 1},             /* longer than a buffer */
        {.offset = BUF * 3, .len = UINT32_MAX},    /* much longer */
    };
    const size_t nbad = sizeof(bad) / sizeof(bad[0]);
    for (size_t k = 0; k < nbad; k++) {
        assert_false(dmq_pool_accept(&pool, &f->c.q, &bad[k], &idx));
        assert_int_equal(f->c.q.stats.bad_desc, k + 1);
        assert_int_equal(f->clog.calls, k + 1);
        assert_int_equal(f->clog.last, DMQ_FAULT_DESC);
        assert_int_equal(f->clog.a, bad[k].offset);
        assert_int_equal(f->clog.b, bad[k].len);
        assert_int_equal(idx, 12345);
    }
    /* Nothing changed: every buffer is still the peer's and accepted once. */
    assert_int_equal(f->c.q.stats.bad_owner, 0);
    for (uint32_t i = 0; i < NBUF; i++) {
        struct dmq_desc d = {.offset = (uint64_t)i * BUF, .len = (i == 0) ? BUF : i};
        assert_true(dmq_pool_accept(&pool, &f->c.q, &d, &idx));
        assert_int_equal(idx, i);
    }
    assert_int_equal(f->c.q.stats.bad_desc, nbad);
    dmq_pool_fini(&pool);
}

static void test_pool_ownership(void **state)
{
    struct fx *f = *state;
    struct dmq_pool pool;
    uint32_t idx = 777;
    assert_int_equal(dmq_pool_init(&pool, BUF * NBUF, BUF, NBUF, false), 0);

    /* Never given out. */
    struct dmq_desc d = {.offset = 5 * BUF, .len = 64};
    assert_false(dmq_pool_accept(&pool, &f->p.q, &d, &idx));
    assert_int_equal(f->p.q.stats.bad_owner, 1);
    assert_int_equal(f->plog.last, DMQ_FAULT_OWNER);
    assert_int_equal(f->plog.a, 5 * BUF);
    assert_int_equal(f->plog.b, 5);
    assert_int_equal(idx, 777);

    /* Given, then handed back: fine.  Handed back again: a duplicate. */
    assert_true(dmq_pool_give(&pool, 5));
    assert_false(dmq_pool_give(&pool, 5)); /* already the peer's */
    assert_true(dmq_pool_accept(&pool, &f->p.q, &d, &idx));
    assert_int_equal(idx, 5);
    idx = 777;
    assert_false(dmq_pool_accept(&pool, &f->p.q, &d, &idx));
    assert_int_equal(f->p.q.stats.bad_owner, 2);
    assert_int_equal(idx, 777);

    /* Out of range indices cannot be given. */
    assert_false(dmq_pool_give(&pool, NBUF));
    assert_false(dmq_pool_give(&pool, UINT32_MAX));

    /* Give several, get them back in another order, each exactly once. */
    for (uint32_t i = 0; i < NBUF; i++)
        assert_true(dmq_pool_give(&pool, i));
    for (uint32_t k = 0; k < NBUF; k++) {
        uint32_t i = (k * 7) % NBUF;
        d.offset = (uint64_t)i * BUF;
        assert_true(dmq_pool_accept(&pool, &f->p.q, &d, &idx));
        assert_int_equal(idx, i);
        assert_false(dmq_pool_accept(&pool, &f->p.q, &d, &idx));
    }
    assert_int_equal(f->p.q.stats.bad_owner, 2 + NBUF);
    assert_int_equal(f->p.q.stats.bad_desc, 0);
    assert_int_equal(f->plog.calls, 2 + NBUF);
    dmq_pool_fini(&pool);
}

/* The pool sitting on a real ring pair, descriptors validated as they come. */
static void test_pool_over_ring(void **state)
{
    struct fx *f = *state;
    struct dmq_pool pool;
    struct dmq_desc d;
    uint32_t idx;
    assert_int_equal(dmq_pool_init(&pool, BUF * NBUF, BUF, NBUF, true), 0);

    const struct dmq_desc sent[] = {
        {.offset = 0, .len = 10},         {.offset = 3 * BUF, .len = 20},
        {.offset = 3 * BUF, .len = 20}, /* duplicate */
        {.offset = 7, .len = 1},        /* misaligned */
        {.offset = 15 * BUF, .len = BUF},
    };
    for (size_t k = 0; k < 5; k++)
        assert_int_equal(dmq_enqueue(&f->p, &sent[k]), 0);
    bool ok[5];
    for (size_t k = 0; k < 5; k++) {
        assert_int_equal(dmq_dequeue(&f->c, &d), 0);
        ok[k] = dmq_pool_accept(&pool, &f->c.q, &d, &idx);
    }
    assert_true(ok[0]);
    assert_true(ok[1]);
    assert_false(ok[2]);
    assert_false(ok[3]);
    assert_true(ok[4]);
    assert_int_equal(idx, 15);
    assert_int_equal(f->c.q.stats.bad_owner, 1);
    assert_int_equal(f->c.q.stats.bad_desc, 1);
    dmq_pool_fini(&pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout),
        cmocka_unit_test(test_init_rejects),
        cmocka_unit_test_setup_teardown(test_fifo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_publish, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wraparound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resume, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resume_bad_pair, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notify_consumer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notify_producer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_head, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_head_when_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_fault_handler, setup, teardown),
        cmocka_unit_test(test_pool_init),
        cmocka_unit_test_setup_teardown(test_pool_bad_desc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pool_ownership, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pool_over_ring, setup, teardown),
    };
    return cmocka_run_group_tests_name("queue", tests, NULL, NULL);
}
