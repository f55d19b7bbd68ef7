/*
 * The driver side of a virtio split virtqueue, as pure memory: where the
 * three parts go, posting descriptor chains, deciding whether the device
 * needs a doorbell, asking for or suppressing interrupts, and taking
 * completions back.  No register access happens here (the transport does
 * that), so the whole state machine runs in unit tests on crafted rings.
 *
 * The device is not trusted.  Everything it writes (the used ring, its
 * event index, its flags) is read once and checked before use; a
 * completion that cannot be right breaks the queue with a distinct error,
 * and the queue stays broken until vq_reset.  Chain bookkeeping (which
 * descriptors belong to which chain, what each offered) lives in private
 * memory, never read back from the shared descriptor table.
 */
#ifndef DEVMUX_HW_VIRTQUEUE_H
#define DEVMUX_HW_VIRTQUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hw/virtio/virtio.h"

/* Errors vq_get reports; the queue keeps returning the first one. */
enum vq_error {
    VQ_ERR_IDX = -1,   /* used idx claims more completions than chains outstanding */
    VQ_ERR_ID = -2,    /* used id outside the descriptor table */
    VQ_ERR_STALE = -3, /* used id is not the head of an outstanding chain */
    VQ_ERR_LEN = -4,   /* used len more than the chain offered */
};
const char *vq_strerror(int err);

/* Offsets of the parts from a base aligned to VIRTQ_DESC_ALIGN. */
struct vq_layout {
    size_t desc, avail, used, bytes;
};
void vq_layout(uint16_t size, struct vq_layout *l);

struct vq_seg {
    uint64_t addr; /* device address */
    uint32_t len;
    bool write; /* the device writes it */
};

struct virtq {
    uint16_t size, mask;
    bool event_idx;
    struct virtq_desc *desc;
    struct virtq_avail *avail;
    struct virtq_used *used;
    uint64_t desc_dev, avail_dev, used_dev; /* what the transport programs */

    uint16_t avail_idx;  /* next avail slot; published by vq_kick_prepare */
    uint16_t kicked_idx; /* avail idx the device was last told about */
    uint16_t used_idx;   /* next used entry to take */
    uint16_t used_seen;  /* last used->idx that passed the check */
    uint16_t outstanding;
    uint16_t free_head, nfree;
    int broken; /* 0 or the first enum vq_error */

    /* Private, size entries each: the free list and chain links, and per
     * chain head its cookie, the most the device may report written, and
     * its length in descriptors (0: not an outstanding head). */
    uint16_t *next;
    uint32_t *cookie;
    uint32_t *limit;
    uint8_t *nsegs;
};

/* mem (cpu) / dev (device address) hold vq_layout(size).bytes, aligned to
 * VIRTQ_DESC_ALIGN.  size is a power of two up to VIRTQ_MAX_SIZE.
 * Returns 0, -EINVAL or -ENOMEM. */
int vq_init(struct virtq *q, void *mem, uint64_t dev, uint16_t size, bool event_idx);
void vq_fini(struct virtq *q);

/* Hands every outstanding chain's cookie to fn, then empties the queue and
 * zeroes its rings, as after a device reset.  Only call it once the device
 * can no longer touch the rings or the buffers. */
void vq_reclaim(struct virtq *q, void (*fn)(void *ctx, uint32_t cookie), void *ctx);

/* Free descriptors. */
static inline unsigned vq_room(const struct virtq *q)
{
    return q->nfree;
}
/* The descriptor vq_add will use as the next chain's head, or -1. */
static inline int vq_next_head(const struct virtq *q)
{
    return q->nfree ? q->free_head : -1;
}

/* Posts a chain of n segments (readable ones first, then writable ones, as
 * the device expects) with a cookie vq_get hands back.  Not visible to the
 * device until vq_kick_prepare.  Returns the head, -ENOSPC or -EINVAL. */
int vq_add(struct virtq *q, const struct vq_seg *segs, unsigned n, uint32_t cookie);

/* Publishes what vq_add posted.  Returns true if the device must be told
 * (one doorbell for everything since the last call): with EVENT_IDX when
 * the device's avail_event lies in what we just published, otherwise
 * unless the device set NO_NOTIFY. */
bool vq_kick_prepare(struct virtq *q);

/* Takes one completion: 1 with *cookie and *len set, 0 if none, or a
 * negative enum vq_error. */
int vq_get(struct virtq *q, uint32_t *cookie, uint32_t *len);

/* Asks for an interrupt once `after` more completions than those taken so
 * far have arrived (0: the next one); without EVENT_IDX, for any.  Returns
 * true if that many may be there already: take them before sleeping. */
bool vq_arm(struct virtq *q, uint16_t after);
/* No interrupts wanted for this queue. */
void vq_disarm(struct virtq *q);

#endif
