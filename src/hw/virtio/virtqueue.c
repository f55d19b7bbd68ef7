#include "hw/virtio/virtqueue.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

const char *vq_strerror(int err)
{
    switch (err) {
    case VQ_ERR_IDX:
        return "used index moved past the buffers outstanding";
    case VQ_ERR_ID:
        return "used id outside the descriptor table";
    case VQ_ERR_STALE:
        return "used id is not an outstanding buffer";
    case VQ_ERR_LEN:
        return "used length over the buffer posted";
    default:
        return "no error";
    }
}

static size_t align_up(size_t v, size_t a)
{
    return (v + a - 1) & ~(a - 1);
}

void vq_layout(uint16_t size, struct vq_layout *l)
{
    l->desc = 0;
    l->avail = align_up(VIRTQ_DESC_BYTES(size), VIRTQ_AVAIL_ALIGN);
    l->used = align_up(l->avail + VIRTQ_AVAIL_BYTES(size), VIRTQ_USED_ALIGN);
    l->bytes = l->used + VIRTQ_USED_BYTES(size);
}

/* The event words sit right after each ring's entries. */
static uint16_t *used_event(struct virtq *q)
{
    return &q->avail->ring[q->size];
}

static uint16_t *avail_event(struct virtq *q)
{
    return (uint16_t *)&q->used->ring[q->size];
}

static void rebuild(struct virtq *q)
{
    struct vq_layout l;
    vq_layout(q->size, &l);
    memset(q->desc, 0, l.bytes);
    for (uint32_t i = 0; i < q->size; i++) {
        q->next[i] = (uint16_t)(i + 1);
        q->nsegs[i] = 0;
    }
    q->free_head = 0;
    q->nfree = q->size;
    q->avail_idx = q->kicked_idx = q->used_idx = q->used_seen = 0;
    q->outstanding = 0;
    q->broken = 0;
    /* Interrupts stay off until the driver waits for something. */
    vq_disarm(q);
}

int vq_init(struct virtq *q, void *mem, uint64_t dev, uint16_t size, bool event_idx)
{
    memset(q, 0, sizeof(*q));
    if (size == 0 || (size & (size - 1)) || size > VIRTQ_MAX_SIZE ||
        ((uintptr_t)mem & (VIRTQ_DESC_ALIGN - 1)) || (dev & (VIRTQ_DESC_ALIGN - 1)))
        return -EINVAL;
    struct vq_layout l;
    vq_layout(size, &l);
    q->size = size;
    q->mask = (uint16_t)(size - 1);
    q->event_idx = event_idx;
    q->desc = mem;
    q->avail = (struct virtq_avail *)((char *)mem + l.avail);
    q->used = (struct virtq_used *)((char *)mem + l.used);
    q->desc_dev = dev;
    q->avail_dev = dev + l.avail;
    q->used_dev = dev + l.used;
    q->next = calloc(size, sizeof(*q->next));
    q->cookie = calloc(size, sizeof(*q->cookie));
    q->limit = calloc(size, sizeof(*q->limit));
    q->nsegs = calloc(size, sizeof(*q->nsegs));
    if (!q->next || !q->cookie || !q->limit || !q->nsegs) {
        vq_fini(q);
        return -ENOMEM;
    }
    rebuild(q);
    return 0;
}

void vq_fini(struct virtq *q)
{
    free(q->next);
    free(q->cookie);
    free(q->limit);
    free(q->nsegs);
    q->next = NULL;
    q->cookie = q->limit = NULL;
    q->nsegs = NULL;
}

void vq_reclaim(struct virtq *q, void (*fn)(void *ctx, uint32_t cookie), void *ctx)
{
    for (uint32_t i = 0; i < q->size; i++)
        if (q->nsegs[i] && fn)
            fn(ctx, q->cookie[i]);
    rebuild(q);
}

