/*
 * net-hostile: a network client that attacks the shared network through its
 * own queues, every `period_ms`, in rounds:
 *
 *   - index jumps: its tx.active tail leaps ahead, then goes back;
 *   - descriptors outside its buffers, unaligned, too long, too short;
 *   - the same buffer handed over twice;
 *   - garbage on rx.free (outside, duplicates), and it never returns a
 *     received buffer: after its first quota it gets nothing more;
 *   - write after handover: a valid frame is handed over, then its source
 *     MAC is flipped to `spoof_mac` and back while the tx virtualiser may be
 *     copying it.  No frame with spoof_mac may ever reach the wire;
 *   - whole rings of garbage: every free tx.active slot a zero-length frame,
 *     every free rx.free slot a junk descriptor;
 *   - `flood` valid frames per round to `flood_dst` (0: none).
 *
 * It logs one line per round type the first time, so tests can see it ran.
 */
#include <devmux/microkit.h>
#include <devmux/net.h>
#include <devmux/queue.h>
#include <stdlib.h>
#include <string.h>

#include "net/common/netlib.h"

static struct dmq_producer tx_active, rx_free;
static struct dmq_consumer tx_free;
static uint8_t *tx_buf, *rx_region;
static uint32_t bsz, count;
static uint8_t mac[6], spoof[6], dst[6];
static uint64_t period_ns, flood;
static uint32_t next_buf;
static unsigned round_no;
static const char *me;

static struct dmq_ring *ring_of(struct dmq_producer *p)
{
    return p->q.ring;
}

static void frame(uint8_t *f, const uint8_t *src, uint32_t len)
{
    memcpy(f, dst, 6);
    memcpy(f + 6, src, 6);
    f[12] = 0x88;
    f[13] = 0xb5;
    memset(f + 14, 0x5a, len - 14);
}

/* The garbage rounds use the lower half of the transmit buffers, the flood
 * the upper half, round-robin: by the time the flood comes back to a buffer
 * the tx virtualiser has long handed it back.  tx.free is drained and
 * ignored every round. */
static void drain_tx_free(void)
{
    struct dmq_desc d;
    while (dmq_dequeue(&tx_free, &d) >= 0)
        ;
}

static uint32_t some_buffer(void)
{
    return next_buf++ % (count / 2);
}

static uint32_t flood_buffer(void)
{
    static uint32_t next;
    return count / 2 + next++ % (count - count / 2);
}

static void put(uint64_t off, uint32_t len)
{
    if (!dmq_space(&tx_active))
        return;
    struct dmq_desc d = {.offset = off, .len = len};
    dmq_put(&tx_active, &d);
}

