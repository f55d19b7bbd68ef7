/*
 * The tx virtualiser: every client's transmissions go through here, one
 * bounded batch per client in turn, and here the sharing policy is
 * enforced.
 *
 * Each frame is copied out of the client's buffer into tx_dma before it is
 * looked at, and the client's buffer goes straight back.  The checks
 * (source MAC, destination, length) run on our copy, so a client that keeps
 * writing a buffer after handing it over changes nothing anyone else sees.
 * sDDF passes client buffers to the driver by reference and admits exactly
 * that gap; the copy closes it and also bounds how long a client can hold
 * shared memory.
 */
#include <stdlib.h>
#include <string.h>

#include "devmux/microkit.h"
#include "devmux/net.h"
#include "devmux/queue.h"
#include "net/common/netlib.h"
#include "net/virt/bind.h"

#define BATCH         32         /* frames per client per turn */
#define SHAPE_TICK_NS 1000000ull /* the longest a rate-limited client waits for its timer */

struct client {
    bool up;
    uint32_t acked; /* restart request we last acknowledged */
    struct dmq_consumer active;
    struct dmq_producer free;
    struct dmq_pool pool; /* its transmit buffers: which ones it holds */
    uint8_t *buffers;
    uint32_t buf_size, count;
    struct net_sync *sync;
    bool has_pending; /* a frame taken but held back by the rate limit */
    bool throttled;   /* the pending frame was already counted as throttled */
    struct dmq_desc pending;
    uint32_t pending_idx;
    struct net_bucket bucket; /* its rate limit */
    uint32_t inflight;        /* tx_dma buffers holding its frames */
    bool notify_free;
    struct net_ratelog log;
    struct net_binding bind;        /* the addresses it may use */
    struct net_resync_limit resync; /* its restart handshakes */
    bool resync_waiting;            /* a request put off; a timer brings us back */
    struct net_garbage garbage;     /* its refused descriptors (net.md §4) */
    uint64_t taken;                 /* descriptors taken from it, ever */
    bool asked;                     /* we sleep on its tx.active: a notification is due */
    struct net_storm storm;         /* its notifications that brought nothing */
};

static struct net_policy pol;
static struct client clients[NET_MAX_CLIENTS];
static struct net_tx_stats *stats;

static uint8_t *dma;
static uint32_t dma_size, dma_count;
static uint32_t *free_stack, free_top;
static uint8_t *refs;  /* per tx_dma buffer: holders (driver, rx virt) */
static uint8_t *owner; /* per tx_dma buffer: client index it carries */
static uint32_t inflight_cap;

static struct dmq_producer drv_active, local_active;
static struct dmq_consumer drv_free, local_free;
static struct dmq_pool drv_pool, local_pool;
static struct net_sync *drv_sync;
static bool drv_up = true;
static uint32_t drv_acked;
static struct net_ratelog drv_log;
static unsigned rr;                     /* next client to serve first */
static const struct net_leases *leases; /* DHCP-learned addresses (rx virt writes) */
static uint64_t resync_at;              /* when a put-off handshake may be answered, 0: none */

static void resync_wake(uint64_t wait)
{
    uint64_t at = devmux_now_ns() + wait;
    if (!resync_at || at < resync_at)
        resync_at = at;
}

static void on_client_fault(void *ctx, enum dmq_fault f, const char *queue, uint64_t a, uint64_t b)
{
    struct client *c = ctx;
    int i = (int)(c - clients);
    c->garbage.refused++;
    stats->client[i].drops[f == DMQ_FAULT_INDEX ? NET_DROP_BAD_INDEX : NET_DROP_BAD_DESC]++;
    net_log_limited(&c->log, "client %s: %s on its %s queue (%#llx, %#llx); dropped", pol.c[i].name,
                    f == DMQ_FAULT_INDEX  ? "index jump"
                    : f == DMQ_FAULT_DESC ? "descriptor outside its buffers"
                                          : "buffer it does not hold",
                    queue, (unsigned long long)a, (unsigned long long)b);
}

