/*
 * net-synth: a stand-in NIC driver that measures the network multiplexer
 * itself.  It takes the driver's place in a network (`driver: {program:
 * net-synth}`), with the driver's regions and channels, and speaks the
 * driver side of docs/protocols/net.md without any device behind it:
 *
 *   RX  every empty rx_dma buffer the rx virtualiser hands over on
 *       drv_rx.free is filled at once with a frame (the whole frame is
 *       written, as a real driver copies it in) and published on
 *       drv_rx.active.  Destinations go round-robin over the clients'
 *       fixed MACs 02:00:00:00:01:XX (XX = 00, 01, ...).  With no empty
 *       buffer left it sleeps on drv_rx.free, so the rate is whatever the
 *       rx virtualiser, the copiers and the clients sustain.
 *   TX  frames on drv_tx.active are counted and their buffers go straight
 *       back on drv_tx.free.
 *
 * It is granted the network's `nic` device like any driver, and ignores it.
 *
 * Parameters: the driver's config `clients` (default 1) and `frame` (bytes,
 * Ethernet header included, no FCS; default 64).
 *
 * Counters go to the driver's block (struct net_drv_stats), so `devmux ctl
 * net` shows what was generated (rx) and what came back (tx).
 */
#include <devmux/microkit.h>
#include <devmux/net.h>
#include <devmux/queue.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SYNTH_CLIENTS 1
#define SYNTH_FRAME   64

/* Frames per event before the loop yields to the event loop (a timer brings
 * it back at once), so peer_fault and friends are not held up forever. */
#define BUDGET    4096u
#define SOON_NS   1000u
#define ETHERTYPE 0x88b5u /* IEEE local experimental */

static const uint8_t src_mac[NET_MAC_LEN] = {0x02, 0, 0, 0, 0x02, 0x00};

static struct net_drv_stats *stats;
static struct net_sync *rx_sync, *tx_sync;
static const struct devmux_item *it_rx_free, *it_rx_active, *it_tx_active, *it_tx_free;
static struct dmq_consumer rx_free;   /* empty rx_dma buffers from the rx virt */
static struct dmq_producer rx_active; /* generated frames to the rx virt */
static struct dmq_consumer tx_active; /* frames to "send" from the tx virt */
static struct dmq_producer tx_free;   /* their buffers back */
static struct dmq_pool rx_pool, tx_pool;
static uint8_t *rx_bufs;
static bool rx_up, tx_up;
static uint32_t request;

static uint32_t nclients, frame_len, next_client;
static uint8_t tmpl[NET_MAX_FRAME];
static uint64_t seq;

static void on_fault(void *ctx, enum dmq_fault f, const char *q, uint64_t a, uint64_t b)
{
    static uint64_t last;
    struct net_counters *c = ctx;
    c->drops[f == DMQ_FAULT_INDEX ? NET_DROP_BAD_INDEX : NET_DROP_BAD_DESC]++;
    uint64_t now = devmux_now_ns();
    if (now - last > 1000000000u) {
        last = now;
        devmux_log("queue %s: fault %d (%#" PRIx64 ", %#" PRIx64 ")", q, (int)f, a, b);
    }
}

static const struct devmux_item *need(const char *suffix, const char *item)
{
    char name[128];
    snprintf(name, sizeof(name), "%s.%s", devmux_config_str("net", "net"), suffix);
    const struct devmux_item *it = devmux_item(name, item);
    if (!it) {
        devmux_log("no item '%s' in region '%s'", item, name);
        abort();
    }
    return it;
}

static void attach_rx(void)
{
    if (dmq_consumer_init(&rx_free, it_rx_free->addr, it_rx_free->size, it_rx_free->count,
                          "drv_rx.free", false) ||
        dmq_producer_init(&rx_active, it_rx_active->addr, it_rx_active->size, it_rx_active->count,
                          "drv_rx.active", false))
        abort();
    dmq_set_fault_handler(&rx_free.q, on_fault, &stats->rx);
    dmq_set_fault_handler(&rx_active.q, on_fault, &stats->rx);
    rx_up = true;
    microkit_notify(NET_DRV_CH_RX);
}

