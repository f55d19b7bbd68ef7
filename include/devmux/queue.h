/*
 * devmux queue: a single-producer single-consumer ring of fixed-size buffer
 * descriptors in memory shared with an untrusted peer.
 *
 * The protocol (layout, ownership, signalling) is specified in
 * docs/protocols/queue.md and model-checked in spin/queue.pml.  Queues come
 * in pairs: a "free" ring carries empty buffers one way and an "active" ring
 * carries filled buffers the other way.
 *
 * Trust rules this code follows, because the peer may be hostile:
 *  - Each side keeps its own index privately and only ever *writes* it to
 *    shared memory; it never reads its own index back.
 *  - The capacity is private too (it comes from the trusted system
 *    description), never from shared memory.
 *  - Every index read from the peer is checked: 0 <= tail - head <= capacity
 *    in free-running 32-bit arithmetic.  A bad value is counted, reported and
 *    ignored; the honest side keeps its last good view.
 *  - Each descriptor is loaded exactly once (one atomic load per word) into
 *    private memory before anything looks at it, so the peer cannot change a
 *    descriptor between the check and the use.
 */
#ifndef DEVMUX_QUEUE_H
#define DEVMUX_QUEUE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DMQ_CACHELINE 64

/* Shared rings are used by two processes: their 64-bit atomics must be real
 * lock-free instructions, not libatomic's process-local locks. */
_Static_assert(__atomic_always_lock_free(sizeof(uint64_t), 0),
               "devmux queues need lock-free 64-bit atomics");

/* A buffer descriptor as it travels through a ring. */
struct dmq_desc {
    uint64_t offset; /* byte offset of the buffer in its data region */
    uint32_t len;    /* bytes of payload */
    uint32_t meta;   /* free for the device class protocol */
};

/* Shared layout of one ring.  Each control word has a cache line of its own
 * so the producer's and the consumer's writes never share a line. */
struct dmq_ring {
    _Atomic uint32_t tail; /* written by the producer only */
    uint8_t pad0[DMQ_CACHELINE - sizeof(uint32_t)];
    _Atomic uint32_t head; /* written by the consumer only */
    uint8_t pad1[DMQ_CACHELINE - sizeof(uint32_t)];
    _Atomic uint32_t wake_consumer; /* 1: the consumer sleeps and wants a notify */
    uint8_t pad2[DMQ_CACHELINE - sizeof(uint32_t)];
    _Atomic uint32_t wake_producer; /* 1: the producer waits for space */
    uint8_t pad3[DMQ_CACHELINE - sizeof(uint32_t)];
    _Atomic uint64_t slots[]; /* capacity entries of two words each */
};

#define DMQ_RING_HEADER_BYTES ((size_t)4 * DMQ_CACHELINE)
#define DMQ_RING_BYTES(cap)   (DMQ_RING_HEADER_BYTES + (size_t)(cap)*2 * sizeof(uint64_t))
#define DMQ_MAX_CAPACITY      (1u << 24)

/* Misbehaviour counters, in private memory. */
struct dmq_stats {
    uint64_t bad_index; /* peer index outside [0, capacity] of ours */
    uint64_t bad_desc;  /* descriptor failed the buffer-pool check */
    uint64_t bad_owner; /* buffer handed to us that the peer did not hold */
};

enum dmq_fault {
    DMQ_FAULT_INDEX,
    DMQ_FAULT_DESC,
    DMQ_FAULT_OWNER,
};

/* Called (from the honest side's own thread) each time the peer misbehaves.
 * May be NULL.  devmux components route it to a rate-limited log. */
typedef void (*dmq_fault_fn)(void *ctx, enum dmq_fault fault, const char *queue, uint64_t a,
                             uint64_t b);

struct dmq_common {
    struct dmq_ring *ring;
    uint32_t mask; /* capacity - 1; private */
    const char *name;
    struct dmq_stats stats;
    dmq_fault_fn on_fault;
    void *fault_ctx;
};

struct dmq_producer {
    struct dmq_common q;
    uint32_t tail;      /* private copy; the truth */
    uint32_t head_seen; /* last valid head read from the peer */
    uint32_t published; /* tail as last published */
};

struct dmq_consumer {
    struct dmq_common q;
    uint32_t head;      /* private copy; the truth */
    uint32_t tail_seen; /* last valid tail read from the peer */
    uint32_t released;  /* head as last released */
};