int vq_add(struct virtq *q, const struct vq_seg *segs, unsigned n, uint32_t cookie)
{
    if (n == 0 || n > UINT8_MAX)
        return -EINVAL;
    if (n > q->nfree)
        return -ENOSPC;
    uint16_t head = q->free_head, id = head;
    uint64_t wlen = 0, total = 0;
    for (unsigned k = 0; k < n; k++) {
        struct virtq_desc *d = &q->desc[id];
        uint16_t flags = segs[k].write ? VIRTQ_DESC_F_WRITE : 0;
        if (k + 1 < n)
            flags |= VIRTQ_DESC_F_NEXT;
        d->addr = segs[k].addr;
        d->len = segs[k].len;
        d->flags = flags;
        d->next = k + 1 < n ? q->next[id] : 0;
        total += segs[k].len;
        if (segs[k].write)
            wlen += segs[k].len;
        if (k + 1 < n)
            id = q->next[id];
    }
    q->free_head = q->next[id];
    q->nfree = (uint16_t)(q->nfree - n);
    /* A chain the device only reads reports what it consumed, at most the
     * whole chain (devices differ: 0 or the total); one it writes reports
     * what it wrote, never more than the writable part. */
    uint64_t limit = wlen ? wlen : total;
    q->limit[head] = limit > UINT32_MAX ? UINT32_MAX : (uint32_t)limit;
    q->cookie[head] = cookie;
    q->nsegs[head] = (uint8_t)n;
    q->avail->ring[q->avail_idx & q->mask] = head;
    q->avail_idx++;
    q->outstanding++;
    return head;
}

bool vq_kick_prepare(struct virtq *q)
{
    uint16_t old = q->kicked_idx, now = q->avail_idx;
    if (old == now)
        return false;
    /* Descriptors and ring entries become visible before the index. */
    __atomic_store_n(&q->avail->idx, now, __ATOMIC_RELEASE);
    q->kicked_idx = now;
    /* The device may be deciding to go to sleep right now: order our
     * index before our read of its suppression word, as it orders its
     * word before re-reading our index. */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (q->event_idx)
        return virtq_need_event(__atomic_load_n(avail_event(q), __ATOMIC_RELAXED), now, old);
    return !(__atomic_load_n(&q->used->flags, __ATOMIC_RELAXED) & VIRTQ_USED_F_NO_NOTIFY);
}

static int fail(struct virtq *q, int err)
{
    q->broken = err;
    return err;
}

int vq_get(struct virtq *q, uint32_t *cookie, uint32_t *len)
{
    if (q->broken)
        return q->broken;
    if (q->used_idx == q->used_seen) {
        uint16_t idx = __atomic_load_n(&q->used->idx, __ATOMIC_ACQUIRE);
        if ((uint16_t)(idx - q->used_idx) > q->outstanding)
            return fail(q, VQ_ERR_IDX);
        q->used_seen = idx;
        if (idx == q->used_idx)
            return 0;
    }
    struct virtq_used_elem *e = &q->used->ring[q->used_idx & q->mask];
    uint32_t id = __atomic_load_n(&e->id, __ATOMIC_RELAXED);
    uint32_t n = __atomic_load_n(&e->len, __ATOMIC_RELAXED);
    if (id >= q->size)
        return fail(q, VQ_ERR_ID);
    if (q->nsegs[id] == 0)
        return fail(q, VQ_ERR_STALE);
    if (n > q->limit[id])
        return fail(q, VQ_ERR_LEN);
    /* Free the chain by our own links, not the shared table's. */
    uint16_t last = (uint16_t)id;
    for (unsigned k = 1; k < q->nsegs[id]; k++)
        last = q->next[last];
    q->next[last] = q->free_head;
    q->free_head = (uint16_t)id;
    q->nfree = (uint16_t)(q->nfree + q->nsegs[id]);
    q->nsegs[id] = 0;
    q->outstanding--;
    q->used_idx++;
    *cookie = q->cookie[id];
    *len = n;
    return 1;
}

bool vq_arm(struct virtq *q, uint16_t after)
{
    if (q->event_idx) {
        __atomic_store_n(used_event(q), (uint16_t)(q->used_idx + after), __ATOMIC_RELAXED);
    } else {
        __atomic_store_n(&q->avail->flags, 0, __ATOMIC_RELAXED);
        after = 0;
    }
    /* Pairs with the device's write of used->idx before it reads our
     * request: either it sees the request or we see its progress. */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    uint16_t idx = __atomic_load_n(&q->used->idx, __ATOMIC_ACQUIRE);
    return (uint16_t)(idx - q->used_idx) > after;
}

void vq_disarm(struct virtq *q)
{
    if (q->event_idx) {
        /* An entry already behind us: the device crosses it again only
         * after 65536 completions, long after we re-arm. */
        __atomic_store_n(used_event(q), (uint16_t)(q->used_idx - 1), __ATOMIC_RELAXED);
    } else {
        __atomic_store_n(&q->avail->flags, VIRTQ_AVAIL_F_NO_INTERRUPT, __ATOMIC_RELAXED);
    }
}
