#include "net/common/netlib.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool net_mac_parse(const char *s, uint8_t mac[NET_MAC_LEN])
{
    for (int i = 0; i < NET_MAC_LEN; i++) {
        unsigned v = 0;
        for (int k = 0; k < 2; k++) {
            char ch = *s++;
            unsigned d;
            if (ch >= '0' && ch <= '9')
                d = (unsigned)(ch - '0');
            else if (ch >= 'a' && ch <= 'f')
                d = (unsigned)(ch - 'a' + 10);
            else if (ch >= 'A' && ch <= 'F')
                d = (unsigned)(ch - 'A' + 10);
            else
                return false;
            v = v * 16 + d;
        }
        mac[i] = (uint8_t)v;
        if (*s != (i == NET_MAC_LEN - 1 ? '\0' : ':'))
            return false;
        s++;
    }
    return true;
}

void net_region_name(char *out, size_t len, const char *client, const char *suffix)
{
    const char *net = devmux_config_str("net", "net");
    if (client)
        snprintf(out, len, "%s.%s.%s", net, client, suffix);
    else
        snprintf(out, len, "%s.%s", net, suffix);
}

const struct devmux_item *net_item(const char *client, const char *suffix, const char *item)
{
    char name[128];
    net_region_name(name, sizeof(name), client, suffix);
    const struct devmux_item *it = devmux_item(name, item);
    if (!it)
        devmux_log("no item '%s' in region '%s': the system description does not grant it", item,
                   name);
    return it;
}

int net_producer(struct dmq_producer *p, const char *client, const char *suffix, const char *item,
                 bool fresh)
{
    const struct devmux_item *it = net_item(client, suffix, item);
    if (!it)
        return -1;
    if (dmq_producer_init(p, it->addr, it->size, it->count, item, fresh)) {
        devmux_log("queue '%s' in '%s': cannot attach as producer", item, suffix);
        return -1;
    }
    return 0;
}

int net_consumer(struct dmq_consumer *c, const char *client, const char *suffix, const char *item,
                 bool fresh)
{
    const struct devmux_item *it = net_item(client, suffix, item);
    if (!it)
        return -1;
    if (dmq_consumer_init(c, it->addr, it->size, it->count, item, fresh)) {
        devmux_log("queue '%s' in '%s': cannot attach as consumer", item, suffix);
        return -1;
    }
    return 0;
}

static const char *client_key(unsigned i, const char *key, const char *def)
{
    char k[64];
    snprintf(k, sizeof(k), "client.%u.%s", i, key);
    return devmux_config_str(k, def);
}

static uint64_t client_u64(unsigned i, const char *key, uint64_t def)
{
    char k[64];
    snprintf(k, sizeof(k), "client.%u.%s", i, key);
    return devmux_config_u64(k, def);
}

int net_policy_load(struct net_policy *p)
{
    memset(p, 0, sizeof(*p));
    uint64_t n = devmux_config_u64("clients", 0);
    if (n == 0 || n > NET_MAX_CLIENTS) {
        devmux_log("config 'clients' = %llu; expected 1..%d", (unsigned long long)n,
                   NET_MAX_CLIENTS);
        return -1;
    }
    p->n = (unsigned)n;
    for (unsigned i = 0; i < p->n; i++) {
        struct net_client_policy *c = &p->c[i];
        snprintf(c->name, sizeof(c->name), "%s", client_key(i, "name", "?"));
        if (!net_mac_parse(client_key(i, "mac", ""), c->mac)) {
            devmux_log("client %u ('%s'): config mac '%s' is not a MAC address", i, c->name,
                       client_key(i, "mac", ""));
            return -1;
        }
        c->broadcast = client_u64(i, "broadcast", 1) != 0;
        c->multicast = client_u64(i, "multicast", 1) != 0;
        c->rate_bps = client_u64(i, "rate", 0);
        c->burst = client_u64(i, "burst", 0);
        c->quota = (uint32_t)client_u64(i, "quota", 256);
        c->rx_rate_bps = client_u64(i, "rx_rate", 0);
        c->rx_burst = client_u64(i, "rx_burst", 0);
        c->rx_share = (uint32_t)client_u64(i, "rx_share", 0);
        c->ipv4 = client_key(i, "ipv4", "");
        c->ipv6 = client_key(i, "ipv6", "");
        c->dhcp = client_u64(i, "dhcp", 0) != 0;
        const char *peers = client_key(i, "peers", "");
        while (*peers) {
            char *end;
            unsigned long j = strtoul(peers, &end, 10);
            if (end == peers || j >= p->n) {
                devmux_log("client %u ('%s'): config peers '%s' is not a list of client indices", i,
                           c->name, client_key(i, "peers", ""));
                return -1;
            }
            c->peers |= 1ull << j;
            peers = *end == ',' ? end + 1 : end;
        }
    }
    return 0;
}