/* Attach to a ring at mem (mem_size bytes available).  capacity must be a
 * power of two <= DMQ_MAX_CAPACITY.  With fresh=true the ring is zeroed
 * (only the side that owns initialisation may do this, before the peer
 * starts); otherwise the side resumes from its own index in shared memory,
 * which is what a restarted component does.  Returns 0 or -EINVAL.
 *
 * After resuming, notify the peer once, unconditionally: the previous
 * incarnation may have died between publishing and notifying, leaving the
 * peer asleep with its wake flag already consumed.  A spurious wake-up is
 * harmless; a missing one is forever. */
int dmq_producer_init(struct dmq_producer *p, void *mem, size_t mem_size, uint32_t capacity,
                      const char *name, bool fresh);
int dmq_consumer_init(struct dmq_consumer *c, void *mem, size_t mem_size, uint32_t capacity,
                      const char *name, bool fresh);
void dmq_set_fault_handler(struct dmq_common *q, dmq_fault_fn fn, void *ctx);

/* Record and report a misbehaving peer. */
void dmq_fault(struct dmq_common *q, enum dmq_fault fault, uint64_t a, uint64_t b);

static inline uint32_t dmq_capacity(const struct dmq_common *q)
{
    return q->mask + 1;
}

/* ---- producer ---------------------------------------------------------- */

/* Free slots, re-reading the consumer's head.  A head beyond our tail or
 * behind the last valid head is rejected, and the last valid head is kept. */
static inline uint32_t dmq_space(struct dmq_producer *p)
{
    uint32_t head = atomic_load_explicit(&p->q.ring->head, memory_order_acquire);
    /* Valid heads lie between the last one seen and our tail; this also
     * bounds the fill level by the capacity, since head_seen was valid. */
    if ((uint32_t)(head - p->head_seen) <= (uint32_t)(p->tail - p->head_seen))
        p->head_seen = head;
    else
        dmq_fault(&p->q, DMQ_FAULT_INDEX, head, p->head_seen);
    return (p->q.mask + 1) - (p->tail - p->head_seen);
}

/* Write one descriptor without publishing it.  The caller checked space. */
static inline void dmq_put(struct dmq_producer *p, const struct dmq_desc *d)
{
    uint32_t i = (p->tail & p->q.mask) * 2;
    atomic_store_explicit(&p->q.ring->slots[i], d->offset, memory_order_relaxed);
    atomic_store_explicit(&p->q.ring->slots[i + 1], (uint64_t)d->len | ((uint64_t)d->meta << 32),
                          memory_order_relaxed);
    p->tail++;
}

/* Publish everything put so far.  Returns true when the consumer asked to be
 * woken: the caller must then notify it.  The seq_cst fence pairs with the
 * one in dmq_consumer_sleep(): either we see wake_consumer == 1, or the
 * consumer's re-check sees our new tail.  That is the no-lost-wake-up
 * argument that spin/queue.pml checks. */
static inline bool dmq_publish(struct dmq_producer *p)
{
    /* Nothing new: the consumer has nothing to wake up for, and its wake
     * request stays pending for the next real publish. */
    if (p->tail == p->published)
        return false;
    p->published = p->tail;
    atomic_store_explicit(&p->q.ring->tail, p->tail, memory_order_release);
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&p->q.ring->wake_consumer, memory_order_relaxed)) {
        atomic_store_explicit(&p->q.ring->wake_consumer, 0, memory_order_relaxed);
        return true;
    }
    return false;
}

/* Put and publish one descriptor.  Returns 1 if enqueued and the consumer
 * must be notified, 0 if enqueued and no notify is needed, -1 if full. */
static inline int dmq_enqueue(struct dmq_producer *p, const struct dmq_desc *d)
{
    if (p->tail - p->head_seen > p->q.mask && dmq_space(p) == 0)
        return -1;
    dmq_put(p, d);
    return dmq_publish(p) ? 1 : 0;
}

/* The ring is full and the producer is about to wait.  Asks the consumer for
 * a notification when it frees a slot, then re-checks.  Returns true if space
 * appeared meanwhile (do not sleep). */
static inline bool dmq_producer_sleep(struct dmq_producer *p)
{
    atomic_store_explicit(&p->q.ring->wake_producer, 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_seq_cst);
    if (dmq_space(p) > 0) {
        atomic_store_explicit(&p->q.ring->wake_producer, 0, memory_order_relaxed);
        return true;
    }
    return false;
}

