/*
 * The copier of one client: the only component that touches both the shared
 * receive memory and this client's memory.  Clients never map rx_dma or
 * tx_dma, so no client can read another's frames or write a shared buffer;
 * each frame is copied into a buffer the client gave us from its own quota.
 * A client that gives no buffers back loses only its own frames.
 */
#include <stdlib.h>
#include <string.h>

#include "devmux/microkit.h"
#include "devmux/net.h"
#include "devmux/queue.h"
#include "net/common/netlib.h"

struct shared {
    const uint8_t *base;
    uint32_t size, count;
};

static const char *client;
static struct shared rxp, txp;
static struct net_copy_stats *stats;
static struct dmq_consumer virt_active;
static struct dmq_producer virt_free;
static struct dmq_consumer cl_free;
static struct dmq_producer cl_active;
static struct dmq_pool cl_pool; /* which of the client's buffers it holds */
static uint8_t *cl_buffers;
static uint32_t cl_size, cl_count;
static uint32_t *stack, top; /* client buffers we hold, empty */
static struct net_sync *sync_, *copy_sync;
static bool cl_up = true, virt_up = true;
static bool cl_wait, virt_wait; /* our own restart handshake is pending */
static uint32_t acked, request;
static struct net_ratelog rl;
static struct net_resync_limit resync_limit; /* the client's handshakes */
static bool resync_put_off;                  /* one is waiting for the timer */

/* Descriptors a frame may make us look at on rx.free before it is dropped
 * for want of a client buffer: the shared buffer is held meanwhile, so a
 * client feeding garbage must not make that time unbounded. */
#define SCAN_PER_FRAME 32
static struct net_garbage garbage; /* refused descriptors on rx.free (net.md §4) */
static uint64_t accepted;          /* client buffers taken from rx.free, ever */
static struct net_storm storm;     /* the client's notifications that brought nothing */

static void on_fault(void *ctx, enum dmq_fault f, const char *queue, uint64_t a, uint64_t b)
{
    (void)ctx;
    garbage.refused++;
    stats->delivered.drops[f == DMQ_FAULT_INDEX ? NET_DROP_BAD_INDEX : NET_DROP_BAD_DESC]++;
    net_log_limited(&rl, "client %s: %s on its %s queue (%#llx, %#llx); ignored", client,
                    f == DMQ_FAULT_INDEX  ? "index jump"
                    : f == DMQ_FAULT_DESC ? "descriptor outside its buffers"
                                          : "buffer it does not hold (duplicate?)",
                    queue, (unsigned long long)a, (unsigned long long)b);
}

static int shared_init(struct shared *s, const char *region)
{
    const struct devmux_item *it = net_item(NULL, region, NET_ITEM_BUFFERS);
    if (!it)
        return -1;
    s->base = it->addr;
    s->size = it->elem;
    s->count = it->count;
    return 0;
}

static int attach_client(bool fresh)
{
    if (net_consumer(&cl_free, client, NET_REGION_CLIENT_RX, NET_ITEM_FREE, fresh) ||
        net_producer(&cl_active, client, NET_REGION_CLIENT_RX, NET_ITEM_ACTIVE, fresh))
        return -1;
    dmq_set_fault_handler(&cl_free.q, on_fault, NULL);
    dmq_set_fault_handler(&cl_active.q, on_fault, NULL);
    dmq_pool_reset(&cl_pool, true);
    top = 0;
    return 0;
}

static int attach_virt(bool fresh)
{
    return net_consumer(&virt_active, client, NET_REGION_COPY, NET_ITEM_ACTIVE, fresh) ||
                   net_producer(&virt_free, client, NET_REGION_COPY, NET_ITEM_FREE, fresh)
               ? -1
               : 0;
}

