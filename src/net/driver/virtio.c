/*
 * net-virtio: the network driver for a virtio-net PCI device (virtio 1.x,
 * modern transport) reached through the hardware layer (devmux/hw.h).  It
 * speaks the same driver side of include/devmux/net.h as net-packet, but
 * moves frames by DMA with no copy:
 *
 *   RX  an rx_dma buffer from drv_rx.free is posted to the device as
 *       [12-byte header slot in drv_dma][the buffer]; the device writes the
 *       frame into it; the buffer goes on drv_rx.active.
 *   TX  a tx_dma buffer from drv_tx.active is posted as [zeroed header]
 *       [the frame]; once the device has sent it the buffer goes back on
 *       drv_tx.free.
 *
 * The rings and header slots live in drv_dma, the driver's own
 * device-visible region.  Interrupts are INTx: the ISR read clears the
 * cause and lowers the line, then the IRQ is acknowledged.
 *
 * The device is not trusted either: a completion that cannot be right, a
 * DEVICE_NEEDS_RESET status or a failed register access resets it.  Every
 * buffer it held comes back (rx buffers to our stack for re-posting, tx
 * buffers to the tx virtualiser, counted as device drops), the device is
 * set up again, and the virtualisers see nothing but the counters.
 *
 * Config: net (required, the network's name); queue_size (descriptors per
 * virtqueue, default 256; the device's maximum and drv_dma may lower it).
 */
#include <devmux/hw.h>
#include <devmux/microkit.h>
#include <devmux/net.h>
#include <devmux/queue.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hw/virtio/pci.h"
#include "hw/virtio/virtqueue.h"
#include "net/common/netlib.h"

/* Work per event, per direction, as in net-packet: a flood one way cannot
 * keep the event loop from serving the other. */
#define BATCH              64u
#define SOON_NS            1000u
#define QUEUE_SIZE_DEFAULT 256u
/* A device that failed to come up is tried again, backing off from 10 ms
 * to 1 s, so a broken device costs little and a recovered one is found. */
#define RETRY_MIN_NS 10000000u
#define RETRY_MAX_NS 1000000000u
#define HDR          VIRTIO_NET_HDR_BYTES
#define CHAIN        2u /* descriptors per frame: header and buffer */

static const uint16_t device_ids[] = {VIRTIO_PCI_ID_NET_MODERN, VIRTIO_PCI_ID_NET_TRANS};

enum dev_state {
    DEV_DOWN,        /* being reset or waiting for a retry */
    DEV_UP,          /* DRIVER_OK, queues live */
    DEV_UNSUPPORTED, /* not a device we drive: stay idle */
};

static struct net_drv drv;
static struct net_drv_stats *stats;
static struct hw_device *dev;
static microkit_channel irq_ch;
static struct vpci vp;
static struct hw_dma rx_mem, tx_mem, ring_mem;
static enum dev_state state = DEV_DOWN;
static uint64_t features;
static uint16_t queue_size_cfg;

static struct virtq rxq, txq;
static bool vqs_live; /* rxq and txq hold allocations */
static uint64_t rx_bell, tx_bell;
static uint8_t *rx_hdr, *tx_hdr; /* one slot per descriptor, used by heads */
static uint64_t rx_hdr_dev, tx_hdr_dev;

/* tx_dma buffers finished with, waiting for room on drv_tx.free. */
static uint32_t *tx_back;
static uint32_t tx_nback;

static bool probed;
static uint64_t retry_ns = RETRY_MIN_NS, retry_at, up_since;

/* ---- drv_dma layout ------------------------------------------------------- */

struct layout {
    uint16_t rxq, txq;
    size_t rx_vq, tx_vq, rx_hdr, tx_hdr, bytes;
};

static size_t align_up(size_t v, size_t a)
{
    return (v + a - 1) & ~(a - 1);
}

static uint16_t pow2_floor(uint64_t v)
{
    uint16_t p = 1;
    while (p <= VIRTQ_MAX_SIZE / 2 && (uint64_t)p * 2 <= v)
        p = (uint16_t)(p * 2);
    return p;
}

