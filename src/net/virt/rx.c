/*
 * The rx virtualiser: frames from the wire (the driver) and frames switched
 * locally (the tx virtualiser) go to the copier of each client they are for,
 * by destination MAC and the client's policy.  A frame for several clients
 * (broadcast, multicast) is handed to each of their copiers by reference,
 * counted, and its buffer returns when the last copier is done: the only
 * copies made are the ones into each client's own memory.
 */
#include <stdlib.h>
#include <string.h>

#include "devmux/microkit.h"
#include "devmux/net.h"
#include "devmux/queue.h"
#include "net/common/netlib.h"
#include "net/virt/bind.h"

#define BATCH 64

struct copier {
    struct dmq_producer active;
    struct dmq_consumer free;
    struct net_sync *sync;
    uint32_t acked; /* restart request last acknowledged */
    bool up, notify, wake;
    /* Shared buffers (rx_dma and tx_dma) queued for this copier or held by
     * it: at most pol.c[k].rx_share, so no client, slow or flooded, can pin
     * more of the pool than its share (net.md §5). */
    uint32_t held;
    /* Ingress policing (rx_rate): frames over it are dropped. */
    struct net_bucket bucket;
};

/* One shared buffer pool: rx_dma (from the driver) or tx_dma (local). */
struct pool {
    const uint8_t *base;
    uint32_t size, count;
    uint64_t *holders; /* per buffer: bit k set while copier k holds it */
};

static struct net_policy pol;
static struct copier copiers[NET_MAX_CLIENTS];
static struct net_rx_stats *stats;
static struct pool rxp, txp;
static uint32_t *drv_stack; /* rx_dma buffers ready to give to the driver */
static uint32_t drv_top;

static struct dmq_producer drv_free;
static struct dmq_consumer drv_active;
static struct dmq_pool drv_pool;
static struct net_sync *drv_sync;
static bool drv_up = true;
static uint32_t drv_acked;

static struct dmq_consumer local_active;
static struct dmq_producer local_free;
static struct net_ratelog log_core;
static struct net_leases *leases; /* what DHCP gave clients with dhcp: true */

static void on_fault(void *ctx, enum dmq_fault f, const char *queue, uint64_t a, uint64_t b)
{
    struct net_counters *c = ctx;
    c->drops[f == DMQ_FAULT_INDEX ? NET_DROP_BAD_INDEX : NET_DROP_BAD_DESC]++;
    net_log_limited(&log_core, "fault %d on queue %s (%#llx, %#llx); ignored", (int)f, queue,
                    (unsigned long long)a, (unsigned long long)b);
}

static int pool_init(struct pool *p, const char *region)
{
    const struct devmux_item *it = net_item(NULL, region, NET_ITEM_BUFFERS);
    if (!it)
        return -1;
    p->base = it->addr;
    p->size = it->elem;
    p->count = it->count;
    p->holders = calloc(p->count, sizeof(*p->holders));
    return p->holders ? 0 : -1;
}

static int attach_driver(bool fresh)
{
    if (net_producer(&drv_free, NULL, NET_REGION_DRV_RX, NET_ITEM_FREE, fresh) ||
        net_consumer(&drv_active, NULL, NET_REGION_DRV_RX, NET_ITEM_ACTIVE, fresh))
        return -1;
    dmq_set_fault_handler(&drv_free.q, on_fault, &stats->wire);
    dmq_set_fault_handler(&drv_active.q, on_fault, &stats->wire);
    return 0;
}

static int attach_copier(unsigned i, bool fresh)
{
    struct copier *c = &copiers[i];
    if (net_producer(&c->active, pol.c[i].name, NET_REGION_COPY, NET_ITEM_ACTIVE, fresh) ||
        net_consumer(&c->free, pol.c[i].name, NET_REGION_COPY, NET_ITEM_FREE, fresh))
        return -1;
    dmq_set_fault_handler(&c->active.q, on_fault, &stats->client[i]);
    dmq_set_fault_handler(&c->free.q, on_fault, &stats->client[i]);
    return 0;
}