static void on_core_fault(void *ctx, enum dmq_fault f, const char *queue, uint64_t a, uint64_t b)
{
    (void)ctx;
    stats->wire.drops[f == DMQ_FAULT_INDEX ? NET_DROP_BAD_INDEX : NET_DROP_BAD_DESC]++;
    net_log_limited(&drv_log, "driver or rx virtualiser: fault %d on queue %s (%#llx, %#llx)",
                    (int)f, queue, (unsigned long long)a, (unsigned long long)b);
}

static void unref(uint32_t j)
{
    if (j >= dma_count || refs[j] == 0)
        return;
    if (--refs[j] == 0) {
        if (owner[j] < pol.n && clients[owner[j]].inflight)
            clients[owner[j]].inflight--;
        free_stack[free_top++] = j;
    }
}

static int attach_client(unsigned i, bool fresh)
{
    struct client *c = &clients[i];
    const char *n = pol.c[i].name;
    if (net_consumer(&c->active, n, NET_REGION_CLIENT_TX, NET_ITEM_ACTIVE, fresh) ||
        net_producer(&c->free, n, NET_REGION_CLIENT_TX, NET_ITEM_FREE, fresh))
        return -1;
    dmq_set_fault_handler(&c->active.q, on_client_fault, c);
    dmq_set_fault_handler(&c->free.q, on_client_fault, c);
    dmq_pool_reset(&c->pool, true);
    c->has_pending = false;
    return 0;
}

static int attach_driver(bool fresh)
{
    if (net_producer(&drv_active, NULL, NET_REGION_DRV_TX, NET_ITEM_ACTIVE, fresh) ||
        net_consumer(&drv_free, NULL, NET_REGION_DRV_TX, NET_ITEM_FREE, fresh))
        return -1;
    dmq_set_fault_handler(&drv_active.q, on_core_fault, NULL);
    dmq_set_fault_handler(&drv_free.q, on_core_fault, NULL);
    return 0;
}

void init(void)
{
    if (net_policy_load(&pol))
        goto fail;
    const struct devmux_item *it = net_item(NULL, NET_REGION_TX_DMA, NET_ITEM_BUFFERS);
    const struct devmux_item *st = net_item(NULL, NET_REGION_TX_STATS, NET_ITEM_STATS);
    const struct devmux_item *sy = net_item(NULL, NET_REGION_DRV_TX, NET_ITEM_SYNC);
    const struct devmux_item *ls = net_item(NULL, NET_REGION_BIND, NET_ITEM_LEASES);
    if (!it || !st || !sy || !ls || st->size < sizeof(*stats) || ls->size < sizeof(*leases) ||
        it->elem < NET_MAX_FRAME)
        goto fail;
    leases = ls->addr;
    dma = it->addr;
    dma_size = it->elem;
    dma_count = it->count;
    stats = st->addr;
    drv_sync = sy->addr;
    drv_acked = atomic_load(&drv_sync->ack);
    free_stack = calloc(dma_count, sizeof(*free_stack));
    refs = calloc(dma_count, 1);
    owner = calloc(dma_count, 1);
    if (!free_stack || !refs || !owner ||
        dmq_pool_init(&drv_pool, (size_t)dma_count * dma_size, dma_size, dma_count, false) ||
        dmq_pool_init(&local_pool, (size_t)dma_count * dma_size, dma_size, dma_count, false))
        goto fail;
    for (uint32_t j = dma_count; j-- > 0;)
        free_stack[free_top++] = j;
    inflight_cap = pol.n > 1 ? dma_count / 2 : dma_count;
    if (attach_driver(false) ||
        net_producer(&local_active, NULL, NET_REGION_LOCAL, NET_ITEM_ACTIVE, false) ||
        net_consumer(&local_free, NULL, NET_REGION_LOCAL, NET_ITEM_FREE, false))
        goto fail;
    dmq_set_fault_handler(&local_active.q, on_core_fault, NULL);
    dmq_set_fault_handler(&local_free.q, on_core_fault, NULL);
    for (unsigned i = 0; i < pol.n; i++) {
        struct client *c = &clients[i];
        const struct devmux_item *b =
            net_item(pol.c[i].name, NET_REGION_CLIENT_TX, NET_ITEM_BUFFERS);
        const struct devmux_item *s = net_item(pol.c[i].name, NET_REGION_CLIENT_TX, NET_ITEM_SYNC);
        if (!b || !s || b->elem < NET_MAX_FRAME || s->size < NET_SYNC_BYTES)
            goto fail;
        c->buffers = b->addr;
        c->buf_size = b->elem;
        c->count = b->count;
        c->sync = s->addr;
        c->acked = atomic_load(&c->sync->ack); /* never replay an old request */
        c->up = true;
        if (dmq_pool_init(&c->pool, (size_t)c->count * c->buf_size, c->buf_size, c->count, true))
            goto fail;
        char err[128];
        if (net_bind_parse(&c->bind, pol.c[i].mac, pol.c[i].ipv4, pol.c[i].ipv6, pol.c[i].dhcp, err,
                           sizeof(err))) {
            devmux_log("client %s: bound addresses: %s", pol.c[i].name, err);
            goto fail;
        }
        net_bucket_init(&c->bucket, pol.c[i].rate_bps, pol.c[i].burst);
        if (attach_client(i, false))
            goto fail;
    }
    devmux_log("tx virtualiser: %u clients, %u shared transmit buffers", pol.n, dma_count);
    return;
fail:
    devmux_log("tx virtualiser: cannot start");
    abort();
}