void init(void)
{
    client = devmux_config_str("client", NULL);
    if (!client)
        goto fail;
    const struct devmux_item *st = net_item(client, NET_REGION_COPY, NET_ITEM_STATS);
    const struct devmux_item *b = net_item(client, NET_REGION_CLIENT_RX, NET_ITEM_BUFFERS);
    const struct devmux_item *sy = net_item(client, NET_REGION_CLIENT_RX, NET_ITEM_SYNC);
    if (!st || !b || !sy || st->size < sizeof(*stats) || shared_init(&rxp, NET_REGION_RX_DMA) ||
        shared_init(&txp, NET_REGION_TX_DMA))
        goto fail;
    stats = st->addr;
    sync_ = sy->addr;
    cl_buffers = b->addr;
    cl_size = b->elem;
    cl_count = b->count;
    const struct devmux_item *cs = net_item(client, NET_REGION_COPY, NET_ITEM_SYNC);
    stack = calloc(cl_count, sizeof(*stack));
    if (!stack || !cs || cs->size < NET_SYNC_BYTES || sy->size < NET_SYNC_BYTES ||
        dmq_pool_init(&cl_pool, (size_t)cl_count * cl_size, cl_size, cl_count, true))
        goto fail;
    copy_sync = cs->addr;
    acked = atomic_load(&sync_->ack); /* never replay a client's old request */
    request = devmux_restarts();
    if (request == 0) {
        if (attach_client(false) || attach_virt(false))
            goto fail;
        return;
    }
    /* Restarted: the rx virtualiser owns the copy pair and the client owns
     * its buffers; both reset their pair for us.  Hands off until then. */
    cl_up = virt_up = false;
    cl_wait = virt_wait = true;
    atomic_store_explicit(&copy_sync->request, request, memory_order_release);
    atomic_store_explicit(&sync_->up_request, request, memory_order_release);
    microkit_notify(NET_COPY_CH_VIRT);
    microkit_notify(NET_COPY_CH_CLIENT);
    return;
fail:
    devmux_log("copier: cannot start");
    abort();
}

static bool wake_client, wake_virt;

/* Is the client sitting out a garbage window?  (net.md §4) */
static bool client_paused(void)
{
    bool started = false;
    uint64_t wait;
    if (!net_garbage_paused(&garbage, &started, &wait))
        return false;
    if (started) {
        stats->garbage_pauses++;
        net_log_limited(&rl,
                        "client %s: over %d refused descriptors in %llu ms; its rx.free is not "
                        "read for the rest of it",
                        client, NET_GARBAGE_BUDGET,
                        (unsigned long long)(NET_GARBAGE_WINDOW_NS / 1000000));
    }
    return true;
}

/* Bounded by descriptors taken (at most `limit`), not buffers accepted: a
 * client feeding garbage into rx.free must not keep us here. */
static void take_client_buffers(uint32_t limit)
{
    struct dmq_desc d;
    uint32_t i;
    int r;
    if (client_paused())
        return;
    for (uint32_t n = 0; n < limit && top < cl_count && (r = dmq_dequeue(&cl_free, &d)) >= 0; n++) {
        wake_client |= r == 1;
        if (dmq_pool_accept(&cl_pool, &cl_free.q, &d, &i)) {
            stack[top++] = i;
            accepted++;
        }
    }
}

static void copy_one(const struct dmq_desc *d)
{
    const struct shared *s = d->meta & NET_META_TX_POOL ? &txp : &rxp;
    uint64_t j = d->offset / s->size;
    if (d->offset % s->size || j >= s->count || d->len > s->size || d->len > cl_size) {
        on_fault(NULL, DMQ_FAULT_DESC, "copy.active", d->offset, d->len);
        return;
    }
    if (!cl_up) {
        stats->delivered.drops[NET_DROP_PEER_DOWN]++;
        return;
    }
    if (!top) {
        take_client_buffers(SCAN_PER_FRAME);
        if (!top) {
            stats->delivered.drops[NET_DROP_NO_BUFFER]++;
            return;
        }
    }
    uint32_t i = stack[--top];
    memcpy(cl_buffers + (size_t)i * cl_size, s->base + d->offset, d->len);
    struct dmq_desc out = {.offset = (uint64_t)i * cl_size, .len = d->len};
    if (!dmq_space(&cl_active)) {
        stack[top++] = i;
        stats->delivered.drops[NET_DROP_QUEUE_FULL]++;
        return;
    }
    dmq_put(&cl_active, &out);
    dmq_pool_give(&cl_pool, i);
    stats->delivered.packets++;
    stats->delivered.bytes += d->len;
}