void init(void)
{
    if (net_policy_load(&pol))
        goto fail;
    const struct devmux_item *st = net_item(NULL, NET_REGION_RX_STATS, NET_ITEM_STATS);
    const struct devmux_item *sy = net_item(NULL, NET_REGION_DRV_RX, NET_ITEM_SYNC);
    const struct devmux_item *ls = net_item(NULL, NET_REGION_BIND, NET_ITEM_LEASES);
    if (!st || !sy || !ls || st->size < sizeof(*stats) || ls->size < sizeof(*leases) ||
        pool_init(&rxp, NET_REGION_RX_DMA) || pool_init(&txp, NET_REGION_TX_DMA))
        goto fail;
    stats = st->addr;
    leases = ls->addr;
    drv_sync = sy->addr;
    drv_stack = calloc(rxp.count, sizeof(*drv_stack));
    if (!drv_stack ||
        dmq_pool_init(&drv_pool, (size_t)rxp.count * rxp.size, rxp.size, rxp.count, false))
        goto fail;
    if (attach_driver(false) ||
        net_consumer(&local_active, NULL, NET_REGION_LOCAL, NET_ITEM_ACTIVE, false) ||
        net_producer(&local_free, NULL, NET_REGION_LOCAL, NET_ITEM_FREE, false))
        goto fail;
    dmq_set_fault_handler(&local_active.q, on_fault, &stats->local);
    dmq_set_fault_handler(&local_free.q, on_fault, &stats->local);
    drv_acked = atomic_load(&drv_sync->ack);
    for (unsigned i = 0; i < pol.n; i++) {
        const struct devmux_item *cs = net_item(pol.c[i].name, NET_REGION_COPY, NET_ITEM_SYNC);
        if (!cs || cs->size < NET_SYNC_BYTES || attach_copier(i, false))
            goto fail;
        copiers[i].sync = cs->addr;
        copiers[i].acked = atomic_load(&copiers[i].sync->ack);
        copiers[i].up = true;
        net_bucket_init(&copiers[i].bucket, pol.c[i].rx_rate_bps, pol.c[i].rx_burst);
        if (!pol.c[i].rx_share)
            pol.c[i].rx_share = rxp.count / 2;
        stats->held[i] = 0;
    }
    /* Every receive buffer starts with the driver. */
    for (uint32_t j = rxp.count; j-- > 0;)
        drv_stack[drv_top++] = j;
    devmux_log("rx virtualiser: %u clients, %u receive buffers", pol.n, rxp.count);
    return;
fail:
    devmux_log("rx virtualiser: cannot start");
    abort();
}

static void give_driver(void)
{
    while (drv_up && drv_top && dmq_space(&drv_free)) {
        uint32_t j = drv_stack[--drv_top];
        struct dmq_desc d = {.offset = (uint64_t)j * rxp.size, .len = rxp.size};
        dmq_put(&drv_free, &d);
        dmq_pool_give(&drv_pool, j);
    }
}

/* Ingress policing: may client k receive len more bytes now?  Unlike the
 * sending side, which shapes, excess here is dropped: the frames are on
 * their way in and nobody upstream would see backpressure. */
static bool rx_rate_allows(unsigned k, uint32_t len)
{
    return net_bucket_take(&copiers[k].bucket, len, NULL);
}

/* A DHCP server's answer to client k, seen on its way: remember the lease,
 * so the tx virtualiser lets the client use the address (bind.h). */
static void snoop_dhcp(unsigned k, const uint8_t *f, uint32_t len)
{
    uint32_t addr, secs;
    if (!net_dhcp_snoop(f, len, pol.c[k].mac, &addr, &secs))
        return;
    uint64_t now_s = devmux_now_ns() / 1000000000u;
    uint64_t end = addr ? now_s + secs : 0;
    if (end > UINT32_MAX)
        end = UINT32_MAX;
    atomic_store_explicit(&leases->lease[k], addr ? NET_LEASE(addr, end) : 0, memory_order_release);
    devmux_log("client %s: DHCP %s %u.%u.%u.%u for %u s", pol.c[k].name,
               addr ? "lease of" : "lease withdrawn (NAK)", addr >> 24, addr >> 16 & 255,
               addr >> 8 & 255, addr & 255, secs);
}

static bool wants(unsigned k, const uint8_t *dst)
{
    if (net_mac_is_broadcast(dst))
        return pol.c[k].broadcast;
    if (net_mac_is_multicast(dst))
        return pol.c[k].multicast;
    return !memcmp(dst, pol.c[k].mac, NET_MAC_LEN);
}

/* Hand buffer j of pool p (len bytes) to every client it is for.  src is
 * the sending client for a local frame, else -1.  Returns the references
 * taken; 0 means the caller takes the buffer back at once. */