/* Can client i send len bytes now?  If not, when (ns from now)? */
static bool rate_allows(unsigned i, uint32_t len, uint64_t *wait_ns)
{
    struct client *c = &clients[i];
    if (net_bucket_take(&c->bucket, len, wait_ns))
        return true;
    /* Waking for every frame of a limited client (every 112 us at 100
     * Mbit/s) would cost the core more than the client's frames: wait for
     * several at once, up to 1 ms, but never longer than it takes to fill
     * half the burst, so the bucket never overflows meanwhile and the rate
     * is kept exactly. */
    uint64_t half = net_bucket_half_fill_ns(&c->bucket);
    uint64_t coarse = half < SHAPE_TICK_NS ? half : SHAPE_TICK_NS;
    if (*wait_ns < coarse)
        *wait_ns = coarse;
    return false;
}

static bool wants_local(unsigned from, unsigned to, const uint8_t *dst)
{
    if (!net_policy_allows(&pol, (int)from, (int)to) || !clients[to].up)
        return false;
    if (net_mac_is_broadcast(dst))
        return pol.c[to].broadcast;
    return pol.c[to].multicast;
}

/* Our copy of a frame from client i, in tx_dma buffer j: decide where it goes. */
static void route(unsigned i, uint32_t j, uint32_t len)
{
    const uint8_t *f = dma + (size_t)j * dma_size;
    struct net_counters *cc = &stats->client[i];
    if (memcmp(f + 6, pol.c[i].mac, NET_MAC_LEN)) {
        cc->drops[NET_DROP_SPOOF]++;
        net_log_limited(&clients[i].log,
                        "client %s: frame with source %02x:%02x:%02x:%02x:%02x:%02x, not its own "
                        "MAC; dropped",
                        pol.c[i].name, f[6], f[7], f[8], f[9], f[10], f[11]);
        free_stack[free_top++] = j;
        return;
    }
    uint64_t lease =
        pol.c[i].dhcp ? atomic_load_explicit(&leases->lease[i], memory_order_acquire) : 0;
    if (lease && NET_LEASE_END(lease) <= devmux_now_ns() / 1000000000u)
        lease = 0; /* expired: the server may give the address to someone else */
    unsigned why = net_bind_check(&clients[i].bind, NET_LEASE_ADDR(lease), f, len);
    if (why != NET_DROP_REASONS) {
        cc->drops[why]++;
        net_log_limited(&clients[i].log,
                        "client %s: %s frame (ethertype %02x%02x) with an address not bound to "
                        "it; dropped",
                        pol.c[i].name, net_drop_name(why), f[12], f[13]);
        free_stack[free_top++] = j;
        return;
    }
    bool to_wire = true, local = false;
    if (net_mac_is_multicast(f)) {
        for (unsigned k = 0; k < pol.n && !local; k++)
            local = wants_local(i, k, f);
    } else {
        int k = net_policy_find(&pol, f);
        if (k >= 0) {
            to_wire = false;
            if (!net_policy_allows(&pol, (int)i, k)) {
                cc->drops[NET_DROP_PEER_DENIED]++;
                free_stack[free_top++] = j;
                return;
            }
            local = true;
        }
    }
    struct dmq_desc d = {.offset = (uint64_t)j * dma_size, .len = len};
    owner[j] = (uint8_t)i;
    if (to_wire) {
        if (drv_up && dmq_space(&drv_active)) {
            dmq_put(&drv_active, &d);
            dmq_pool_give(&drv_pool, j);
            refs[j]++;
            stats->wire.packets++;
            stats->wire.bytes += len;
        } else {
            stats->wire.drops[drv_up ? NET_DROP_QUEUE_FULL : NET_DROP_PEER_DOWN]++;
        }
    }
    if (local) {
        d.meta = i + 1;
        if (dmq_space(&local_active)) {
            dmq_put(&local_active, &d);
            dmq_pool_give(&local_pool, j);
            refs[j]++;
            stats->local[i]++;
        } else {
            cc->drops[NET_DROP_QUEUE_FULL]++;
        }
    }
    cc->packets++;
    cc->bytes += len;
    if (refs[j])
        clients[i].inflight++;
    else
        free_stack[free_top++] = j;
}