/* ---- consumer ---------------------------------------------------------- */

/* Entries ready to take, re-reading the producer's tail.  A tail that claims
 * more than capacity entries, or that moved backwards, is rejected and the
 * previous valid tail is kept. */
static inline uint32_t dmq_avail(struct dmq_consumer *c)
{
    uint32_t tail = atomic_load_explicit(&c->q.ring->tail, memory_order_acquire);
    uint32_t n = tail - c->head;
    if (n > c->q.mask + 1) {
        dmq_fault(&c->q, DMQ_FAULT_INDEX, tail, c->head);
    } else if ((uint32_t)(tail - c->head) < (uint32_t)(c->tail_seen - c->head)) {
        dmq_fault(&c->q, DMQ_FAULT_INDEX, tail, c->tail_seen);
    } else {
        c->tail_seen = tail;
    }
    return c->tail_seen - c->head;
}

/* Copy the next descriptor out (each word loaded exactly once) without
 * releasing its slot.  The caller checked dmq_avail(). */
static inline void dmq_take(struct dmq_consumer *c, struct dmq_desc *out)
{
    uint32_t i = (c->head & c->q.mask) * 2;
    uint64_t w0 = atomic_load_explicit(&c->q.ring->slots[i], memory_order_relaxed);
    uint64_t w1 = atomic_load_explicit(&c->q.ring->slots[i + 1], memory_order_relaxed);
    out->offset = w0;
    out->len = (uint32_t)w1;
    out->meta = (uint32_t)(w1 >> 32);
    c->head++;
}

/* Hand the slots taken so far back to the producer.  Returns true when the
 * producer waits for space: the caller must then notify it. */
static inline bool dmq_release(struct dmq_consumer *c)
{
    if (c->head == c->released)
        return false;
    c->released = c->head;
    atomic_store_explicit(&c->q.ring->head, c->head, memory_order_release);
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&c->q.ring->wake_producer, memory_order_relaxed)) {
        atomic_store_explicit(&c->q.ring->wake_producer, 0, memory_order_relaxed);
        return true;
    }
    return false;
}

/* Take and release one descriptor.  Returns 1 if one was dequeued and the
 * producer must be notified, 0 if dequeued without notify, -1 if empty. */
static inline int dmq_dequeue(struct dmq_consumer *c, struct dmq_desc *out)
{
    if (c->tail_seen == c->head && dmq_avail(c) == 0)
        return -1;
    dmq_take(c, out);
    return dmq_release(c) ? 1 : 0;
}

/* The ring is empty and the consumer is about to sleep.  Asks the producer to
 * notify on its next publish, then re-checks.  Returns true if entries
 * arrived meanwhile (do not sleep). */
static inline bool dmq_consumer_sleep(struct dmq_consumer *c)
{
    atomic_store_explicit(&c->q.ring->wake_consumer, 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_seq_cst);
    if (dmq_avail(c) > 0) {
        atomic_store_explicit(&c->q.ring->wake_consumer, 0, memory_order_relaxed);
        return true;
    }
    return false;
}

/* ---- buffer pool: which descriptors are legal, and who holds each ------ */

/* A data region cut into count buffers of buf_size bytes.  The owner map is
 * private to the side that checks (typically the trusted shared driver). */
struct dmq_pool {
    size_t region_size;
    uint32_t buf_size;
    uint32_t count;
    uint8_t *held_by_peer; /* count entries: 1 while the peer holds buffer i */
};

int dmq_pool_init(struct dmq_pool *pool, size_t region_size, uint32_t buf_size, uint32_t count,
                  bool peer_holds_all);
void dmq_pool_fini(struct dmq_pool *pool);
/* Forget who held what (the peer restarted): every buffer is the peer's,
 * or every buffer is ours. */
void dmq_pool_reset(struct dmq_pool *pool, bool peer_holds_all);

/* Check a descriptor the peer handed us: aligned to a buffer, inside the
 * region, len within the buffer, and (ownership) the peer actually held it.
 * On success the buffer is now ours and *index is its number.  On failure
 * the fault is counted and reported on q, and nothing changes. */
bool dmq_pool_accept(struct dmq_pool *pool, struct dmq_common *q, const struct dmq_desc *d,
                     uint32_t *index);

/* We give buffer index to the peer (it must currently be ours). */
bool dmq_pool_give(struct dmq_pool *pool, uint32_t index);

#endif