static void attach_tx(void)
{
    if (dmq_consumer_init(&tx_active, it_tx_active->addr, it_tx_active->size, it_tx_active->count,
                          "drv_tx.active", false) ||
        dmq_producer_init(&tx_free, it_tx_free->addr, it_tx_free->size, it_tx_free->count,
                          "drv_tx.free", false))
        abort();
    dmq_set_fault_handler(&tx_active.q, on_fault, &stats->tx);
    dmq_set_fault_handler(&tx_free.q, on_fault, &stats->tx);
    tx_up = true;
    microkit_notify(NET_DRV_CH_TX);
}

/* After a restart: a pair is ours once its virtualiser acknowledged. */
static void check_sync(void)
{
    if (!rx_up && atomic_load_explicit(&rx_sync->ack, memory_order_acquire) == request)
        attach_rx();
    if (!tx_up && atomic_load_explicit(&tx_sync->ack, memory_order_acquire) == request)
        attach_tx();
}

/* Fills up to budget free buffers with frames.  *idle is set when no free
 * buffer is left and the wake-up is armed. */
static void rx_generate(uint32_t budget, bool *idle)
{
    uint32_t made = 0, taken = 0, i;
    struct dmq_desc d;
    *idle = false;
    while (taken < budget) {
        uint32_t n = dmq_avail(&rx_free);
        if (n == 0) {
            /* Nothing to fill: sleep (each batch was published below). */
            if (dmq_consumer_sleep(&rx_free))
                continue;
            *idle = true;
            break;
        }
        /* rx_active holds every rx buffer, so it only fills up if the rx
         * virtualiser lies about its head; then wait for it. */
        uint32_t room = dmq_space(&rx_active);
        if (room == 0) {
            if (dmq_producer_sleep(&rx_active))
                continue;
            *idle = true;
            break;
        }
        if (n > room)
            n = room;
        if (n > budget - taken)
            n = budget - taken;
        for (; n > 0; n--) {
            dmq_take(&rx_free, &d);
            taken++;
            if (!dmq_pool_accept(&rx_pool, &rx_free.q, &d, &i))
                continue;
            uint8_t *f = rx_bufs + (size_t)i * rx_pool.buf_size;
            memcpy(f, tmpl, frame_len);
            f[NET_MAC_LEN - 1] = (uint8_t)next_client;
            memcpy(f + 14, &seq, sizeof(seq));
            seq++;
            next_client = next_client + 1 == nclients ? 0 : next_client + 1;
            struct dmq_desc out = {.offset = (uint64_t)i * rx_pool.buf_size, .len = frame_len};
            dmq_pool_give(&rx_pool, i);
            dmq_put(&rx_active, &out);
            made++;
        }
        /* Publish per batch so the rx virtualiser starts early. */
        if (dmq_release(&rx_free) | dmq_publish(&rx_active))
            microkit_notify(NET_DRV_CH_RX);
    }
    stats->rx.packets += made;
    stats->rx.bytes += (uint64_t)made * frame_len;
}

/* Hands back what tx_drain took.  Publishing or releasing with nothing new
 * would only wake a peer that armed its flag for no reason. */
static void tx_flush(uint32_t taken)
{
    if (taken && (dmq_release(&tx_active) | dmq_publish(&tx_free)))
        microkit_notify(NET_DRV_CH_TX);
}

/* Returns every buffer the tx virtualiser sends.  *idle as above. */
static void tx_drain(uint32_t budget, bool *idle)
{
    struct dmq_desc d;
    uint32_t i, done = 0, unflushed = 0;
    *idle = false;
    while (done < budget) {
        if (dmq_avail(&tx_active) == 0) {
            tx_flush(unflushed);
            unflushed = 0;
            if (dmq_consumer_sleep(&tx_active))
                continue;
            *idle = true;
            return;
        }
        if (dmq_space(&tx_free) == 0) {
            tx_flush(unflushed);
            unflushed = 0;
            if (dmq_producer_sleep(&tx_free))
                continue;
            *idle = true;
            return;
        }
        dmq_take(&tx_active, &d);
        done++;
        unflushed++;
        if (!dmq_pool_accept(&tx_pool, &tx_active.q, &d, &i))
            continue;
        if (d.len >= NET_MIN_FRAME && d.len <= NET_MAX_FRAME) {
            stats->tx.packets++;
            stats->tx.bytes += d.len;
        } else {
            stats->tx.drops[NET_DROP_BAD_LEN]++;
        }
        struct dmq_desc back = {.offset = d.offset, .len = 0};
        dmq_pool_give(&tx_pool, i);
        dmq_put(&tx_free, &back);
    }
    tx_flush(unflushed);
}