static void layout_at(struct layout *l)
{
    struct vq_layout a, b;
    vq_layout(l->rxq, &a);
    vq_layout(l->txq, &b);
    l->rx_vq = 0;
    l->tx_vq = align_up(a.bytes, 64);
    l->rx_hdr = align_up(l->tx_vq + b.bytes, 64);
    l->tx_hdr = align_up(l->rx_hdr + (size_t)l->rxq * HDR, 64);
    l->bytes = l->tx_hdr + (size_t)l->txq * HDR;
}

/* Both queues as large as the device, the config and drv_dma allow. */
static bool layout_fit(uint16_t rx_max, uint16_t tx_max, size_t room, struct layout *l)
{
    uint16_t want = pow2_floor(queue_size_cfg);
    l->rxq = rx_max < want ? rx_max : want;
    l->txq = tx_max < want ? tx_max : want;
    for (;;) {
        if (l->rxq < CHAIN || l->txq < CHAIN)
            return false;
        layout_at(l);
        if (l->bytes <= room)
            return true;
        if (l->rxq >= l->txq)
            l->rxq /= 2;
        else
            l->txq /= 2;
    }
}

/* ---- buffers back from the device ---------------------------------------- */

static void rx_keep(uint32_t i)
{
    drv.rx_stack[drv.rx_nfree++] = i;
}

static void rx_reclaim(void *ctx, uint32_t i)
{
    rx_keep(i);
}

static void tx_done(uint32_t i)
{
    tx_back[tx_nback++] = i;
}

/* A frame the device took but will never send. */
static void tx_reclaim(void *ctx, uint32_t i)
{
    stats->tx.drops[NET_DROP_DEVICE]++;
    tx_done(i);
}

/* Returns finished tx buffers as drv_tx.free has room.  drv_tx.free holds
 * every tx buffer, so it is only short of room if the tx virt lies about
 * its head; we then wait to be woken rather than lose a buffer. */
static void tx_give_back(void)
{
    while (drv.tx_synced && tx_nback) {
        if (dmq_space(&drv.tx_free) == 0 && !dmq_producer_sleep(&drv.tx_free))
            break;
        net_drv_tx_return(&drv, tx_back[--tx_nback]);
    }
}

/* ---- device bring-up and recovery ---------------------------------------- */

static void link_update(void)
{
    uint64_t up = 1;
    if (features & VIRTIO_BIT(VIRTIO_NET_F_STATUS)) {
        uint16_t st;
        if (vpci_devcfg_read(&vp, VIRTIO_NET_CFG_STATUS, &st, sizeof(st)) == 0)
            up = st & VIRTIO_NET_S_LINK_UP;
    }
    if (up != stats->link_up)
        devmux_log("link %s", up ? "up" : "down");
    stats->link_up = up;
}

/* Bring-up runs from the timer, never from inside a fault, so a device
 * that fails again at once cannot recurse.  One that keeps failing is
 * retried less and less often. */
static void retry_later(bool quick)
{
    uint64_t delay = quick ? SOON_NS : retry_ns;
    if (!quick)
        retry_ns = retry_ns * 2 < RETRY_MAX_NS ? retry_ns * 2 : RETRY_MAX_NS;
    retry_at = devmux_now_ns() + delay;
    net_drv_timer(&drv, delay);
}

static void give_up(const char *why)
{
    state = DEV_UNSUPPORTED;
    stats->link_up = 0;
    devmux_log("%s; the device stays idle and frames to send are dropped", why);
}

