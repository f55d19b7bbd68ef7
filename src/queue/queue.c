/* Non-inline parts of the queue library: attach, fault reporting and the
 * buffer-pool ownership checks.  See include/devmux/queue.h. */
#include "devmux/queue.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int common_init(struct dmq_common *q, void *mem, size_t mem_size, uint32_t capacity,
                       const char *name)
{
    memset(q, 0, sizeof(*q));
    if (!mem || capacity == 0 || capacity > DMQ_MAX_CAPACITY || (capacity & (capacity - 1)))
        return -EINVAL;
    if ((uintptr_t)mem % DMQ_CACHELINE || mem_size < DMQ_RING_BYTES(capacity))
        return -EINVAL;
    q->ring = mem;
    q->mask = capacity - 1;
    q->name = name ? name : "queue";
    return 0;
}

int dmq_producer_init(struct dmq_producer *p, void *mem, size_t mem_size, uint32_t capacity,
                      const char *name, bool fresh)
{
    int err = common_init(&p->q, mem, mem_size, capacity, name);
    if (err)
        return err;
    if (fresh)
        memset(mem, 0, DMQ_RING_HEADER_BYTES);
    /* Resuming after a restart: our own tail in shared memory is the only
     * record of how far we got.  The peer could have scribbled on it, so the
     * pair is checked once; a bad pair is reported and the ring restarts
     * empty from our tail, which can only hurt this one connection. */
    p->tail = atomic_load_explicit(&p->q.ring->tail, memory_order_acquire);
    uint32_t head = atomic_load_explicit(&p->q.ring->head, memory_order_acquire);
    if (p->tail - head > capacity) {
        dmq_fault(&p->q, DMQ_FAULT_INDEX, head, p->tail);
        head = p->tail;
    }
    p->head_seen = head;
    p->published = p->tail;
    return 0;
}

int dmq_consumer_init(struct dmq_consumer *c, void *mem, size_t mem_size, uint32_t capacity,
                      const char *name, bool fresh)
{
    int err = common_init(&c->q, mem, mem_size, capacity, name);
    if (err)
        return err;
    if (fresh)
        memset(mem, 0, DMQ_RING_HEADER_BYTES);
    c->head = atomic_load_explicit(&c->q.ring->head, memory_order_acquire);
    uint32_t tail = atomic_load_explicit(&c->q.ring->tail, memory_order_acquire);
    if (tail - c->head > capacity) {
        dmq_fault(&c->q, DMQ_FAULT_INDEX, tail, c->head);
        tail = c->head;
    }
    c->tail_seen = tail;
    c->released = c->head;
    return 0;
}

void dmq_set_fault_handler(struct dmq_common *q, dmq_fault_fn fn, void *ctx)
{
    q->on_fault = fn;
    q->fault_ctx = ctx;
    /* A bad index pair found while resuming happened before anyone could
     * listen; report it now rather than leave it in a counter. */
    if (fn && q->stats.bad_index)
        fn(ctx, DMQ_FAULT_INDEX, q->name, q->stats.bad_index, 0);
}

void dmq_fault(struct dmq_common *q, enum dmq_fault fault, uint64_t a, uint64_t b)
{
    switch (fault) {
    case DMQ_FAULT_INDEX:
        q->stats.bad_index++;
        break;
    case DMQ_FAULT_DESC:
        q->stats.bad_desc++;
        break;
    case DMQ_FAULT_OWNER:
        q->stats.bad_owner++;
        break;
    }
    if (q->on_fault)
        q->on_fault(q->fault_ctx, fault, q->name, a, b);
}

int dmq_pool_init(struct dmq_pool *pool, size_t region_size, uint32_t buf_size, uint32_t count,
                  bool peer_holds_all)
{
    memset(pool, 0, sizeof(*pool));
    if (buf_size == 0 || count == 0 || (uint64_t)buf_size * count > region_size)
        return -EINVAL;
    pool->held_by_peer = calloc(count, 1);
    if (!pool->held_by_peer)
        return -ENOMEM;
    if (peer_holds_all)
        memset(pool->held_by_peer, 1, count);
    pool->region_size = region_size;
    pool->buf_size = buf_size;
    pool->count = count;
    return 0;
}

void dmq_pool_reset(struct dmq_pool *pool, bool peer_holds_all)
{
    memset(pool->held_by_peer, peer_holds_all ? 1 : 0, pool->count);
}

void dmq_pool_fini(struct dmq_pool *pool)
{
    free(pool->held_by_peer);
    pool->held_by_peer = NULL;
}

bool dmq_pool_accept(struct dmq_pool *pool, struct dmq_common *q, const struct dmq_desc *d,
                     uint32_t *index)
{
    if (d->offset % pool->buf_size || d->offset / pool->buf_size >= pool->count ||
        d->len > pool->buf_size) {
        dmq_fault(q, DMQ_FAULT_DESC, d->offset, d->len);
        return false;
    }
    uint32_t i = (uint32_t)(d->offset / pool->buf_size);
    if (!pool->held_by_peer[i]) {
        /* A duplicate, or a buffer we never gave out. */
        dmq_fault(q, DMQ_FAULT_OWNER, d->offset, i);
        return false;
    }
    pool->held_by_peer[i] = 0;
    *index = i;
    return true;
}

bool dmq_pool_give(struct dmq_pool *pool, uint32_t index)
{
    if (index >= pool->count || pool->held_by_peer[index])
        return false;
    pool->held_by_peer[index] = 1;
    return true;
}
