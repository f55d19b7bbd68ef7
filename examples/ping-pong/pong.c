/*
 * pong: takes each counter ping sends (ping sends odd numbers), increments
 * it in place and hands the buffer back.  Answers ping's protected call with
 * how many counters it has seen.
 */
#include <devmux/microkit.h>
#include <devmux/queue.h>
#include <inttypes.h>
#include <stdlib.h>

#include "protocol.h"

static struct dmq_consumer active;
static struct dmq_producer freeq;
static char *bufs;
static size_t bufs_size;
static uint32_t buf_size;
static uint64_t seen, last, replayed;

static void on_fault(void *ctx, enum dmq_fault f, const char *q, uint64_t a, uint64_t b)
{
    (void)ctx;
    devmux_log("peer misbehaved on queue %s: fault %d (%#" PRIx64 ", %#" PRIx64 ")", q, f, a, b);
}

static void pump(void)
{
    struct dmq_desc d;
    for (;;) {
        uint32_t n = dmq_avail(&active);
        uint32_t room = dmq_space(&freeq);
        if (n > room)
            n = room;
        for (uint32_t k = 0; k < n; k++) {
            dmq_take(&active, &d);
            /* ping is a peer like any other: check before touching memory. */
            if (d.offset % buf_size || d.offset + sizeof(uint64_t) > bufs_size) {
                dmq_fault(&active.q, DMQ_FAULT_DESC, d.offset, d.len);
                continue;
            }
            /* Idempotent, because delivery is at-least-once: a previous
             * incarnation may have answered this buffer (made it even) and
             * died before releasing it, so it comes again after a restart. */
            volatile uint64_t *v = (volatile uint64_t *)(bufs + d.offset);
            uint64_t x = *v;
            if (x & 1) {
                *v = x + 1;
                last = x;
                seen++;
            } else {
                replayed++;
            }
            dmq_put(&freeq, &d);
        }
        if (dmq_release(&active))
            microkit_notify(PP_CH_DATA);
        if (dmq_publish(&freeq))
            microkit_notify(PP_CH_DATA);
        if (dmq_avail(&active) > 0 && dmq_space(&freeq) > 0)
            continue;
        if (!dmq_consumer_sleep(&active))
            break;
    }
}

void init(void)
{
    const struct devmux_item *a = devmux_item(PP_REGION, PP_ACTIVE);
    const struct devmux_item *f = devmux_item(PP_REGION, PP_FREE);
    const struct devmux_item *b = devmux_item(PP_REGION, PP_BUFFERS);
    if (!a || !f || !b) {
        devmux_log("the system description must give region '%s' with items '%s', '%s', '%s'",
                   PP_REGION, PP_ACTIVE, PP_FREE, PP_BUFFERS);
        abort();
    }
    bufs = b->addr;
    bufs_size = b->size;
    buf_size = b->elem;
    dmq_consumer_init(&active, a->addr, a->size, a->count, PP_ACTIVE, false);
    dmq_producer_init(&freeq, f->addr, f->size, f->count, PP_FREE, false);
    dmq_set_fault_handler(&active.q, on_fault, NULL);
    dmq_set_fault_handler(&freeq.q, on_fault, NULL);
    devmux_log("pong: ready (restart %u)", devmux_restarts());
    pump();
    /* Resuming: a previous incarnation may have died between publishing and
     * notifying, so wake ping once whatever the flags say. */
    microkit_notify(PP_CH_DATA);
}

void notified(microkit_channel ch)
{
    if (ch == PP_CH_DATA)
        pump();
}

microkit_msginfo protected(microkit_channel ch, microkit_msginfo msginfo)
{
    if (ch != PP_CH_CALL || microkit_msginfo_get_label(msginfo) != PP_LABEL_STATS)
        return microkit_msginfo_new(DEVMUX_PPC_FAULT, 0);
    microkit_mr_set(0, seen);
    microkit_mr_set(1, last);
    microkit_mr_set(2, replayed);
    return microkit_msginfo_new(0, 3);
}