static bool wake_drv, wake_local; /* a dequeue found the producer waiting */

static void reclaim(void)
{
    struct dmq_desc d;
    uint32_t j;
    int r;
    for (uint32_t n = 0; drv_up && n <= drv_free.q.mask && (r = dmq_dequeue(&drv_free, &d)) >= 0;
         n++) {
        wake_drv |= r == 1;
        if (dmq_pool_accept(&drv_pool, &drv_free.q, &d, &j))
            unref(j);
    }
    for (uint32_t n = 0; n <= local_free.q.mask && (r = dmq_dequeue(&local_free, &d)) >= 0; n++) {
        wake_local |= r == 1;
        if (dmq_pool_accept(&local_pool, &local_free.q, &d, &j))
            unref(j);
    }
}

/* The client's buffer idx is free again: hand it back on tx.free.  An honest
 * client always has room there (the ring holds all its buffers); one that
 * does not drain tx.free simply does not get the buffer back. */
static void give_back(struct client *c, uint32_t idx)
{
    if (!dmq_space(&c->free))
        return;
    struct dmq_desc back = {.offset = (uint64_t)idx * c->buf_size, .len = 0};
    dmq_put(&c->free, &back);
    dmq_pool_give(&c->pool, idx);
    c->notify_free = true;
}

/* Is client i sitting out a garbage window?  Its queue waits, ours don't:
 * a timer (wake_ns) brings us back when the window ends. */
static bool garbage_paused(unsigned i, uint64_t *wake_ns)
{
    struct client *c = &clients[i];
    bool started = false;
    uint64_t wait;
    if (!net_garbage_paused(&c->garbage, &started, &wait))
        return false;
    if (started) {
        stats->garbage_pauses[i]++;
        net_log_limited(&c->log,
                        "client %s: over %d refused descriptors in %llu ms; not served for the "
                        "rest of it",
                        pol.c[i].name, NET_GARBAGE_BUDGET,
                        (unsigned long long)(NET_GARBAGE_WINDOW_NS / 1000000));
    }
    if (!*wake_ns || wait < *wake_ns)
        *wake_ns = wait;
    return true;
}

