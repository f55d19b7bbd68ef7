/*
 * net-packet: the network driver for a host Linux interface.  It drives an
 * AF_PACKET socket with TPACKET_V3 mmap rings (the kernel's
 * Documentation/networking/packet_mmap.rst) and speaks the driver side of
 * include/devmux/net.h:
 *
 *   RX  kernel ring block -> copy into an rx_dma buffer taken from
 *       drv_rx.free -> drv_rx.active (to the rx virtualiser)
 *   TX  drv_tx.active (from the tx virtualiser) -> copy into a TX ring frame
 *       -> the tx_dma buffer goes straight back on drv_tx.free; one sendto()
 *       per batch makes the kernel send what the ring holds
 *
 * The supervisor opened, bound and configured the socket before the sandbox
 * closed; here only setsockopt/getsockopt, mmap and sendto touch it.  Its
 * readiness arrives as an IRQ (notified(irq), then microkit_irq_ack); one
 * one-shot timer serves both "continue a bounded batch soon" and "retry a
 * full TX ring".
 *
 * Config: net (required, the network's name); rx_blocks (RX ring blocks of
 * 64 KiB, default 16); tx_frames (TX ring frames of 2 KiB, default 256);
 * interface (optional, only used to word a hint in the log).
 */
#include <devmux/microkit.h>
#include <devmux/net.h>
#include <devmux/queue.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include "net/common/netlib.h"

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif

/* ---- sizes ----------------------------------------------------------------
 * RX: TPACKET_V3 packs frames back to back inside a block, so a 64 KiB block
 * holds ~40 full-size (1514 byte) frames and hundreds of small ones.  16
 * blocks (1 MiB) absorb ~640 full-size frames while the driver is not
 * scheduled.  The kernel hands a block over only when it is full or its
 * retire timer expires; see RX_RETIRE_MS.
 * TX: V3 transmits from fixed-size frames (no blocks); 2 KiB fits any
 * Ethernet frame behind the 48-byte header.  256 frames = 512 KiB. */
#define RX_BLOCK_SIZE     (64u * 1024)
#define RX_BLOCKS_DEFAULT 16u
#define RX_BLOCKS_MAX     1024u
#define RING_FRAME_SIZE   2048u
#define TX_BLOCK_SIZE     (64u * 1024)
#define TX_FRAMES_PER_BLK (TX_BLOCK_SIZE / RING_FRAME_SIZE)
#define TX_FRAMES_DEFAULT 256u
#define TX_FRAMES_MAX     8192u
/* Where the kernel reads a TX frame's data without PACKET_TX_HAS_OFF. */
#define TX_DATA_OFF (TPACKET3_HDRLEN - sizeof(struct sockaddr_ll))
#define TX_DATA_MAX (RING_FRAME_SIZE - TX_DATA_OFF)

/* Block retire timeout.  V3 only signals readiness when a block is retired:
 * when it is full, or when this timer finds it partly filled.  So under low
 * load a lone frame waits up to this long; the kernel's default (derived
 * from the link speed, often 8 ms or more) is far too slow for request /
 * response traffic.  1 ms is the smallest value the interface takes.  The
 * cost: at low rates each retired block carries only a few frames, so the
 * driver wakes up to ~1000 times a second per busy interface, and the ring
 * holds fewer frames than its bytes suggest (a block with one 60-byte frame
 * still uses the whole block until returned).  Under load blocks fill before
 * the timer and the timeout costs nothing. */
#define RX_RETIRE_MS 1u

/* Work per event, per direction: a flood one way cannot keep the event loop
 * from serving the other; leftover work continues from the timer. */
#define BATCH        64u
#define SOON_NS      1000u     /* continue a batch */
#define TX_RETRY_MIN 50000u    /* TX ring full: first retry after 50 us */
#define TX_RETRY_MAX 10000000u /* ... backing off to 10 ms (link down) */

/* TX completion may carry timestamp bits next to TP_STATUS_AVAILABLE. */
#define TX_TS_BITS (TP_STATUS_TS_SOFTWARE | TP_STATUS_TS_SYS_HARDWARE | TP_STATUS_TS_RAW_HARDWARE)

static int dev_fd = -1;
static microkit_channel irq_ch;
static uint8_t *ring;
static size_t ring_len;
static uint32_t rx_nblocks;
static uint8_t *tx_ring;
static uint32_t tx_nframes;