static unsigned deliver(struct pool *p, uint32_t j, uint32_t len, int src, bool local,
                        struct net_counters *in)
{
    const uint8_t *f = p->base + (size_t)j * p->size;
    struct dmq_desc d = {
        .offset = (uint64_t)j * p->size, .len = len, .meta = local ? NET_META_TX_POOL : 0};
    unsigned taken = 0, matched = 0;
    in->packets++;
    in->bytes += len;
    for (unsigned k = 0; k < pol.n; k++) {
        if (!wants(k, f) || (int)k == src)
            continue;
        if (local && !net_policy_allows(&pol, src, (int)k))
            continue;
        matched++;
        struct net_counters *cc = &stats->client[k];
        if (!copiers[k].up) {
            cc->drops[NET_DROP_PEER_DOWN]++;
            continue;
        }
        /* Early, before any copier work: over its share or its rate, the
         * frame is this client's loss alone. */
        if (copiers[k].held >= pol.c[k].rx_share) {
            cc->drops[NET_DROP_SHARE]++;
            continue;
        }
        if (!rx_rate_allows(k, len)) {
            cc->drops[NET_DROP_RATE]++;
            continue;
        }
        if (!local && pol.c[k].dhcp)
            snoop_dhcp(k, f, len);
        if (!dmq_space(&copiers[k].active)) {
            cc->drops[NET_DROP_QUEUE_FULL]++;
            continue;
        }
        dmq_put(&copiers[k].active, &d);
        copiers[k].notify = true;
        copiers[k].held++;
        stats->held[k] = copiers[k].held;
        p->holders[j] |= 1ull << k;
        cc->packets++;
        cc->bytes += len;
        taken++;
    }
    if (!matched && !net_mac_is_multicast(f))
        in->drops[NET_DROP_UNKNOWN_DST]++;
    return taken;
}

static void local_done(uint32_t j)
{
    struct dmq_desc d = {.offset = (uint64_t)j * txp.size, .len = 0};
    if (dmq_space(&local_free))
        dmq_put(&local_free, &d);
}

/* Copier k gave its reference back.  Only a reference it holds counts, so
 * a copier returning one twice cannot free a buffer another still reads. */
static void release(unsigned k, const struct dmq_desc *d)
{
    bool tx = d->meta & NET_META_TX_POOL;
    struct pool *p = tx ? &txp : &rxp;
    uint64_t j = d->offset / p->size;
    if (d->offset % p->size || j >= p->count || !(p->holders[j] >> k & 1u)) {
        on_fault(&stats->client[k], DMQ_FAULT_DESC, "copy.free", d->offset, d->meta);
        return;
    }
    p->holders[j] &= ~(1ull << k);
    if (copiers[k].held)
        copiers[k].held--;
    stats->held[k] = copiers[k].held;
    if (p->holders[j])
        return;
    if (tx)
        local_done((uint32_t)j);
    else
        drv_stack[drv_top++] = (uint32_t)j;
}

/* Copier k died: every reference it held is dropped. */
static void reclaim_copier(unsigned k)
{
    struct pool *pools[2] = {&rxp, &txp};
    for (int p = 0; p < 2; p++)
        for (uint32_t j = 0; j < pools[p]->count; j++)
            if (pools[p]->holders[j] >> k & 1u) {
                struct dmq_desc d = {.offset = (uint64_t)j * pools[p]->size,
                                     .meta = p ? NET_META_TX_POOL : 0};
                release(k, &d);
            }
}

/* Passes per event: after this many, the event loop gets a turn (control
 * messages, handshakes) and a timer brings us straight back. */
#define PASSES 64