/* Take up to BATCH descriptors from client i.  Returns true if it has more. */
static bool serve_client(unsigned i, uint64_t *wake_ns)
{
    struct client *c = &clients[i];
    unsigned n = 0;
    while (n < BATCH) {
        if (garbage_paused(i, wake_ns))
            return false;
        if (!c->has_pending) {
            if (c->active.tail_seen == c->active.head && dmq_avail(&c->active) == 0)
                return false;
            struct dmq_desc d;
            dmq_take(&c->active, &d);
            uint32_t idx;
            uint32_t len = d.len;
            if (d.len > c->buf_size)
                d.len = c->buf_size; /* take the buffer back; the length is judged below */
            /* Every descriptor taken counts against the batch, good or
             * bad: garbage must not buy a client a longer turn. */
            n++;
            c->taken++;
            if (!dmq_pool_accept(&c->pool, &c->active.q, &d, &idx))
                continue;
            if (len < NET_MIN_FRAME || len > NET_MAX_FRAME) {
                c->garbage.refused++;
                stats->client[i].drops[NET_DROP_BAD_LEN]++;
                net_log_limited(&c->log, "client %s: frame of %u bytes; expected %d..%d; dropped",
                                pol.c[i].name, len, NET_MIN_FRAME, NET_MAX_FRAME);
                give_back(c, idx);
                continue;
            }
            c->pending = d;
            c->pending.len = len;
            c->pending_idx = idx;
            c->has_pending = true;
        }
        if (!free_top || c->inflight >= inflight_cap)
            return true; /* shared buffers are busy: wait for the driver */
        uint64_t wait;
        if (!rate_allows(i, c->pending.len, &wait)) {
            if (!c->throttled)
                stats->throttled[i]++;
            c->throttled = true;
            if (!*wake_ns || wait < *wake_ns)
                *wake_ns = wait;
            return false;
        }
        uint32_t j = free_stack[--free_top];
        memcpy(dma + (size_t)j * dma_size, c->buffers + c->pending.offset, c->pending.len);
        give_back(c, c->pending_idx);
        c->has_pending = false;
        c->throttled = false;
        route(i, j, c->pending.len);
    }
    return true;
}

/* Passes per event: after this many, the event loop gets a turn (control
 * messages, handshakes) and a timer brings us straight back. */
#define PASSES 64

static void run(void)
{
    bool more = true;
    uint64_t wake_ns = 0;
    for (unsigned pass = 0; more && pass < PASSES; pass++) {
        more = false;
        wake_ns = 0;
        reclaim();
        for (unsigned k = 0; k < pol.n; k++) {
            unsigned i = (rr + k) % pol.n;
            if (clients[i].up && serve_client(i, &wake_ns) && free_top &&
                clients[i].inflight < inflight_cap)
                more = true;
        }
        rr = (rr + 1) % pol.n;
        if (drv_up && (dmq_publish(&drv_active) | wake_drv))
            microkit_notify(NET_TXV_CH_DRV);
        if (dmq_publish(&local_active) | wake_local)
            microkit_notify(NET_TXV_CH_LOCAL);
        wake_drv = wake_local = false;
        for (unsigned i = 0; i < pol.n; i++) {
            struct client *c = &clients[i];
            if (!c->up)
                continue;
            bool wake = dmq_release(&c->active);
            if (c->notify_free)
                wake |= dmq_publish(&c->free);
            c->notify_free = false;
            if (wake)
                microkit_notify(NET_TXV_CH_CLIENT0 + i);
        }
        if (!more) {
            /* Ask everyone with something for us to wake us, then look once
             * more: a frame published in between must not be missed. */
            bool again = false;
            for (unsigned i = 0; i < pol.n; i++)
                if (clients[i].up && !clients[i].has_pending) {
                    bool arrived = dmq_consumer_sleep(&clients[i].active);
                    clients[i].asked = !arrived;
                    again |= arrived;
                }
            if (drv_up)
                again |= dmq_consumer_sleep(&drv_free);
            again |= dmq_consumer_sleep(&local_free);
            more = again;
        }
    }
    if (resync_at) {
        uint64_t now = devmux_now_ns(), in = resync_at > now ? resync_at - now : 1;
        if (!wake_ns || in < wake_ns)
            wake_ns = in;
    }
    if (more)
        devmux_timeout(1000);
    else if (wake_ns)
        devmux_timeout(wake_ns);
}