static bool setup_queues(void)
{
    uint16_t rx_max, tx_max;
    if (vpci_queue_max(&vp, VIRTIO_NET_Q_RX, &rx_max) ||
        vpci_queue_max(&vp, VIRTIO_NET_Q_TX, &tx_max))
        return false;
    if (!rx_max || (rx_max & (rx_max - 1)) || !tx_max || (tx_max & (tx_max - 1))) {
        snprintf(vp.why, sizeof(vp.why), "queue sizes %u (rx) and %u (tx) are not powers of two",
                 rx_max, tx_max);
        return false;
    }
    struct layout l;
    if (!layout_fit(rx_max, tx_max, ring_mem.size, &l)) {
        snprintf(vp.why, sizeof(vp.why), "no queue fits the %zu bytes of drv_dma", ring_mem.size);
        return false;
    }
    if (vqs_live) {
        vq_fini(&rxq);
        vq_fini(&txq);
        vqs_live = false;
    }
    uint8_t *base = ring_mem.cpu;
    bool eidx = features & VIRTIO_BIT(VIRTIO_F_EVENT_IDX);
    if (vq_init(&rxq, base + l.rx_vq, ring_mem.dev + l.rx_vq, l.rxq, eidx) ||
        vq_init(&txq, base + l.tx_vq, ring_mem.dev + l.tx_vq, l.txq, eidx)) {
        devmux_log("out of memory");
        abort();
    }
    vqs_live = true;
    rx_hdr = base + l.rx_hdr;
    tx_hdr = base + l.tx_hdr;
    rx_hdr_dev = ring_mem.dev + l.rx_hdr;
    tx_hdr_dev = ring_mem.dev + l.tx_hdr;
    memset(rx_hdr, 0, (size_t)l.rxq * HDR);
    memset(tx_hdr, 0, (size_t)l.txq * HDR);
    return vpci_queue_setup(&vp, VIRTIO_NET_Q_RX, l.rxq, rxq.desc_dev, rxq.avail_dev, rxq.used_dev,
                            &rx_bell) == 0 &&
           vpci_queue_setup(&vp, VIRTIO_NET_Q_TX, l.txq, txq.desc_dev, txq.avail_dev, txq.used_dev,
                            &tx_bell) == 0;
}

static void rx_fill(void);
static bool tx_poll(void);

/* The whole init sequence, from whatever state the device is in (a
 * previous incarnation may have died with the device running).  On failure
 * the device is left reset and a retry is scheduled. */