static void attack(void)
{
    unsigned r = round_no++ % 7;
    /* Undo the previous round's index jump: it stayed visible for a whole
     * period. */
    atomic_store(&ring_of(&tx_active)->tail, tx_active.tail);
    drain_tx_free();
    switch (r) {
    case 0: { /* index jump, then back */
        atomic_store(&ring_of(&tx_active)->tail, tx_active.tail + 0x10000u);
        microkit_notify(NET_CLIENT_CH_TX);
        if (round_no <= 7)
            devmux_log("%s: attack round 0 done", me);
        return;
    }
    case 1: /* descriptors that name nothing of ours */
        put((uint64_t)count * bsz + 4096, 60);
        put(7, 60);
        put(UINT64_MAX - 10, 60);
        put(0, bsz + 1);
        put(0, 3);
        break;
    case 2: { /* the same buffer twice */
        uint32_t b = some_buffer();
        frame(tx_buf + (size_t)b * bsz, mac, 60);
        put((uint64_t)b * bsz, 60);
        put((uint64_t)b * bsz, 60);
        break;
    }
    case 3: { /* garbage on rx.free: outside, unaligned, a duplicate */
        struct dmq_desc d[] = {{.offset = 1u << 30, .len = bsz},
                               {.offset = 5, .len = bsz},
                               {.offset = 0, .len = bsz},
                               {.offset = 0, .len = bsz}};
        for (unsigned i = 0; i < 4 && dmq_space(&rx_free); i++)
            dmq_put(&rx_free, &d[i]);
        if (dmq_publish(&rx_free))
            microkit_notify(NET_CLIENT_CH_RX);
        break;
    }
    case 4: { /* write after handover */
        uint32_t b = some_buffer();
        uint8_t *f = tx_buf + (size_t)b * bsz;
        frame(f, mac, 60);
        put((uint64_t)b * bsz, 60);
        if (dmq_publish(&tx_active))
            microkit_notify(NET_CLIENT_CH_TX);
        microkit_notify(NET_CLIENT_CH_TX);
        for (int i = 0; i < 20000; i++)
            memcpy(f + 6, i & 1 ? mac : spoof, 6);
        memcpy(f + 6, spoof, 6);
        break;
    }
    case 5: { /* whole rings of garbage: bad lengths on tx, junk on rx.free */
        uint32_t b = some_buffer();
        while (dmq_space(&tx_active))
            put((uint64_t)b * bsz, 0);
        struct dmq_desc junk = {.offset = 1, .len = bsz};
        while (dmq_space(&rx_free))
            dmq_put(&rx_free, &junk);
        if (dmq_publish(&rx_free))
            microkit_notify(NET_CLIENT_CH_RX);
        microkit_notify(NET_CLIENT_CH_RX);
        break;
    }
    default:
        for (uint64_t i = 0; i < flood; i++) {
            uint32_t b = flood_buffer();
            frame(tx_buf + (size_t)b * bsz, mac, 1000);
            put((uint64_t)b * bsz, 1000);
        }
        break;
    }
    if (round_no <= 7)
        devmux_log("%s: attack round %u done", me, r);
    if (dmq_publish(&tx_active))
        microkit_notify(NET_CLIENT_CH_TX);
    microkit_notify(NET_CLIENT_CH_TX);
}

void init(void)
{
    me = devmux_config_str("client", "?");
    if (!net_mac_parse(devmux_config_str("mac", ""), mac) ||
        !net_mac_parse(devmux_config_str("spoof_mac", "02:00:00:00:00:ee"), spoof) ||
        !net_mac_parse(devmux_config_str("flood_dst", "02:00:00:00:00:ff"), dst))
        abort();
    period_ns = devmux_config_u64("period_ms", 2) * 1000000u;
    flood = devmux_config_u64("flood", 0);
    const struct devmux_item *tb = net_item(me, NET_REGION_CLIENT_TX, NET_ITEM_BUFFERS);
    const struct devmux_item *rb = net_item(me, NET_REGION_CLIENT_RX, NET_ITEM_BUFFERS);
    if (!tb || !rb || net_producer(&tx_active, me, NET_REGION_CLIENT_TX, NET_ITEM_ACTIVE, false) ||
        net_consumer(&tx_free, me, NET_REGION_CLIENT_TX, NET_ITEM_FREE, false) ||
        net_producer(&rx_free, me, NET_REGION_CLIENT_RX, NET_ITEM_FREE, false))
        abort();
    tx_buf = tb->addr;
    rx_region = rb->addr;
    bsz = tb->elem;
    count = tb->count;
    /* One quota of receive buffers, then never one back. */
    for (uint32_t i = 0; i < rb->count && dmq_space(&rx_free); i++) {
        struct dmq_desc d = {.offset = (uint64_t)i * rb->elem, .len = rb->elem};
        dmq_put(&rx_free, &d);
    }
    dmq_publish(&rx_free);
    microkit_notify(NET_CLIENT_CH_RX);
    devmux_timeout(period_ns);
}

void notified(microkit_channel ch)
{
    if (ch != DEVMUX_TIMER_CHANNEL)
        return;
    attack();
    devmux_timeout(period_ns);
}