static void work(void)
{
    check_sync();
    uint32_t budget = BUDGET;
    bool rx_idle = !rx_up, tx_idle = !tx_up;
    while (budget > 0 && !(rx_idle && tx_idle)) {
        uint32_t step = budget < 256 ? budget : 256;
        if (!rx_idle)
            rx_generate(step, &rx_idle);
        if (!tx_idle)
            tx_drain(step, &tx_idle);
        budget -= step;
    }
    if (!(rx_idle && tx_idle))
        devmux_timeout(SOON_NS); /* more to do: come back after other events */
}

void init(void)
{
    const struct devmux_item *rxb = need(NET_REGION_RX_DMA, NET_ITEM_BUFFERS);
    const struct devmux_item *txb = need(NET_REGION_TX_DMA, NET_ITEM_BUFFERS);
    it_rx_free = need(NET_REGION_DRV_RX, NET_ITEM_FREE);
    it_rx_active = need(NET_REGION_DRV_RX, NET_ITEM_ACTIVE);
    it_tx_active = need(NET_REGION_DRV_TX, NET_ITEM_ACTIVE);
    it_tx_free = need(NET_REGION_DRV_TX, NET_ITEM_FREE);
    const struct devmux_item *st = need(NET_REGION_DRV_RX, NET_ITEM_STATS);
    rx_sync = need(NET_REGION_DRV_RX, NET_ITEM_SYNC)->addr;
    tx_sync = need(NET_REGION_DRV_TX, NET_ITEM_SYNC)->addr;
    if (st->size < sizeof(*stats) ||
        dmq_pool_init(&rx_pool, rxb->size, rxb->elem, rxb->count, true) ||
        dmq_pool_init(&tx_pool, txb->size, txb->elem, txb->count, true)) {
        devmux_log("bad layout in the system description");
        abort();
    }
    stats = st->addr;
    rx_bufs = rxb->addr;

    uint64_t n = devmux_config_u64("clients", SYNTH_CLIENTS);
    uint64_t len = devmux_config_u64("frame", SYNTH_FRAME);
    nclients = (uint32_t)(n < 1 ? 1 : n > 256 ? 256 : n);
    if (len < 14 + sizeof(seq))
        len = 14 + sizeof(seq);
    if (len > NET_MAX_FRAME)
        len = NET_MAX_FRAME;
    if (len > rx_pool.buf_size)
        len = rx_pool.buf_size;
    frame_len = (uint32_t)len;
    const uint8_t dst[NET_MAC_LEN] = {0x02, 0, 0, 0, 0x01, 0x00};
    memcpy(tmpl, dst, NET_MAC_LEN);
    memcpy(tmpl + NET_MAC_LEN, src_mac, NET_MAC_LEN);
    tmpl[12] = ETHERTYPE >> 8;
    tmpl[13] = ETHERTYPE & 0xff;
    for (uint32_t k = 14 + sizeof(seq); k < frame_len; k++)
        tmpl[k] = (uint8_t)k;

    unsigned restarts = devmux_restarts();
    stats->restarts = restarts;
    stats->link_up = 1;
    if (restarts == 0) {
        attach_rx();
        attach_tx();
    } else {
        request = restarts;
        atomic_store_explicit(&rx_sync->request, request, memory_order_release);
        atomic_store_explicit(&tx_sync->request, request, memory_order_release);
        microkit_notify(NET_DRV_CH_RX);
        microkit_notify(NET_DRV_CH_TX);
    }
    devmux_log("synthetic driver: %u clients, %u-byte frames, %u rx / %u tx buffers", nclients,
               frame_len, rx_pool.count, tx_pool.count);
    work();
}

void notified(microkit_channel ch)
{
    /* The nic device's interrupt (NET_DRV_CH_IRQ) is never acknowledged:
     * the device is not used. */
    if (ch == NET_DRV_CH_RX || ch == NET_DRV_CH_TX || ch == DEVMUX_TIMER_CHANNEL)
        work();
}

void peer_ready(microkit_channel ch)
{
    if (ch == NET_DRV_CH_RX || ch == NET_DRV_CH_TX)
        microkit_notify(ch);
}