static void dev_start(void)
{
    state = DEV_DOWN;
    retry_at = 0;
    if (!probed) {
        int err = vpci_probe(&vp, dev, device_ids, sizeof(device_ids) / sizeof(device_ids[0]));
        if (err == -ENODEV) {
            give_up(vp.why);
            return;
        }
        if (err)
            goto fail;
        probed = true;
    }
    int err = hw_reset(dev);
    if (err)
        devmux_log("hw_reset: %d", err);
    if (vpci_decode(&vp) || vpci_reset(&vp))
        goto fail;
    vpci_set_status(&vp, VIRTIO_STATUS_ACKNOWLEDGE);
    vpci_set_status(&vp, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    uint64_t offered = vpci_device_features(&vp);
    if ((err = hw_error(dev))) {
        snprintf(vp.why, sizeof(vp.why), "reading features failed (%d)", err);
        goto fail;
    }
    if (!(offered & VIRTIO_BIT(VIRTIO_F_VERSION_1))) {
        vpci_set_status(&vp, VIRTIO_STATUS_FAILED);
        give_up("device does not offer VIRTIO_F_VERSION_1");
        return;
    }
    /* Only what this driver handles: no merged buffers (one buffer per
     * frame is the network's model), no control queue, no offloads (the
     * virtualisers check whole, finished frames). */
    features = VIRTIO_BIT(VIRTIO_F_VERSION_1) |
               (offered & (VIRTIO_BIT(VIRTIO_NET_F_MAC) | VIRTIO_BIT(VIRTIO_NET_F_STATUS) |
                           VIRTIO_BIT(VIRTIO_F_EVENT_IDX)));
    if (vpci_set_features(&vp, features) || !setup_queues())
        goto fail;
    if ((err = hw_enable(dev))) {
        snprintf(vp.why, sizeof(vp.why), "hw_enable: %d", err);
        goto fail;
    }
    vpci_set_status(&vp, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
                             VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
    uint8_t st = vpci_status(&vp);
    if ((err = hw_error(dev))) {
        snprintf(vp.why, sizeof(vp.why), "status read failed (%d)", err);
        goto fail;
    }
    if (st & (VIRTIO_STATUS_NEEDS_RESET | VIRTIO_STATUS_FAILED) ||
        !(st & VIRTIO_STATUS_DRIVER_OK)) {
        snprintf(vp.why, sizeof(vp.why), "device status %#x after DRIVER_OK", st);
        goto fail;
    }
    uint8_t mac[NET_MAC_LEN] = {0};
    bool have_mac = (features & VIRTIO_BIT(VIRTIO_NET_F_MAC)) &&
                    vpci_devcfg_read(&vp, VIRTIO_NET_CFG_MAC, mac, sizeof(mac)) == 0;
    state = DEV_UP;
    up_since = devmux_now_ns();
    stats->link_up = 0;
    link_update();
    char macs[24] = "none";
    if (have_mac)
        snprintf(macs, sizeof(macs), "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2],
                 mac[3], mac[4], mac[5]);
    devmux_log("virtio-net %04x:%04x up: MAC %s, link %s, queues %u rx / %u tx, features %#llx",
               hw_info(dev)->vendor, hw_info(dev)->device, macs, stats->link_up ? "up" : "down",
               rxq.size, txq.size, (unsigned long long)features);
    rx_fill();
    tx_poll();
    return;
fail:
    stats->device_resets++;
    net_log_limited(&drv.log, "device setup failed: %s; retrying", vp.why);
    hw_reset(dev);
    hw_error(dev);
    retry_later(false);
}

/* The device broke a rule: take every buffer back and start it again.
 * Its DMA is stopped (hw_reset turns bus mastering off) before any buffer
 * it held is reused or handed on. */
static void dev_fault(struct net_counters *c, const char *what)
{
    /* A device that ran well for a while gets a second chance at once. */
    bool quick = devmux_now_ns() - up_since >= RETRY_MAX_NS;
    if (quick)
        retry_ns = RETRY_MIN_NS;
    stats->device_resets++;
    if (c)
        c->drops[NET_DROP_DEVICE]++;
    net_log_limited(&drv.log, "device fault: %s; resetting it (reset %llu)", what,
                    (unsigned long long)stats->device_resets);
    state = DEV_DOWN;
    stats->link_up = 0;
    hw_reset(dev);
    vpci_reset(&vp);
    hw_error(dev);
    if (vqs_live) {
        vq_reclaim(&rxq, rx_reclaim, NULL);
        vq_reclaim(&txq, tx_reclaim, NULL);
    }
    tx_give_back();
    if (drv.tx_synced)
        net_drv_tx_flush(&drv);
    retry_later(quick);
}

/* Doorbell writes are posted: a failure shows in the latched error. */
static void kick(struct virtq *q, uint64_t bell, uint16_t qi)
{
    if (vq_kick_prepare(q))
        vpci_notify(&vp, bell, qi);
}

static bool dev_ok(void)
{
    int err = hw_error(dev);
    if (!err)
        return true;
    char what[64];
    snprintf(what, sizeof(what), "register access failed (%d)", err);
    dev_fault(NULL, what);
    return false;
}

/* ---- RX ------------------------------------------------------------------ */

/* Posts every rx buffer we hold, one doorbell for all of them. */
static void rx_fill(void)
{
    if (state != DEV_UP || !drv.rx_synced)
        return;
    if (drv.rx_nfree < drv.rx_pool.count)
        net_drv_rx_refill(&drv);
    uint32_t size = drv.rx_pool.buf_size;
    while (drv.rx_nfree && vq_room(&rxq) >= CHAIN) {
        uint32_t i = drv.rx_stack[--drv.rx_nfree];
        int head = vq_next_head(&rxq);
        const uint8_t *buf = (const uint8_t *)drv.rx_buffers->addr + (size_t)i * size;
        struct vq_seg s[CHAIN] = {
            {rx_hdr_dev + (uint64_t)head * HDR, HDR, true},
            {hw_dma_addr(&rx_mem, buf), size, true},
        };
        vq_add(&rxq, s, CHAIN, i);
    }
    kick(&rxq, rx_bell, VIRTIO_NET_Q_RX);
    if (dev_ok() && vq_arm(&rxq, 0))
        net_drv_timer(&drv, SOON_NS);
}

/* Takes at most BATCH received frames.  Returns true if work is left. */
static bool rx_poll(void)
{
    if (state != DEV_UP)
        return false;
    struct net_counters *c = &stats->rx;
    bool more = false;
    for (uint32_t n = 0;; n++) {
        if (n == BATCH) {
            more = true;
            break;
        }
        uint32_t i, len;
        int r = vq_get(&rxq, &i, &len);
        if (r == 0)
            break;
        if (r < 0) {
            net_drv_rx_publish(&drv);
            dev_fault(c, vq_strerror(r));
            return false;
        }
        if (len < HDR) {
            rx_keep(i);
            net_drv_rx_publish(&drv);
            dev_fault(c, "received length shorter than the virtio-net header");
            return false;
        }
        uint32_t flen = len - HDR; /* at most the buffer: vq_get checked */
        if (!drv.rx_synced) {
            c->drops[NET_DROP_PEER_DOWN]++;
            rx_keep(i);
        } else if (flen < NET_MIN_FRAME) {
            c->drops[NET_DROP_BAD_LEN]++;
            rx_keep(i);
        } else if (dmq_space(&drv.rx_active) == 0) {
            c->drops[NET_DROP_QUEUE_FULL]++;
            rx_keep(i);
        } else {
            net_drv_rx_put(&drv, i, flen);
        }
    }
    net_drv_rx_publish(&drv);
    rx_fill();
    return more;
}

/* ---- TX ------------------------------------------------------------------ */

static bool tx_harvest(void)
{
    uint32_t i, len;
    int r;
    while ((r = vq_get(&txq, &i, &len)) > 0)
        tx_done(i);
    if (r < 0) {
        dev_fault(&stats->tx, vq_strerror(r));
        return false;
    }
    return true;
}

/* Moves at most BATCH frames from drv_tx.active to the device.  Returns
 * true if work is left. */
static bool tx_poll(void)
{
    if (!drv.tx_synced)
        return false;
    if (state == DEV_UP && !tx_harvest())
        return false; /* reset; the buffers went back */
    tx_give_back();
    struct net_counters *c = &stats->tx;
    struct dmq_desc d;
    uint32_t i, budget = BATCH;
    bool more = false;
    for (;;) {
        if (budget == 0) {
            more = true;
            break;
        }
        /* Ring full: completions bring us back, not drv_tx.active. */
        if (state == DEV_UP && vq_room(&txq) < CHAIN)
            break;
        int got = net_drv_tx_take(&drv, &d, &i);
        if (got < 0)
            break;
        budget--;
        if (got == 0)
            continue;
        if (d.len < NET_MIN_FRAME || d.len > NET_MAX_FRAME) {
            c->drops[NET_DROP_BAD_LEN]++;
            tx_done(i);
            continue;
        }
        if (state != DEV_UP) {
            /* Holding frames for a device that may never return would
             * starve the network (local traffic uses tx_dma too). */
            c->drops[NET_DROP_DEVICE]++;
            tx_done(i);
            continue;
        }
        int head = vq_next_head(&txq);
        uint8_t *h = tx_hdr + (size_t)head * HDR;
        memset(h, 0, HDR); /* no offloads: nothing for the device to do */
        const uint8_t *buf = (const uint8_t *)drv.tx_buffers->addr + d.offset;
        struct vq_seg s[CHAIN] = {
            {tx_hdr_dev + (uint64_t)head * HDR, HDR, false},
            {hw_dma_addr(&tx_mem, buf), d.len, false},
        };
        vq_add(&txq, s, CHAIN, i);
        c->packets++;
        c->bytes += d.len;
    }
    tx_give_back();
    net_drv_tx_flush(&drv);
    if (state != DEV_UP)
        return more;
    kick(&txq, tx_bell, VIRTIO_NET_Q_TX);
    if (!dev_ok())
        return false;
    /* One interrupt when everything in flight is done: enough to hand the
     * buffers back, and few when the tx virt keeps us busy anyway. */
    if (txq.outstanding) {
        if (vq_arm(&txq, (uint16_t)(txq.outstanding - 1)))
            more = true;
    } else {
        vq_disarm(&txq);
    }
    return more;
}

/* ---- interrupts -------------------------------------------------------- */

static void irq(void)
{
    if (state != DEV_UP)
        return;
    uint8_t isr;
    if (vpci_isr(&vp, &isr)) {
        dev_fault(NULL, vp.why);
        return;
    }
    if (isr & VIRTIO_ISR_CONFIG) {
        uint8_t st = vpci_status(&vp);
        if (!dev_ok())
            return;
        if (st & VIRTIO_STATUS_NEEDS_RESET) {
            dev_fault(NULL, "device set DEVICE_NEEDS_RESET");
            return;
        }
        link_update();
    }
}

/* ---- entry points -------------------------------------------------------- */

static void poll_all(void)
{
    net_drv_check_sync(&drv);
    bool more = tx_poll();
    if (rx_poll())
        more = true;
    if (more)
        net_drv_timer(&drv, SOON_NS);
}

static void dma_region(const char *net, const char *suffix, struct hw_dma *m)
{
    char name[128];
    snprintf(name, sizeof(name), "%s.%s", net, suffix);
    if (hw_dma_region(name, m)) {
        devmux_log("region '%s' must be device-visible (machine memory) for net-virtio", name);
        abort();
    }
}

void init(void)
{
    const char *net = devmux_config_str("net", NULL);
    if (!net) {
        devmux_log("config 'net' (the network's name) is required");
        abort();
    }
    net_drv_init(&drv, net);
    stats = drv.stats;
    dma_region(net, NET_REGION_RX_DMA, &rx_mem);
    dma_region(net, NET_REGION_TX_DMA, &tx_mem);
    dma_region(net, NET_REGION_DRV_DMA, &ring_mem);
    tx_back = calloc(drv.tx_pool.count, sizeof(*tx_back));
    if (!tx_back) {
        devmux_log("out of memory");
        abort();
    }
    uint64_t qs = devmux_config_u64("queue_size", QUEUE_SIZE_DEFAULT);
    queue_size_cfg = pow2_floor(qs < CHAIN ? CHAIN : qs);

    dev = hw_open("nic", &irq_ch);
    if (!dev) {
        devmux_log("no device 'nic' is granted to this component");
        abort();
    }
    net_drv_start(&drv);
    stats->link_up = 0;
    dev_start();
    devmux_log("net %s: %u rx / %u tx buffers of %u / %u B; restart %u%s", net, drv.rx_pool.count,
               drv.tx_pool.count, drv.rx_pool.buf_size, drv.tx_pool.buf_size, devmux_restarts(),
               drv.rx_synced && drv.tx_synced ? "" : "; waiting for the virtualisers");
    poll_all();
}

void notified(microkit_channel ch)
{
    if (ch == irq_ch) {
        net_drv_check_sync(&drv);
        irq();
        bool more = tx_poll();
        if (rx_poll())
            more = true;
        microkit_irq_ack(irq_ch);
        if (more)
            net_drv_timer(&drv, SOON_NS);
        return;
    }
    switch (ch) {
    case NET_DRV_CH_RX:
        net_drv_check_sync(&drv);
        rx_fill();
        break;
    case NET_DRV_CH_TX:
        net_drv_check_sync(&drv);
        if (tx_poll())
            net_drv_timer(&drv, SOON_NS);
        break;
    case DEVMUX_TIMER_CHANNEL:
        drv.timer_at = 0;
        if (state == DEV_DOWN && retry_at) {
            uint64_t now = devmux_now_ns();
            if (now >= retry_at)
                dev_start();
            else
                net_drv_timer(&drv, retry_at - now);
        }
        poll_all();
        break;
    default:
        break;
    }
}

void peer_ready(microkit_channel ch)
{
    net_drv_peer_ready(ch);
}