/* A restarted peer asked for the queues to be reset (net.h handshake). */
static void resync_client(unsigned i)
{
    struct client *c = &clients[i];
    uint32_t req = net_sync_pending(c->sync, c->acked);
    if (!req)
        return;
    uint64_t wait = net_resync_wait(&c->resync);
    if (wait) {
        /* Asked again without having restarted: answered later, counted. */
        if (!c->resync_waiting)
            stats->resyncs_deferred[i]++;
        c->resync_waiting = true;
        net_log_limited(&c->log,
                        "client %s: asks for restart handshakes faster than it restarts; "
                        "answered at most %llu a second",
                        pol.c[i].name, 1000000000ull / NET_RESYNC_INTERVAL_NS);
        resync_wake(wait);
        return;
    }
    c->resync_waiting = false;
    if (attach_client(i, true))
        return;
    c->up = true;
    stats->resyncs[i]++;
    net_sync_ack(c->sync, req, &c->acked, NET_TXV_CH_CLIENT0 + i);
}

/* Put-off handshakes are looked at again on every timer. */
static void resync_put_off(void)
{
    resync_at = 0;
    for (unsigned i = 0; i < pol.n; i++)
        if (clients[i].resync_waiting)
            resync_client(i);
}

/* The driver is gone, and with it every buffer it held. */
static void reclaim_driver(void)
{
    for (uint32_t j = 0; j < dma_count; j++)
        if (drv_pool.held_by_peer[j]) {
            drv_pool.held_by_peer[j] = 0;
            unref(j);
        }
}

static void resync_driver(void)
{
    uint32_t req = net_sync_pending(drv_sync, drv_acked);
    if (!req)
        return;
    reclaim_driver(); /* a new request means the old driver is gone */
    if (attach_driver(true))
        return;
    drv_up = true;
    net_sync_ack(drv_sync, req, &drv_acked, NET_TXV_CH_DRV);
}

void notified(microkit_channel ch)
{
    if (ch == DEVMUX_TIMER_CHANNEL)
        resync_put_off();
    if (ch == NET_TXV_CH_DRV) {
        resync_driver();
    } else if (ch >= NET_TXV_CH_CLIENT0 && ch < NET_TXV_CH_CLIENT0 + pol.n) {
        struct client *c = &clients[ch - NET_TXV_CH_CLIENT0];
        uint64_t taken = c->taken;
        uint32_t acked = c->acked;
        bool asked = c->asked;
        c->asked = false;
        resync_client(ch - NET_TXV_CH_CLIENT0);
        run();
        /* Not asked for, nothing taken, no handshake: a notification we
         * did not need.  (An honest client notifies only when our wake
         * flag asks it to, so it never gets here.) */
        if (!asked && c->taken == taken && c->acked == acked && !c->resync_waiting &&
            net_storm_idle(&c->storm, ch)) {
            unsigned i = ch - NET_TXV_CH_CLIENT0;
            stats->notify_pauses[i]++;
            net_log_limited(&c->log,
                            "client %s: over %d notifications in %llu ms with nothing to do; "
                            "its channel is quiet for %llu ms",
                            pol.c[i].name, NET_STORM_LIMIT,
                            (unsigned long long)(NET_STORM_WINDOW_NS / 1000000),
                            (unsigned long long)(NET_STORM_QUIET_NS / 1000000));
        }
        return;
    }
    run();
}

void peer_fault(microkit_channel ch, const struct devmux_fault_info *info)
{
    (void)info;
    if (ch == NET_TXV_CH_DRV) {
        drv_up = false;
        reclaim_driver();
        run(); /* the buffers it held may unblock clients (local frames) */
    } else if (ch >= NET_TXV_CH_CLIENT0 && ch < NET_TXV_CH_CLIENT0 + pol.n) {
        clients[ch - NET_TXV_CH_CLIENT0].up = false;
        clients[ch - NET_TXV_CH_CLIENT0].resync.faulted = true;
    }
}

void peer_ready(microkit_channel ch)
{
    notified(ch);
}