/* RX cursor: block, frame number within it and that frame's offset. */
static uint32_t rx_blk, rx_pkt, rx_off;
/* TX cursor: the next ring frame to fill. */
static uint32_t tx_cur;
static uint64_t tx_retry_ns = TX_RETRY_MIN;
static bool tx_kick_pending; /* frames may wait in the ring for a kick */

/* The queues, pools, handshake and counters towards the virtualisers. */
static struct net_drv drv;
static struct net_drv_stats *stats;
static uint8_t *rx_bufs;
static const uint8_t *tx_bufs;

static bool csum_hint_logged;

/* ---- setup --------------------------------------------------------------- */

static void sopt(int opt, const void *val, socklen_t len, const char *what)
{
    if (setsockopt(dev_fd, SOL_PACKET, opt, val, len)) {
        devmux_log("setsockopt %s: %s", what, strerror(errno));
        abort();
    }
}

/* Frees rings a previous incarnation left on the socket (the descriptor
 * outlives us if the supervisor keeps it): the kernel only allows that, and
 * changing the version, while nothing maps them, which is true now. */
static void drop_rings(void)
{
    struct tpacket_req3 none = {0};
    setsockopt(dev_fd, SOL_PACKET, PACKET_RX_RING, &none, sizeof(none));
    setsockopt(dev_fd, SOL_PACKET, PACKET_TX_RING, &none, sizeof(none));
}

static void setup_rings(void)
{
    int v = TPACKET_V3;
    if (setsockopt(dev_fd, SOL_PACKET, PACKET_VERSION, &v, sizeof(v)) && errno == EBUSY)
        drop_rings();
    sopt(PACKET_VERSION, &v, sizeof(v), "PACKET_VERSION");

    /* Our own transmissions would otherwise come back as received frames.
     * Older kernels lack it; rx_frame() filters PACKET_OUTGOING as well. */
    int one = 1;
    if (setsockopt(dev_fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one)))
        devmux_log("PACKET_IGNORE_OUTGOING: %s; filtering outgoing frames by hand",
                   strerror(errno));
    /* A TX frame the kernel refuses (malformed, over the MTU) is skipped
     * and marked available again.  Without this the kernel stops at that
     * frame (TP_STATUS_WRONG_FORMAT) and never sends anything after it. */
    sopt(PACKET_LOSS, &one, sizeof(one), "PACKET_LOSS");

    struct tpacket_req3 rx = {
        .tp_block_size = RX_BLOCK_SIZE,
        .tp_block_nr = rx_nblocks,
        .tp_frame_size = RING_FRAME_SIZE,
        .tp_frame_nr = rx_nblocks * (RX_BLOCK_SIZE / RING_FRAME_SIZE),
        .tp_retire_blk_tov = RX_RETIRE_MS,
    };
    sopt(PACKET_RX_RING, &rx, sizeof(rx), "PACKET_RX_RING");
    /* V3 TX: plain frames; the block-only fields must stay 0. */
    struct tpacket_req3 tx = {
        .tp_block_size = TX_BLOCK_SIZE,
        .tp_block_nr = tx_nframes / TX_FRAMES_PER_BLK,
        .tp_frame_size = RING_FRAME_SIZE,
        .tp_frame_nr = tx_nframes,
    };
    sopt(PACKET_TX_RING, &tx, sizeof(tx), "PACKET_TX_RING");

    /* One mapping, laid out by the kernel: RX ring, then TX ring. */
    size_t rx_len = (size_t)RX_BLOCK_SIZE * rx_nblocks;
    ring_len = rx_len + (size_t)TX_BLOCK_SIZE * tx.tp_block_nr;
    void *m = mmap(NULL, ring_len, PROT_READ | PROT_WRITE, MAP_SHARED, dev_fd, 0);
    if (m == MAP_FAILED) {
        devmux_log("mmap of the packet rings (%zu bytes): %s", ring_len, strerror(errno));
        abort();
    }
    ring = m;
    tx_ring = ring + rx_len;
    /* Frames that arrived between the supervisor's bind and the ring setup
     * sit on the socket's ordinary queue, which would keep the socket
     * readable (an interrupt that never clears).  Drain them once. */
    uint8_t scratch[64];
    while (recv(dev_fd, scratch, sizeof(scratch), MSG_DONTWAIT | MSG_TRUNC) >= 0)
        ;
}