static void run(void)
{
    bool more = true;
    /* Bounded, so the event loop gets a turn; a timer brings us back. */
    for (unsigned pass = 0; more && pass < 64; pass++) {
        struct dmq_desc d;
        if (cl_up)
            take_client_buffers(cl_free.q.mask + 1);
        int r;
        while (dmq_space(&virt_free) && (r = dmq_dequeue(&virt_active, &d)) >= 0) {
            wake_virt |= r == 1;
            copy_one(&d);
            dmq_put(&virt_free, &d); /* the reference goes back unchanged */
        }
        if (dmq_publish(&virt_free) | dmq_release(&virt_active) | wake_virt)
            microkit_notify(NET_COPY_CH_VIRT);
        if (cl_up && (dmq_publish(&cl_active) | dmq_release(&cl_free) | wake_client))
            microkit_notify(NET_COPY_CH_CLIENT);
        wake_virt = wake_client = false;
        /* Client buffers are fetched when a frame needs one, so only the
         * rx virtualiser's queue wakes us. */
        more = dmq_consumer_sleep(&virt_active);
    }
    if (more)
        devmux_timeout(1000);
    else if (resync_put_off)
        devmux_timeout(NET_RESYNC_INTERVAL_NS / 2);
}

/* Our own restart: has the survivor of this pair answered? */
static void own_handshake(microkit_channel ch)
{
    if (ch == NET_COPY_CH_VIRT && virt_wait &&
        atomic_load_explicit(&copy_sync->ack, memory_order_acquire) == request &&
        attach_virt(false) == 0) {
        virt_wait = false;
        virt_up = true;
    }
    if (ch == NET_COPY_CH_CLIENT && cl_wait &&
        atomic_load_explicit(&sync_->up_ack, memory_order_acquire) == request &&
        attach_client(false) == 0) {
        cl_wait = false;
        cl_up = true;
    }
}

static void resync(void)
{
    uint32_t req = net_sync_pending(sync_, acked);
    if (!req)
        return;
    if (net_resync_wait(&resync_limit)) {
        /* Asked again without having restarted: answered later, counted. */
        if (!resync_put_off)
            stats->resyncs_deferred++;
        resync_put_off = true;
        net_log_limited(&rl,
                        "client %s: asks for restart handshakes faster than it restarts; "
                        "answered at most %llu a second",
                        client, 1000000000ull / NET_RESYNC_INTERVAL_NS);
        return;
    }
    resync_put_off = false;
    if (attach_client(true))
        return;
    stats->resyncs++;
    if (cl_wait) {
        /* Both of us restarted.  The client's request resets the pair for
         * both, so ours is withdrawn before the client can see it: it reads
         * up_request only after our ack below. */
        cl_wait = false;
        atomic_store_explicit(&sync_->up_request, atomic_load(&sync_->up_ack),
                              memory_order_release);
    }
    cl_up = true;
    net_sync_ack(sync_, req, &acked, NET_COPY_CH_CLIENT);
}

void notified(microkit_channel ch)
{
    uint64_t before = accepted;
    uint32_t acked_before = acked;
    bool waiting = cl_wait;
    own_handshake(ch);
    if (ch == NET_COPY_CH_CLIENT || (ch == DEVMUX_TIMER_CHANNEL && resync_put_off))
        resync();
    if (virt_up)
        run();
    /* From the client, and it brought neither buffers nor a handshake. */
    if (ch == NET_COPY_CH_CLIENT && accepted == before && acked == acked_before &&
        waiting == cl_wait && !resync_put_off && net_storm_idle(&storm, ch)) {
        stats->notify_pauses++;
        net_log_limited(&rl,
                        "client %s: over %d notifications in %llu ms with nothing to do; its "
                        "channel is quiet for %llu ms",
                        client, NET_STORM_LIMIT,
                        (unsigned long long)(NET_STORM_WINDOW_NS / 1000000),
                        (unsigned long long)(NET_STORM_QUIET_NS / 1000000));
    }
}

void peer_fault(microkit_channel ch, const struct devmux_fault_info *info)
{
    (void)info;
    if (ch == NET_COPY_CH_CLIENT) {
        cl_up = false;
        resync_limit.faulted = true;
    }
}

void peer_ready(microkit_channel ch)
{
    notified(ch);
}