#define NS_PER_S 1000000000u

void net_bucket_init(struct net_bucket *b, uint64_t rate, uint64_t burst)
{
    b->rate = rate;
    b->burst = burst;
    b->tokens = (unsigned __int128)burst * 8 * NS_PER_S;
    b->last_ns = devmux_now_ns();
}

bool net_bucket_take(struct net_bucket *b, uint32_t len, uint64_t *wait_ns)
{
    if (!b->rate)
        return true;
    uint64_t now = devmux_now_ns();
    unsigned __int128 cap = (unsigned __int128)b->burst * 8 * NS_PER_S;
    unsigned __int128 add = (unsigned __int128)(now - b->last_ns) * b->rate;
    b->last_ns = now;
    b->tokens = add >= cap - b->tokens ? cap : b->tokens + add;
    unsigned __int128 need = (unsigned __int128)len * 8 * NS_PER_S;
    if (b->tokens >= need) {
        b->tokens -= need;
        return true;
    }
    if (wait_ns)
        *wait_ns = (uint64_t)((need - b->tokens + b->rate - 1) / b->rate);
    return false;
}

uint64_t net_bucket_half_fill_ns(const struct net_bucket *b)
{
    if (!b->rate)
        return 0;
    return (uint64_t)((unsigned __int128)b->burst * 8 * NS_PER_S / 2 / b->rate);
}

uint64_t net_resync_wait(struct net_resync_limit *l)
{
    const uint64_t cap = NET_RESYNC_BURST * NET_RESYNC_INTERVAL_NS;
    uint64_t now = devmux_now_ns();
    if (!l->last_ns)
        l->credit_ns = cap; /* a fresh limiter starts with a full bucket */
    else
        l->credit_ns =
            now - l->last_ns >= cap - l->credit_ns ? cap : l->credit_ns + now - l->last_ns;
    l->last_ns = now;
    if (l->faulted || l->credit_ns >= NET_RESYNC_INTERVAL_NS) {
        l->credit_ns =
            l->credit_ns >= NET_RESYNC_INTERVAL_NS ? l->credit_ns - NET_RESYNC_INTERVAL_NS : 0;
        l->faulted = false;
        return 0;
    }
    return NET_RESYNC_INTERVAL_NS - l->credit_ns;
}

bool net_garbage_paused(struct net_garbage *g, bool *started, uint64_t *wait_ns)
{
    uint64_t now = devmux_now_ns();
    if (now < g->paused_until_ns) {
        *wait_ns = g->paused_until_ns - now;
        return true;
    }
    if (now - g->window_ns >= NET_GARBAGE_WINDOW_NS) {
        g->window_ns = now;
        g->refused = 0;
    }
    if (g->refused <= NET_GARBAGE_BUDGET)
        return false;
    g->paused_until_ns = g->window_ns + NET_GARBAGE_WINDOW_NS;
    *started = true;
    *wait_ns = g->paused_until_ns > now ? g->paused_until_ns - now : 1;
    return true;
}

bool net_storm_idle(struct net_storm *s, microkit_channel ch)
{
    uint64_t now = devmux_now_ns();
    if (now - s->window_ns >= NET_STORM_WINDOW_NS) {
        s->window_ns = now;
        s->idle = 0;
    }
    if (++s->idle <= NET_STORM_LIMIT)
        return false;
    s->idle = 0;
    devmux_channel_quiet(ch, NET_STORM_QUIET_NS);
    return true;
}

int net_policy_find(const struct net_policy *p, const uint8_t *mac)
{
    for (unsigned i = 0; i < p->n; i++)
        if (!memcmp(p->c[i].mac, mac, NET_MAC_LEN))
            return (int)i;
    return -1;
}

void net_log_limited(struct net_ratelog *rl, const char *fmt, ...)
{
    uint64_t now = devmux_now_ns();
    if (rl->window_ns && now - rl->window_ns < 1000000000u) {
        rl->suppressed++;
        return;
    }
    rl->window_ns = now;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (rl->suppressed)
        devmux_log("%s (and %llu more like it in the last second)", buf,
                   (unsigned long long)rl->suppressed);
    else
        devmux_log("%s", buf);
    rl->suppressed = 0;
}

/* ---- the NIC driver's side ------------------------------------------------ */

static const struct devmux_item *need_item(const char *region, const char *item, size_t min)
{
    const struct devmux_item *it = devmux_item(region, item);
    if (!it || it->size < min) {
        devmux_log("region '%s' must hold item '%s' of at least %zu bytes", region, item, min);
        abort();
    }
    return it;
}