/* ---- RX ------------------------------------------------------------------ */

static struct tpacket_block_desc *rx_block(uint32_t b)
{
    return (struct tpacket_block_desc *)(ring + (size_t)b * RX_BLOCK_SIZE);
}

/* One received frame.  Returns false if the ring's own bookkeeping is
 * inconsistent (the rest of the block is then given up). */
static bool rx_frame(const uint8_t *blk, struct tpacket3_hdr *h, uint32_t off)
{
    struct net_counters *c = &stats->rx;
    uint32_t status = h->tp_status, snap = h->tp_snaplen, mac = h->tp_mac;
    if (mac > RX_BLOCK_SIZE - off || snap > RX_BLOCK_SIZE - off - mac)
        return false;
    const uint8_t *data = blk + off + mac;

    const struct sockaddr_ll *sll =
        (const void *)((const uint8_t *)h + TPACKET_ALIGN(sizeof(struct tpacket3_hdr)));
    if (mac >= TPACKET_ALIGN(sizeof(struct tpacket3_hdr)) + sizeof(*sll) &&
        sll->sll_pkttype == PACKET_OUTGOING)
        return true; /* our own transmission (no PACKET_IGNORE_OUTGOING) */
    if (!drv.rx_synced) {
        c->drops[NET_DROP_PEER_DOWN]++;
        return true;
    }
    if (status & TP_STATUS_CSUMNOTREADY) {
        /* Checksum left for hardware that does not exist here: typically
         * the far end of a veth with tx checksum offload on. */
        c->drops[NET_DROP_DEVICE]++;
        if (!csum_hint_logged) {
            csum_hint_logged = true;
            devmux_log("dropping frames with unfinished checksums; turn off tx checksum "
                       "offload on the peer: ethtool -K %s tx off",
                       devmux_config_str("interface", "<if>"));
        }
        return true;
    }
    /* A tag the kernel took out of the frame (VLAN offload) is put back. */
    bool vlan = status & TP_STATUS_VLAN_VALID;
    uint32_t len = snap + (vlan ? 4 : 0);
    if (h->tp_len > snap || snap < NET_MIN_FRAME || len > drv.rx_pool.buf_size) {
        c->drops[NET_DROP_BAD_LEN]++;
        return true;
    }
    if (drv.rx_nfree == 0)
        net_drv_rx_refill(&drv);
    if (drv.rx_nfree == 0) {
        c->drops[NET_DROP_NO_BUFFER]++;
        return true;
    }
    if (dmq_space(&drv.rx_active) == 0) {
        c->drops[NET_DROP_QUEUE_FULL]++;
        return true;
    }
    uint32_t i = drv.rx_stack[--drv.rx_nfree];
    uint8_t *dst = rx_bufs + (size_t)i * drv.rx_pool.buf_size;
    if (vlan) {
        uint16_t tpid = (status & TP_STATUS_VLAN_TPID_VALID) ? h->hv1.tp_vlan_tpid : ETH_P_8021Q;
        uint16_t tci = h->hv1.tp_vlan_tci;
        memcpy(dst, data, 2 * NET_MAC_LEN);
        uint8_t tag[4] = {tpid >> 8, tpid & 0xff, tci >> 8, tci & 0xff};
        memcpy(dst + 2 * NET_MAC_LEN, tag, sizeof(tag));
        memcpy(dst + 2 * NET_MAC_LEN + 4, data + 2 * NET_MAC_LEN, snap - 2 * NET_MAC_LEN);
    } else {
        memcpy(dst, data, snap);
    }
    net_drv_rx_put(&drv, i, len);
    return true;
}