static void run(void)
{
    bool more = true;
    for (unsigned pass = 0; more && pass < PASSES; pass++) {
        more = false;
        struct dmq_desc d;
        int r;
        bool wake_drv = false, wake_local = false;
        for (unsigned k = 0; k < pol.n; k++) {
            if (!copiers[k].up)
                continue;
            /* At most a ring's worth: a copier cannot keep us here. */
            for (uint32_t m = 0;
                 m <= copiers[k].free.q.mask && (r = dmq_dequeue(&copiers[k].free, &d)) >= 0; m++) {
                copiers[k].wake |= r == 1;
                release(k, &d);
            }
        }
        for (unsigned n = 0; drv_up && n < BATCH && (r = dmq_dequeue(&drv_active, &d)) >= 0; n++) {
            wake_drv |= r == 1;
            uint32_t j;
            uint32_t len = d.len;
            if (!dmq_pool_accept(&drv_pool, &drv_active.q, &d, &j))
                continue;
            if (len < NET_MIN_FRAME) {
                stats->wire.drops[NET_DROP_BAD_LEN]++;
                drv_stack[drv_top++] = j;
                continue;
            }
            if (!deliver(&rxp, j, len, -1, false, &stats->wire))
                drv_stack[drv_top++] = j;
            more = n + 1 == BATCH;
        }
        for (unsigned n = 0; n < BATCH && (r = dmq_dequeue(&local_active, &d)) >= 0; n++) {
            wake_local |= r == 1;
            uint64_t j = d.offset / txp.size;
            int src = NET_META_SRC(d.meta);
            if (d.offset % txp.size || j >= txp.count || d.len > txp.size || txp.holders[j] ||
                src < 0 || (unsigned)src >= pol.n || d.len < NET_MIN_FRAME) {
                on_fault(&stats->local, DMQ_FAULT_DESC, "local.active", d.offset, d.meta);
                continue;
            }
            if (!deliver(&txp, (uint32_t)j, d.len, src, true, &stats->local))
                local_done((uint32_t)j);
            more = n + 1 == BATCH;
        }
        give_driver();
        if (drv_up && (dmq_publish(&drv_free) | dmq_release(&drv_active) | wake_drv))
            microkit_notify(NET_RXV_CH_DRV);
        if (dmq_publish(&local_free) | dmq_release(&local_active) | wake_local)
            microkit_notify(NET_RXV_CH_LOCAL);
        for (unsigned k = 0; k < pol.n; k++) {
            struct copier *c = &copiers[k];
            if (!c->up)
                continue;
            bool wake = dmq_release(&c->free) | c->wake;
            c->wake = false;
            if (c->notify)
                wake |= dmq_publish(&c->active);
            c->notify = false;
            if (wake)
                microkit_notify(NET_RXV_CH_COPY0 + k);
        }
        if (!more) {
            bool again = false;
            if (drv_up)
                again |= dmq_consumer_sleep(&drv_active);
            again |= dmq_consumer_sleep(&local_active);
            for (unsigned k = 0; k < pol.n; k++)
                if (copiers[k].up)
                    again |= dmq_consumer_sleep(&copiers[k].free);
            more = again;
        }
    }
    if (more)
        devmux_timeout(1000);
}

/* Every buffer the dead driver held is ours again. */
static void reclaim_driver(void)
{
    for (uint32_t j = 0; j < rxp.count; j++)
        if (drv_pool.held_by_peer[j]) {
            drv_pool.held_by_peer[j] = 0;
            drv_stack[drv_top++] = j;
        }
}

static void resync_driver(void)
{
    uint32_t req = net_sync_pending(drv_sync, drv_acked);
    if (!req)
        return;
    /* A new request means the old driver is gone, whether or not its
     * peer_fault has been seen yet. */
    reclaim_driver();
    if (attach_driver(true))
        return;
    drv_up = true;
    net_sync_ack(drv_sync, req, &drv_acked, NET_RXV_CH_DRV);
}

static void resync_copier(unsigned k)
{
    struct copier *c = &copiers[k];
    uint32_t req = net_sync_pending(c->sync, c->acked);
    if (!req)
        return;
    reclaim_copier(k); /* a new request means the old copier is gone */
    if (attach_copier(k, true))
        return;
    c->up = true;
    net_sync_ack(c->sync, req, &c->acked, NET_RXV_CH_COPY0 + k);
}

void notified(microkit_channel ch)
{
    /* DEVMUX_TIMER_CHANNEL: a run that stopped after PASSES continues. */
    if (ch == NET_RXV_CH_DRV)
        resync_driver();
    else if (ch >= NET_RXV_CH_COPY0 && ch < NET_RXV_CH_COPY0 + pol.n)
        resync_copier(ch - NET_RXV_CH_COPY0);
    run();
}

void peer_fault(microkit_channel ch, const struct devmux_fault_info *info)
{
    (void)info;
    if (ch == NET_RXV_CH_DRV) {
        drv_up = false;
        reclaim_driver();
    } else if (ch >= NET_RXV_CH_COPY0 && ch < NET_RXV_CH_COPY0 + pol.n) {
        copiers[ch - NET_RXV_CH_COPY0].up = false;
        reclaim_copier(ch - NET_RXV_CH_COPY0);
    }
    run(); /* buffers came back: the driver may be waiting for them */
}

void peer_ready(microkit_channel ch)
{
    notified(ch);
}