void net_drv_init(struct net_drv *d, const char *net)
{
    memset(d, 0, sizeof(*d));
    char r_rx_dma[128], r_tx_dma[128], r_drv_rx[128], r_drv_tx[128];
    snprintf(r_rx_dma, sizeof(r_rx_dma), "%s.%s", net, NET_REGION_RX_DMA);
    snprintf(r_tx_dma, sizeof(r_tx_dma), "%s.%s", net, NET_REGION_TX_DMA);
    snprintf(r_drv_rx, sizeof(r_drv_rx), "%s.%s", net, NET_REGION_DRV_RX);
    snprintf(r_drv_tx, sizeof(r_drv_tx), "%s.%s", net, NET_REGION_DRV_TX);

    d->rx_buffers = need_item(r_rx_dma, NET_ITEM_BUFFERS, 1);
    d->tx_buffers = need_item(r_tx_dma, NET_ITEM_BUFFERS, 1);
    d->it_rx_free = need_item(r_drv_rx, NET_ITEM_FREE, DMQ_RING_HEADER_BYTES);
    d->it_rx_active = need_item(r_drv_rx, NET_ITEM_ACTIVE, DMQ_RING_HEADER_BYTES);
    d->it_tx_active = need_item(r_drv_tx, NET_ITEM_ACTIVE, DMQ_RING_HEADER_BYTES);
    d->it_tx_free = need_item(r_drv_tx, NET_ITEM_FREE, DMQ_RING_HEADER_BYTES);
    d->rx_sync = need_item(r_drv_rx, NET_ITEM_SYNC, NET_SYNC_BYTES)->addr;
    d->tx_sync = need_item(r_drv_tx, NET_ITEM_SYNC, NET_SYNC_BYTES)->addr;
    d->stats = need_item(r_drv_rx, NET_ITEM_STATS, sizeof(struct net_drv_stats))->addr;
    d->fault_rx = (struct net_drv_fault){d, &d->stats->rx};
    d->fault_tx = (struct net_drv_fault){d, &d->stats->tx};

    /* Every buffer starts with (or, after the handshake, went back to) the
     * virtualisers: they hand them to us one by one. */
    const struct devmux_item *rxb = d->rx_buffers, *txb = d->tx_buffers;
    if (dmq_pool_init(&d->rx_pool, rxb->size, rxb->elem, rxb->count, true) ||
        dmq_pool_init(&d->tx_pool, txb->size, txb->elem, txb->count, true)) {
        devmux_log("buffer pools: bad layout in the system description");
        abort();
    }
    d->rx_stack = calloc(d->rx_pool.count, sizeof(*d->rx_stack));
    if (!d->rx_stack) {
        devmux_log("out of memory");
        abort();
    }
}

/* Queue faults.  The queue library has already dropped whatever was wrong. */
static void drv_fault(void *ctx, enum dmq_fault f, const char *q, uint64_t a, uint64_t b)
{
    struct net_drv_fault *fc = ctx;
    const char *what = "bad descriptor";
    if (f == DMQ_FAULT_INDEX) {
        fc->c->drops[NET_DROP_BAD_INDEX]++;
        what = "bad index";
    } else {
        fc->c->drops[NET_DROP_BAD_DESC]++;
        if (f == DMQ_FAULT_OWNER)
            what = "buffer not held by the peer";
    }
    net_log_limited(&fc->drv->log, "queue %s: %s (%#llx, %#llx)", q, what, (unsigned long long)a,
                    (unsigned long long)b);
}

static void attach_rx(struct net_drv *d)
{
    const struct devmux_item *f = d->it_rx_free, *a = d->it_rx_active;
    if (dmq_consumer_init(&d->rx_free, f->addr, f->size, f->count, "drv_rx.free", false) ||
        dmq_producer_init(&d->rx_active, a->addr, a->size, a->count, "drv_rx.active", false)) {
        devmux_log("drv_rx queues: bad layout in the system description");
        abort();
    }
    dmq_set_fault_handler(&d->rx_free.q, drv_fault, &d->fault_rx);
    dmq_set_fault_handler(&d->rx_active.q, drv_fault, &d->fault_rx);
    d->rx_synced = true;
    /* Resumed queues: the peer may sleep on a wake-up we never sent. */
    microkit_notify(NET_DRV_CH_RX);
}