/* Walks retired blocks, at most BATCH frames.  Returns true if work is left. */
static bool rx_poll(void)
{
    uint32_t budget = BATCH;
    if (drv.rx_synced && drv.rx_nfree < drv.rx_pool.count)
        net_drv_rx_refill(&drv);
    for (;;) {
        struct tpacket_block_desc *bd = rx_block(rx_blk);
        if (!(__atomic_load_n(&bd->hdr.bh1.block_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER))
            break;
        uint32_t npkts = bd->hdr.bh1.num_pkts;
        if (npkts)
            stats->link_up = 1;
        if (rx_pkt == 0)
            rx_off = bd->hdr.bh1.offset_to_first_pkt;
        for (; rx_pkt < npkts; rx_pkt++) {
            if (budget == 0) {
                net_drv_rx_publish(&drv);
                return true;
            }
            budget--;
            struct tpacket3_hdr *h = (struct tpacket3_hdr *)((uint8_t *)bd + rx_off);
            if (rx_off < sizeof(*bd) || rx_off > RX_BLOCK_SIZE - sizeof(*h) ||
                !rx_frame((uint8_t *)bd, h, rx_off) ||
                (rx_pkt + 1 < npkts && h->tp_next_offset == 0)) {
                stats->rx.drops[NET_DROP_DEVICE] += npkts - rx_pkt;
                net_log_limited(&drv.log, "RX block %u is inconsistent at frame %u; skipping it",
                                rx_blk, rx_pkt);
                break;
            }
            rx_off += h->tp_next_offset;
        }
        /* Done with the block: the kernel may fill it again. */
        __atomic_store_n(&bd->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
        rx_blk = (rx_blk + 1) % rx_nblocks;
        rx_pkt = 0;
        rx_off = 0;
    }
    net_drv_rx_publish(&drv);
    return false;
}

/* After each interrupt: frames the kernel dropped because the ring was full
 * (reading the statistics resets them), and any pending socket error.  An
 * error (ENETDOWN when the interface goes down) makes epoll report the
 * socket ready until it is read, which would turn into an interrupt storm. */
static void dev_status(void)
{
    struct tpacket_stats_v3 ks;
    socklen_t len = sizeof(ks);
    if (getsockopt(dev_fd, SOL_PACKET, PACKET_STATISTICS, &ks, &len) == 0)
        stats->rx.drops[NET_DROP_DEVICE] += ks.tp_drops;
    int err = 0;
    len = sizeof(err);
    if (getsockopt(dev_fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err) {
        net_log_limited(&drv.log, "device: %s", strerror(err));
        if (err == ENETDOWN || err == ENXIO || err == ENODEV)
            stats->link_up = 0;
    }
}

/* ---- TX ------------------------------------------------------------------ */

static struct tpacket3_hdr *tx_frame(uint32_t f)
{
    return (struct tpacket3_hdr *)(tx_ring + (size_t)f * RING_FRAME_SIZE);
}

/* Asks the kernel to send what the ring holds.  Returns false if it could
 * not (frames then stay queued, SEND_REQUEST, for the next kick). */
static bool tx_kick(void)
{
    if (sendto(dev_fd, NULL, 0, MSG_DONTWAIT, NULL, 0) >= 0) {
        tx_kick_pending = false;
        stats->link_up = 1;
        return true;
    }
    int e = errno;
    tx_kick_pending = true;
    if (e == ENETDOWN || e == ENXIO)
        stats->link_up = 0;
    if (e != EAGAIN && e != ENOBUFS && e != EINTR)
        net_log_limited(&drv.log, "sending: %s", strerror(e));
    return false;
}

/* Moves at most BATCH frames from drv_tx.active into the ring.  Returns true
 * if work is left. */
static bool tx_poll(void)
{
    if (!drv.tx_synced)
        return false;
    struct net_counters *c = &stats->tx;
    struct dmq_desc d;
    uint32_t i, queued = 0, budget = BATCH;
    bool more = false, full = false;
    for (;;) {
        if (budget == 0) {
            more = true;
            break;
        }
        struct tpacket3_hdr *h = tx_frame(tx_cur);
        uint32_t status = __atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE) & ~TX_TS_BITS;
        if (status == TP_STATUS_WRONG_FORMAT) {
            /* Refused by the kernel (only without PACKET_LOSS): count it
             * once and reuse the frame. */
            c->drops[NET_DROP_DEVICE]++;
            __atomic_store_n(&h->tp_status, TP_STATUS_AVAILABLE, __ATOMIC_RELAXED);
        } else if (status != TP_STATUS_AVAILABLE) {
            full = true; /* still queued or being sent */
            break;
        }
        /* Room to return the buffer: drv_tx.free holds every tx buffer, so
         * it is only ever full if the tx virt lies about its head. */
        if (dmq_space(&drv.tx_free) == 0) {
            if (dmq_producer_sleep(&drv.tx_free))
                continue;
            break;
        }
        int got = net_drv_tx_take(&drv, &d, &i);
        if (got < 0)
            break;
        budget--;
        if (got == 0)
            continue;
        uint32_t len = d.len;
        if (len >= NET_MIN_FRAME && len <= NET_MAX_FRAME && len <= TX_DATA_MAX) {
            memcpy((uint8_t *)h + TX_DATA_OFF, tx_bufs + d.offset, len);
            h->tp_len = len;
            h->tp_snaplen = len;
            h->tp_next_offset = 0;
            __atomic_store_n(&h->tp_status, TP_STATUS_SEND_REQUEST, __ATOMIC_RELEASE);
            tx_cur = (tx_cur + 1) % tx_nframes;
            queued++;
            c->packets++;
            c->bytes += len;
        } else {
            c->drops[NET_DROP_BAD_LEN]++;
        }
        /* The frame is in the ring (or refused): the buffer goes back now. */
        net_drv_tx_return(&drv, i);
    }
    net_drv_tx_flush(&drv);
    if (queued)
        tx_retry_ns = TX_RETRY_MIN;
    bool kicked = true;
    if (queued || full || tx_kick_pending)
        kicked = tx_kick();
    if (full || !kicked) {
        /* A frame slot coming free raises no event we get (the runtime
         * watches the socket for input only), so poll, backing off while
         * nothing moves (e.g. the link is down). */
        net_drv_timer(&drv, tx_retry_ns);
        tx_retry_ns = tx_retry_ns * 2 < TX_RETRY_MAX ? tx_retry_ns * 2 : TX_RETRY_MAX;
    }
    return more;
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

void init(void)
{
    const char *net = devmux_config_str("net", NULL);
    if (!net) {
        devmux_log("config 'net' (the network's name) is required");
        abort();
    }
    net_drv_init(&drv, net);
    stats = drv.stats;
    rx_bufs = drv.rx_buffers->addr;
    tx_bufs = drv.tx_buffers->addr;

    dev_fd = devmux_device("nic", &irq_ch);
    if (dev_fd < 0) {
        devmux_log("no device 'nic' is granted to this component");
        abort();
    }
    uint64_t nb = devmux_config_u64("rx_blocks", RX_BLOCKS_DEFAULT);
    rx_nblocks = (uint32_t)(nb < 2 ? 2 : nb > RX_BLOCKS_MAX ? RX_BLOCKS_MAX : nb);
    uint64_t nf = devmux_config_u64("tx_frames", TX_FRAMES_DEFAULT);
    nf = nf < TX_FRAMES_PER_BLK ? TX_FRAMES_PER_BLK : nf > TX_FRAMES_MAX ? TX_FRAMES_MAX : nf;
    tx_nframes = (uint32_t)(nf + TX_FRAMES_PER_BLK - 1) / TX_FRAMES_PER_BLK * TX_FRAMES_PER_BLK;
    setup_rings();

    net_drv_start(&drv);
    stats->link_up = 1;
    devmux_log("net %s: RX ring %u x %u KiB (retire %u ms), TX ring %u x %u B; "
               "%u rx / %u tx buffers of %u / %u B; restart %u%s",
               net, rx_nblocks, RX_BLOCK_SIZE / 1024, RX_RETIRE_MS, tx_nframes, RING_FRAME_SIZE,
               drv.rx_pool.count, drv.tx_pool.count, drv.rx_pool.buf_size, drv.tx_pool.buf_size,
               devmux_restarts(),
               drv.rx_synced && drv.tx_synced ? "" : "; waiting for the virtualisers");
    poll_all();
}

void notified(microkit_channel ch)
{
    if (ch == irq_ch) {
        net_drv_check_sync(&drv);
        bool more = rx_poll();
        dev_status();
        microkit_irq_ack(irq_ch);
        if (more)
            net_drv_timer(&drv, SOON_NS);
        return;
    }
    switch (ch) {
    case NET_DRV_CH_RX:
        net_drv_check_sync(&drv);
        if (drv.rx_synced && drv.rx_nfree < drv.rx_pool.count)
            net_drv_rx_refill(&drv);
        break;
    case NET_DRV_CH_TX:
        net_drv_check_sync(&drv);
        if (tx_poll())
            net_drv_timer(&drv, SOON_NS);
        break;
    case DEVMUX_TIMER_CHANNEL:
        drv.timer_at = 0;
        poll_all();
        break;
    default:
        break;
    }
}

/* A virtualiser (re)started: make sure it sees our sync request or any
 * wake-up it may have missed. */
void peer_ready(microkit_channel ch)
{
    net_drv_peer_ready(ch);
}