static void attach_tx(struct net_drv *d)
{
    const struct devmux_item *a = d->it_tx_active, *f = d->it_tx_free;
    if (dmq_consumer_init(&d->tx_active, a->addr, a->size, a->count, "drv_tx.active", false) ||
        dmq_producer_init(&d->tx_free, f->addr, f->size, f->count, "drv_tx.free", false)) {
        devmux_log("drv_tx queues: bad layout in the system description");
        abort();
    }
    dmq_set_fault_handler(&d->tx_active.q, drv_fault, &d->fault_tx);
    dmq_set_fault_handler(&d->tx_free.q, drv_fault, &d->fault_tx);
    d->tx_synced = true;
    microkit_notify(NET_DRV_CH_TX);
}

void net_drv_check_sync(struct net_drv *d)
{
    if (!d->rx_synced &&
        atomic_load_explicit(&d->rx_sync->ack, memory_order_acquire) == d->sync_request) {
        devmux_log("rx virtualiser acknowledged restart %u", d->sync_request);
        attach_rx(d);
    }
    if (!d->tx_synced &&
        atomic_load_explicit(&d->tx_sync->ack, memory_order_acquire) == d->sync_request) {
        devmux_log("tx virtualiser acknowledged restart %u", d->sync_request);
        attach_tx(d);
    }
}

void net_drv_start(struct net_drv *d)
{
    unsigned restarts = devmux_restarts();
    d->stats->restarts = restarts;
    if (restarts == 0) {
        /* Regions are zero: valid empty queues, nothing to negotiate. */
        attach_rx(d);
        attach_tx(d);
        return;
    }
    d->sync_request = restarts;
    atomic_store_explicit(&d->rx_sync->request, d->sync_request, memory_order_release);
    atomic_store_explicit(&d->tx_sync->request, d->sync_request, memory_order_release);
    microkit_notify(NET_DRV_CH_RX);
    microkit_notify(NET_DRV_CH_TX);
    net_drv_check_sync(d); /* a survivor may have answered already */
}

void net_drv_rx_refill(struct net_drv *d)
{
    struct dmq_desc desc;
    uint32_t i;
    while (d->rx_nfree < d->rx_pool.count) {
        uint32_t n = dmq_avail(&d->rx_free);
        if (n == 0) {
            if (!dmq_consumer_sleep(&d->rx_free))
                break;
            continue;
        }
        for (; n > 0 && d->rx_nfree < d->rx_pool.count; n--) {
            dmq_take(&d->rx_free, &desc);
            if (dmq_pool_accept(&d->rx_pool, &d->rx_free.q, &desc, &i))
                d->rx_stack[d->rx_nfree++] = i;
        }
    }
    if (dmq_release(&d->rx_free))
        microkit_notify(NET_DRV_CH_RX);
}

void net_drv_rx_put(struct net_drv *d, uint32_t i, uint32_t len)
{
    struct dmq_desc desc = {.offset = (uint64_t)i * d->rx_pool.buf_size, .len = len};
    dmq_pool_give(&d->rx_pool, i);
    dmq_put(&d->rx_active, &desc);
    d->stats->rx.packets++;
    d->stats->rx.bytes += len;
}

void net_drv_rx_publish(struct net_drv *d)
{
    if (d->rx_synced && dmq_publish(&d->rx_active))
        microkit_notify(NET_DRV_CH_RX);
}

int net_drv_tx_take(struct net_drv *d, struct dmq_desc *desc, uint32_t *index)
{
    if (dmq_avail(&d->tx_active) == 0) {
        if (dmq_release(&d->tx_active))
            microkit_notify(NET_DRV_CH_TX);
        if (!dmq_consumer_sleep(&d->tx_active))
            return -1;
    }
    dmq_take(&d->tx_active, desc);
    /* A refused descriptor is counted by drv_fault and not ours to return. */
    return dmq_pool_accept(&d->tx_pool, &d->tx_active.q, desc, index) ? 1 : 0;
}

void net_drv_tx_return(struct net_drv *d, uint32_t i)
{
    struct dmq_desc back = {.offset = (uint64_t)i * d->tx_pool.buf_size, .len = 0};
    dmq_pool_give(&d->tx_pool, i);
    dmq_put(&d->tx_free, &back);
}

void net_drv_tx_flush(struct net_drv *d)
{
    if (dmq_release(&d->tx_active))
        microkit_notify(NET_DRV_CH_TX);
    if (dmq_publish(&d->tx_free))
        microkit_notify(NET_DRV_CH_TX);
}

void net_drv_timer(struct net_drv *d, uint64_t ns)
{
    uint64_t at = devmux_now_ns() + ns;
    if (d->timer_at && d->timer_at <= at)
        return;
    d->timer_at = at;
    devmux_timeout(ns);
}

void net_drv_peer_ready(microkit_channel ch)
{
    if (ch == NET_DRV_CH_RX || ch == NET_DRV_CH_TX)
        microkit_notify(ch);
}
