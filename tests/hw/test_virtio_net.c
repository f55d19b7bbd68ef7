/* Unit tests of the net-virtio driver component (src/net/driver/virtio.c)
 * against test doubles: the devmux runtime (regions, config, channels, a
 * fake clock and timer) and devmux/hw.h as a virtio-net register file in
 * memory.  The test plays the device (it reads the driver's rings and
 * writes used entries, including wrong ones) and both virtualisers (it
 * gives and takes buffers on drv_rx / drv_tx).
 *
 * The driver keeps its state in statics, so one process runs one scenario:
 * argv[1] picks it ("main" by default; see main()). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devmux/hw.h"
#include "devmux/microkit.h"
#include "devmux/net.h"
#include "devmux/queue.h"
#include "hw/backend.h"
#include "hw/virtio/virtio.h"

#define NB       16u   /* buffers per pool, and queue capacity */
#define BS       2048u /* buffer size */
#define RX_BASE  0x1000000ull
#define TX_BASE  0x2000000ull
#define DRV_BASE 0x3000000ull
#define NOTIFY   0x3000u
#define DEVCFG   0x2000u
#define ISR      0x1000u

/* ---- runtime double --------------------------------------------------------- */

static uint8_t rx_mem[NB * BS] __attribute__((aligned(4096)));
static uint8_t tx_mem[NB * BS] __attribute__((aligned(4096)));
static uint8_t drv_mem[NET_DRV_DMA_BYTES] __attribute__((aligned(4096)));
static uint8_t q_mem[4][DMQ_RING_BYTES(NB)] __attribute__((aligned(64)));
static uint8_t sync_mem[2][NET_SYNC_BYTES] __attribute__((aligned(64)));
static uint8_t stats_mem[512] __attribute__((aligned(64)));
static struct net_drv_stats *st = (struct net_drv_stats *)stats_mem;

static const struct {
    const char *region, *item;
    struct devmux_item it;
} items[] = {
    {"net0.rx_dma", "buffers", {rx_mem, sizeof(rx_mem), NB, BS}},
    {"net0.tx_dma", "buffers", {tx_mem, sizeof(tx_mem), NB, BS}},
    {"net0.drv_rx", "free", {q_mem[0], sizeof(q_mem[0]), NB, 0}},
    {"net0.drv_rx", "active", {q_mem[1], sizeof(q_mem[1]), NB, 0}},
    {"net0.drv_rx", "sync", {sync_mem[0], NET_SYNC_BYTES, 0, 0}},
    {"net0.drv_rx", "stats", {stats_mem, sizeof(stats_mem), 0, 0}},
    {"net0.drv_tx", "active", {q_mem[2], sizeof(q_mem[2]), NB, 0}},
    {"net0.drv_tx", "free", {q_mem[3], sizeof(q_mem[3]), NB, 0}},
    {"net0.drv_tx", "sync", {sync_mem[1], NET_SYNC_BYTES, 0, 0}},
};

static const char *cfg_queue_size;
static uint64_t now_ns = 1000000000ull, timer_ns;
static unsigned notifies[64], irq_acks, log_lines;

const struct devmux_item *devmux_item(const char *region, const char *item)
{
    for (size_t i = 0; i < sizeof(items) / sizeof(items[0]); i++)
        if (!strcmp(items[i].region, region) && !strcmp(items[i].item, item))
            return &items[i].it;
    return NULL;
}

const char *devmux_config_str(const char *key, const char *def)
{
    if (!strcmp(key, "net"))
        return "net0";
    if (!strcmp(key, "queue_size") && cfg_queue_size)
        return cfg_queue_size;
    return def;
}

uint64_t devmux_config_u64(const char *key, uint64_t def)
{
    const char *v = devmux_config_str(key, NULL);
    return v ? strtoull(v, NULL, 0) : def;
}

unsigned devmux_restarts(void)
{
    return 0;
}

void devmux_log(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "[net-virtio] ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    log_lines++;
}

uint64_t devmux_now_ns(void)
{
    return now_ns;
}

void devmux_timeout(uint64_t ns)
{
    timer_ns = ns;
}

void devmux_channel_quiet(microkit_channel ch, uint64_t ns)
{
    (void)ch;
    (void)ns; /* the driver's peers are trusted: it never quiets a channel */
}

void microkit_notify(microkit_channel ch)
{
    notifies[ch]++;
}

void microkit_irq_ack(microkit_channel ch)
{
    assert_int_equal(ch, NET_DRV_CH_IRQ);
    irq_acks++;
}

/* ---- hw.h double: a virtio-net register file ------------------------------ */

struct fake_queue {
    uint16_t max, size, enable, last_avail;
    uint64_t desc, avail, used;
};

static struct {
    struct hw_device dev;
    struct hw_pci_info info;
    uint8_t cfg[256];
    uint32_t dfsel, gfsel;
    uint64_t offered, driver;
    uint8_t status, isr;
    uint16_t qsel;
    struct fake_queue q[3];
    uint8_t mac[6];
    uint16_t netstatus;
    unsigned kicks[3], hw_resets, enables, width_errors, status_writes;
} fd;

static void cap(unsigned at, unsigned next, unsigned type, uint32_t off, uint32_t len)
{
    fd.cfg[at] = PCI_CAP_ID_VENDOR;
    fd.cfg[at + 1] = (uint8_t)next;
    fd.cfg[at + 2] = type == VIRTIO_CAP_NOTIFY ? 20 : 16;
    fd.cfg[at + 3] = (uint8_t)type;
    fd.cfg[at + 4] = 4;
    memcpy(&fd.cfg[at + 8], &off, 4);
    memcpy(&fd.cfg[at + 12], &len, 4);
    if (type == VIRTIO_CAP_NOTIFY) {
        uint32_t mult = 4;
        memcpy(&fd.cfg[at + 16], &mult, 4);
    }
}

static void fake_reset_queues(void)
{
    for (int i = 0; i < 3; i++) {
        struct fake_queue *q = &fd.q[i];
        uint16_t max = q->max;
        memset(q, 0, sizeof(*q));
        q->max = q->size = max;
    }
}

static void fake_device_init(void)
{
    memset(&fd, 0, sizeof(fd));
    fd.info.vendor = VIRTIO_PCI_VENDOR;
    fd.info.device = VIRTIO_PCI_ID_NET_MODERN;
    fd.info.bar[4] = (struct hw_bar){.addr = 0xfe000000, .size = 0x4000, .kind = HW_BAR_MEM64};
    fd.cfg[PCI_CFG_STATUS] = PCI_STATUS_CAP_LIST;
    fd.cfg[PCI_CFG_CAP_PTR] = 0x40;
    cap(0x40, 0x50, VIRTIO_CAP_COMMON, 0, 0x1000);
    cap(0x50, 0x60, VIRTIO_CAP_ISR, ISR, 0x1000);
    cap(0x60, 0x70, VIRTIO_CAP_DEVICE, DEVCFG, 0x100);
    cap(0x70, 0x00, VIRTIO_CAP_NOTIFY, NOTIFY, 0x1000);
    /* What QEMU 7.2 offers with a tap backend, offloads and all. */
    fd.offered = 0x10130bfffa7ull;
    fd.q[0].max = fd.q[1].max = 256;
    fd.q[2].max = 64;
    fake_reset_queues();
    memcpy(fd.mac, (uint8_t[]){0x52, 0x54, 0, 0x12, 0x34, 0x56}, 6);
    fd.netstatus = VIRTIO_NET_S_LINK_UP;
}

struct hw_device *hw_open(const char *name, microkit_channel *irq)
{
    assert_string_equal(name, "nic");
    *irq = NET_DRV_CH_IRQ;
    return &fd.dev;
}

const struct hw_pci_info *hw_info(const struct hw_device *d)
{
    return &fd.info;
}

int hw_cfg_read(struct hw_device *d, unsigned off, unsigned width, uint32_t *val)
{
    assert_true(off + width <= 256 && off % width == 0);
    *val = 0;
    memcpy(val, &fd.cfg[off], width);
    return 0;
}

int hw_cfg_write(struct hw_device *d, unsigned off, unsigned width, uint32_t val)
{
    assert_int_equal(off, PCI_CFG_COMMAND); /* the only register a driver may touch */
    memcpy(&fd.cfg[off], &val, width);
    return 0;
}

static void expect_width(unsigned width, unsigned want)
{
    if (width != want)
        fd.width_errors++;
}

static int common_read(uint64_t off, unsigned width, uint64_t *val)
{
    struct fake_queue *q = fd.qsel < 3 ? &fd.q[fd.qsel] : NULL;
    switch (off) {
    case VIRTIO_COMMON_DF:
        expect_width(width, 4);
        *val = fd.dfsel == 0 ? (uint32_t)fd.offered : fd.dfsel == 1 ? fd.offered >> 32 : 0;
        return 0;
    case VIRTIO_COMMON_NUMQ:
        expect_width(width, 2);
        *val = 3;
        return 0;
    case VIRTIO_COMMON_STATUS:
        expect_width(width, 1);
        *val = fd.status;
        return 0;
    case VIRTIO_COMMON_CFGGEN:
        expect_width(width, 1);
        *val = 0;
        return 0;
    case VIRTIO_COMMON_Q_SIZE:
        expect_width(width, 2);
        *val = q ? q->size : 0;
        return 0;
    case VIRTIO_COMMON_Q_NOFF:
        expect_width(width, 2);
        *val = fd.qsel;
        return 0;
    default:
        *val = 0;
        return 0;
    }
}

static void set64(uint64_t *field, uint64_t off_in_pair, uint64_t v)
{
    if (off_in_pair == 0)
        *field = (*field & ~0xffffffffull) | (uint32_t)v;
    else
        *field = (*field & 0xffffffffull) | v << 32;
}

static int common_write(uint64_t off, unsigned width, uint64_t v)
{
    struct fake_queue *q = fd.qsel < 3 ? &fd.q[fd.qsel] : NULL;
    switch (off) {
    case VIRTIO_COMMON_DFSELECT:
        expect_width(width, 4);
        fd.dfsel = (uint32_t)v;
        break;
    case VIRTIO_COMMON_GFSELECT:
        expect_width(width, 4);
        fd.gfsel = (uint32_t)v;
        break;
    case VIRTIO_COMMON_GF:
        expect_width(width, 4);
        if (fd.gfsel < 2)
            set64(&fd.driver, fd.gfsel * 4, v);
        break;
    case VIRTIO_COMMON_STATUS:
        expect_width(width, 1);
        fd.status_writes++;
        if (v == 0) {
            fd.status = 0;
            fd.driver = 0;
            fd.isr = 0;
            fake_reset_queues();
        } else {
            /* FEATURES_OK only sticks for a subset of what was offered. */
            if ((v & VIRTIO_STATUS_FEATURES_OK) && (fd.driver & ~fd.offered))
                v &= ~VIRTIO_STATUS_FEATURES_OK;
            fd.status = (uint8_t)(v | (fd.status & VIRTIO_STATUS_NEEDS_RESET));
        }
        break;
    case VIRTIO_COMMON_Q_SELECT:
        expect_width(width, 2);
        fd.qsel = (uint16_t)v;
        break;
    case VIRTIO_COMMON_Q_SIZE:
        expect_width(width, 2);
        if (q)
            q->size = (uint16_t)v;
        break;
    case VIRTIO_COMMON_Q_ENABLE:
        expect_width(width, 2);
        if (q)
            q->enable = (uint16_t)v;
        break;
    default:
        if (q && off >= VIRTIO_COMMON_Q_DESCLO && off < VIRTIO_COMMON_BYTES) {
            expect_width(width, 4);
            uint64_t base = (off - VIRTIO_COMMON_Q_DESCLO) / 8;
            uint64_t *f = base == 0 ? &q->desc : base == 1 ? &q->avail : &q->used;
            set64(f, (off - VIRTIO_COMMON_Q_DESCLO) % 8, v);
        }
        break;
    }
    return 0;
}

int hw_read(struct hw_device *d, unsigned bar, uint64_t off, unsigned width, uint64_t *val)
{
    assert_int_equal(bar, 4);
    if (off + width > fd.info.bar[4].size)
        return -EPERM;
    if (off < 0x1000)
        return common_read(off, width, val);
    if (off == ISR) {
        *val = fd.isr;
        fd.isr = 0; /* read-to-clear, lowers the line */
        return 0;
    }
    if (off >= DEVCFG && off < DEVCFG + 6) {
        expect_width(width, 1);
        *val = fd.mac[off - DEVCFG];
        return 0;
    }
    if (off == DEVCFG + VIRTIO_NET_CFG_STATUS) {
        expect_width(width, 2);
        *val = fd.netstatus;
        return 0;
    }
    *val = 0;
    return 0;
}

int hw_write(struct hw_device *d, unsigned bar, uint64_t off, unsigned width, uint64_t val)
{
    assert_int_equal(bar, 4);
    if (off + width > fd.info.bar[4].size)
        return -EPERM;
    if (off < 0x1000)
        return common_write(off, width, val);
    if (off >= NOTIFY && off < NOTIFY + 3 * 4) {
        expect_width(width, 2);
        assert_int_equal(val, (off - NOTIFY) / 4); /* doorbell names its queue */
        fd.kicks[val]++;
    }
    return 0;
}

int hw_enable(struct hw_device *d)
{
    fd.enables++;
    fd.cfg[PCI_CFG_COMMAND] |= PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
    return 0;
}

int hw_reset(struct hw_device *d)
{
    fd.hw_resets++;
    fd.cfg[PCI_CFG_COMMAND] &= (uint8_t) ~(PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    return 0;
}

int hw_dma_region(const char *region, struct hw_dma *out)
{
    if (!strcmp(region, "net0.rx_dma"))
        *out = (struct hw_dma){rx_mem, RX_BASE, sizeof(rx_mem)};
    else if (!strcmp(region, "net0.tx_dma"))
        *out = (struct hw_dma){tx_mem, TX_BASE, sizeof(tx_mem)};
    else if (!strcmp(region, "net0.drv_dma"))
        *out = (struct hw_dma){drv_mem, DRV_BASE, sizeof(drv_mem)};
    else
        return -ENOENT;
    return 0;
}

/* ---- the device's view of the driver's memory ------------------------------ */

static void *dma(uint64_t a, size_t len)
{
    if (a >= RX_BASE && a + len <= RX_BASE + sizeof(rx_mem))
        return rx_mem + (a - RX_BASE);
    if (a >= TX_BASE && a + len <= TX_BASE + sizeof(tx_mem))
        return tx_mem + (a - TX_BASE);
    if (a >= DRV_BASE && a + len <= DRV_BASE + sizeof(drv_mem))
        return drv_mem + (a - DRV_BASE);
    fail_msg("device address %#llx is not DMA memory", (unsigned long long)a);
    return NULL;
}

static struct virtq_desc *qdesc(int q)
{
    return dma(fd.q[q].desc, VIRTQ_DESC_BYTES(fd.q[q].size));
}
static struct virtq_avail *qavail(int q)
{
    return dma(fd.q[q].avail, VIRTQ_AVAIL_BYTES(fd.q[q].size));
}
static struct virtq_used *qused(int q)
{
    return dma(fd.q[q].used, VIRTQ_USED_BYTES(fd.q[q].size));
}

static uint16_t posted(int q)
{
    return (uint16_t)(qavail(q)->idx - fd.q[q].last_avail);
}

/* The next chain the driver made available on queue q. */
static uint16_t dev_take(int q)
{
    assert_true(posted(q) > 0);
    struct virtq_avail *a = qavail(q);
    uint16_t head = a->ring[fd.q[q].last_avail % fd.q[q].size];
    fd.q[q].last_avail++;
    return head;
}

static void dev_used(int q, uint32_t id, uint32_t len)
{
    struct virtq_used *u = qused(q);
    u->ring[u->idx % fd.q[q].size] = (struct virtq_used_elem){id, len};
    __atomic_store_n(&u->idx, (uint16_t)(u->idx + 1), __ATOMIC_RELEASE);
}

static void interrupt(uint8_t isr)
{
    fd.isr |= isr;
    notified(NET_DRV_CH_IRQ);
}

/* Receive a frame of flen bytes into the next posted buffer.  Returns the
 * buffer's index in rx_dma. */
static uint32_t dev_rx(uint32_t flen, uint32_t report)
{
    uint16_t h = dev_take(0);
    struct virtq_desc *d = qdesc(0);
    assert_int_equal(d[h].len, VIRTIO_NET_HDR_BYTES);
    assert_int_equal(d[h].flags, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT);
    struct virtq_desc *b = &d[d[h].next];
    assert_int_equal(b->flags, VIRTQ_DESC_F_WRITE);
    assert_int_equal(b->len, BS);
    memset(dma(d[h].addr, VIRTIO_NET_HDR_BYTES), 0, VIRTIO_NET_HDR_BYTES);
    uint8_t *buf = dma(b->addr, BS);
    memset(buf, 0x5a, flen < BS ? flen : BS);
    dev_used(0, h, report ? report : flen + VIRTIO_NET_HDR_BYTES);
    return (uint32_t)((b->addr - RX_BASE) / BS);
}

/* ---- the virtualisers' side ---------------------------------------------- */

static struct dmq_producer rxv_free, txv_active;
static struct dmq_consumer rxv_active, txv_free;

static void virt_attach(void)
{
    assert_int_equal(dmq_producer_init(&rxv_free, q_mem[0], sizeof(q_mem[0]), NB, "free", false),
                     0);
    assert_int_equal(dmq_consumer_init(&rxv_active, q_mem[1], sizeof(q_mem[1]), NB, "a", false), 0);
    assert_int_equal(dmq_producer_init(&txv_active, q_mem[2], sizeof(q_mem[2]), NB, "a", false), 0);
    assert_int_equal(dmq_consumer_init(&txv_free, q_mem[3], sizeof(q_mem[3]), NB, "f", false), 0);
}

static void give_rx(uint32_t i)
{
    struct dmq_desc d = {.offset = (uint64_t)i * BS};
    assert_int_equal(dmq_space(&rxv_free) > 0, 1);
    dmq_put(&rxv_free, &d);
    dmq_publish(&rxv_free);
}

static void send_tx(uint32_t i, uint32_t len)
{
    struct dmq_desc d = {.offset = (uint64_t)i * BS, .len = len};
    memset(tx_mem + (size_t)i * BS, 0x77, len);
    dmq_put(&txv_active, &d);
    dmq_publish(&txv_active);
}

/* Every tx buffer the driver handed back since the last call, as a mask. */
static uint32_t tx_returned(void)
{
    uint32_t mask = 0;
    struct dmq_desc d;
    while (dmq_dequeue(&txv_free, &d) >= 0) {
        assert_int_equal(d.offset % BS, 0);
        assert_false(mask & (1u << (d.offset / BS)));
        mask |= 1u << (d.offset / BS);
    }
    return mask;
}

static void fire_timer(void)
{
    assert_true(timer_ns > 0);
    now_ns += timer_ns;
    timer_ns = 0;
    notified(DEVMUX_TIMER_CHANNEL);
}

#define UP_STATUS                                                                                  \
    (VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |                \
     VIRTIO_STATUS_DRIVER_OK)

/* The rx buffers the device holds, as a mask; each at most once. */
static uint32_t rx_posted_mask(void)
{
    uint32_t mask = 0;
    struct virtq_avail *a = qavail(0);
    struct virtq_desc *d = qdesc(0);
    for (uint16_t k = fd.q[0].last_avail; k != a->idx; k++) {
        uint16_t h = a->ring[k % fd.q[0].size];
        uint32_t i = (uint32_t)((d[d[h].next].addr - RX_BASE) / BS);
        assert_true(i < NB);
        assert_false(mask & (1u << i));
        mask |= 1u << i;
    }
    return mask;
}

/* ---- main scenario --------------------------------------------------------- */

static void test_init(void **state)
{
    virt_attach();
    for (uint32_t i = 0; i < NB; i++)
        give_rx(i);
    init();
    assert_int_equal(fd.status, UP_STATUS);
    assert_int_equal(fd.driver, VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_NET_F_MAC) |
                                    VIRTIO_BIT(VIRTIO_NET_F_STATUS) |
                                    VIRTIO_BIT(VIRTIO_F_EVENT_IDX));
    assert_true(fd.hw_resets >= 1);
    assert_int_equal(fd.enables, 1);
    assert_int_equal(fd.width_errors, 0);
    assert_int_equal(fd.q[0].size, 256);
    assert_int_equal(fd.q[1].size, 256);
    assert_true(fd.q[0].enable && fd.q[1].enable);
    assert_false(fd.q[2].enable);
    assert_int_equal(st->link_up, 1);
    assert_int_equal(st->device_resets, 0);
    /* All 16 buffers posted, one doorbell. */
    assert_int_equal(posted(0), NB);
    assert_int_equal(rx_posted_mask(), 0xffff);
    assert_int_equal(fd.kicks[0], 1);
    assert_int_equal(fd.kicks[1], 0);
}

static void test_rx_frame(void **state)
{
    uint64_t pk = st->rx.packets;
    unsigned acks = irq_acks;
    uint32_t i = dev_rx(60, 0);
    interrupt(VIRTIO_ISR_QUEUE);
    assert_int_equal(irq_acks, acks + 1);
    assert_int_equal(fd.isr, 0);
    struct dmq_desc d;
    assert_int_equal(dmq_avail(&rxv_active), 1);
    dmq_take(&rxv_active, &d);
    dmq_release(&rxv_active);
    assert_int_equal(d.offset, (uint64_t)i * BS);
    assert_int_equal(d.len, 60);
    assert_int_equal(rx_mem[d.offset], 0x5a);
    assert_int_equal(st->rx.packets, pk + 1);
    assert_int_equal(st->rx.bytes, 60);
    /* Given back, the buffer is posted again, with a doorbell only if the
     * device asked for one (EVENT_IDX). */
    unsigned kicks = fd.kicks[0];
    uint16_t ev = qavail(0)->idx; /* avail_event: tell me about the next one */
    memcpy((uint8_t *)qused(0) + 4 + 8 * fd.q[0].size, &ev, sizeof(ev));
    give_rx(i);
    notified(NET_DRV_CH_RX);
    assert_int_equal(fd.kicks[0], kicks + 1);
    assert_int_equal(posted(0), NB);
    dev_rx(60, 0);
    interrupt(VIRTIO_ISR_QUEUE);
    assert_int_equal(dmq_avail(&rxv_active), 1);
    dmq_take(&rxv_active, &d);
    dmq_release(&rxv_active);
    give_rx((uint32_t)(d.offset / BS));
    notified(NET_DRV_CH_RX);
    assert_int_equal(fd.kicks[0], kicks + 1); /* not asked: no doorbell */
    assert_int_equal(posted(0), NB);
}

static void test_rx_runt_dropped(void **state)
{
    uint64_t bad = st->rx.drops[NET_DROP_BAD_LEN];
    dev_rx(10, 0);
    interrupt(VIRTIO_ISR_QUEUE);
    assert_int_equal(st->rx.drops[NET_DROP_BAD_LEN], bad + 1);
    assert_int_equal(dmq_avail(&rxv_active), 0);
    assert_int_equal(posted(0), NB); /* straight back to the device */
    assert_int_equal(st->device_resets, 0);
}

static void test_tx_frame(void **state)
{
    send_tx(3, 60);
    notified(NET_DRV_CH_TX);
    assert_int_equal(posted(1), 1);
    assert_int_equal(fd.kicks[1], 1);
    uint16_t h = dev_take(1);
    struct virtq_desc *d = qdesc(1);
    assert_int_equal(d[h].len, VIRTIO_NET_HDR_BYTES);
    assert_int_equal(d[h].flags, VIRTQ_DESC_F_NEXT); /* read-only */
    uint8_t zero[VIRTIO_NET_HDR_BYTES] = {0};
    assert_memory_equal(dma(d[h].addr, sizeof(zero)), zero, sizeof(zero));
    struct virtq_desc *b = &d[d[h].next];
    assert_int_equal(b->flags, 0);
    assert_int_equal(b->addr, TX_BASE + 3 * BS);
    assert_int_equal(b->len, 60);
    assert_int_equal(st->tx.packets, 1);
    /* Waiting for that one completion: used_event names it. */
    assert_int_equal(qavail(1)->ring[fd.q[1].size], 0);
    assert_int_equal(tx_returned(), 0);
    dev_used(1, h, 0);
    interrupt(VIRTIO_ISR_QUEUE);
    assert_int_equal(tx_returned(), 1u << 3);
}

static void test_tx_bad_len_returned(void **state)
{
    uint64_t bad = st->tx.drops[NET_DROP_BAD_LEN];
    send_tx(4, 10);
    send_tx(5, NET_MAX_FRAME + 1);
    notified(NET_DRV_CH_TX);
    assert_int_equal(st->tx.drops[NET_DROP_BAD_LEN], bad + 2);
    assert_int_equal(posted(1), 0);
    assert_int_equal(tx_returned(), (1u << 4) | (1u << 5));
}

/* The device writes something impossible into the rx used ring: the
 * driver must count it, reset the device, and come back with every rx
 * buffer posted once and none handed to the rx virtualiser. */
static void expect_rx_reset(void (*corrupt)(void), unsigned delivered)
{
    uint64_t resets = st->device_resets, dev_drops = st->rx.drops[NET_DROP_DEVICE];
    unsigned hw_resets = fd.hw_resets, enables = fd.enables;
    now_ns += 5000000000ull; /* up for a while: recovery is immediate */
    corrupt();
    interrupt(VIRTIO_ISR_QUEUE);
    assert_int_equal(st->device_resets, resets + 1);
    assert_int_equal(st->rx.drops[NET_DROP_DEVICE], dev_drops + 1);
    assert_int_equal(fd.status, 0); /* virtio reset */
    assert_true(fd.hw_resets > hw_resets);
    assert_int_equal(st->link_up, 0);
    /* Good completions before the bad one went on; the bad one did not. */
    assert_int_equal(dmq_avail(&rxv_active), delivered);
    struct dmq_desc d;
    while (dmq_dequeue(&rxv_active, &d) >= 0)
        give_rx((uint32_t)(d.offset / BS));
    fire_timer();
    assert_int_equal(fd.status, UP_STATUS);
    assert_int_equal(fd.enables, enables + 1);
    assert_int_equal(st->link_up, 1);
    assert_int_equal(posted(0), NB);
    assert_int_equal(rx_posted_mask(), 0xffff);
    assert_int_equal(st->device_resets, resets + 1);
}

static void corrupt_idx(void)
{
    struct virtq_used *u = qused(0);
    u->idx = (uint16_t)(u->idx + 100);
}

static void corrupt_dup(void)
{
    uint16_t h = dev_take(0);
    dev_used(0, h, 72);
    dev_used(0, h, 72);
}

static void corrupt_range(void)
{
    dev_take(0);
    dev_used(0, 4096, 72);
}

static void corrupt_len_over(void)
{
    dev_rx(60, VIRTIO_NET_HDR_BYTES + BS + 1);
}

static void corrupt_len_under(void)
{
    dev_rx(60, VIRTIO_NET_HDR_BYTES - 1);
}

static void test_rx_used_idx_jump(void **state)
{
    expect_rx_reset(corrupt_idx, 0);
}
static void test_rx_duplicate_id(void **state)
{
    expect_rx_reset(corrupt_dup, 1);
}
static void test_rx_id_out_of_range(void **state)
{
    expect_rx_reset(corrupt_range, 0);
}
static void test_rx_len_over_buffer(void **state)
{
    expect_rx_reset(corrupt_len_over, 0);
}
static void test_rx_len_under_header(void **state)
{
    expect_rx_reset(corrupt_len_under, 0);
}

static void test_needs_reset_reclaims_tx(void **state)
{
    uint64_t resets = st->device_resets, dev_drops = st->tx.drops[NET_DROP_DEVICE];
    send_tx(0, 100);
    send_tx(1, 100);
    send_tx(2, 100);
    notified(NET_DRV_CH_TX);
    assert_int_equal(posted(1), 3);
    assert_int_equal(tx_returned(), 0);
    now_ns += 5000000000ull;
    fd.status |= VIRTIO_STATUS_NEEDS_RESET;
    interrupt(VIRTIO_ISR_CONFIG);
    assert_int_equal(st->device_resets, resets + 1);
    assert_int_equal(st->tx.drops[NET_DROP_DEVICE], dev_drops + 3);
    assert_int_equal(tx_returned(), 0x7);
    fire_timer();
    assert_int_equal(fd.status, UP_STATUS);
    assert_int_equal(posted(1), 0);
    assert_int_equal(posted(0), NB);
}

static void test_tx_used_len_over(void **state)
{
    uint64_t resets = st->device_resets;
    send_tx(6, 100);
    notified(NET_DRV_CH_TX);
    uint16_t h = dev_take(1);
    now_ns += 5000000000ull;
    dev_used(1, h, 5000);
    interrupt(VIRTIO_ISR_QUEUE);
    assert_int_equal(st->device_resets, resets + 1);
    assert_int_equal(tx_returned(), 1u << 6); /* never lost */
    fire_timer();
    assert_int_equal(fd.status, UP_STATUS);
}

static void test_link_status(void **state)
{
    fd.netstatus = 0;
    interrupt(VIRTIO_ISR_CONFIG);
    assert_int_equal(st->link_up, 0);
    fd.netstatus = VIRTIO_NET_S_LINK_UP;
    interrupt(VIRTIO_ISR_CONFIG);
    assert_int_equal(st->link_up, 1);
}

/* A device whose queue size is unusable: setup fails, is counted and
 * retried with back-off; frames to send meanwhile are dropped and handed
 * back, not hoarded. */
static void test_bad_queue_size(void **state)
{
    uint64_t resets = st->device_resets;
    fd.q[0].max = 0;
    now_ns += 5000000000ull;
    fd.status |= VIRTIO_STATUS_NEEDS_RESET;
    interrupt(VIRTIO_ISR_CONFIG);
    assert_int_equal(st->device_resets, resets + 1);
    fire_timer();
    assert_int_equal(st->device_resets, resets + 2);
    assert_false(fd.status & VIRTIO_STATUS_DRIVER_OK);
    uint64_t first = timer_ns;
    assert_true(first >= 10000000u);
    fd.q[0].max = 100; /* not a power of two */
    fire_timer();
    assert_int_equal(st->device_resets, resets + 3);
    assert_true(timer_ns > first); /* backing off */
    uint64_t drops = st->tx.drops[NET_DROP_DEVICE];
    send_tx(7, 100);
    notified(NET_DRV_CH_TX);
    assert_int_equal(st->tx.drops[NET_DROP_DEVICE], drops + 1);
    assert_int_equal(tx_returned(), 1u << 7);
    fd.q[0].max = 256;
    fire_timer();
    assert_int_equal(fd.status, UP_STATUS);
    assert_int_equal(posted(0), NB);
    assert_int_equal(fd.width_errors, 0);
}

/* ---- other scenarios, one per process -------------------------------------- */

static void start_plain(void)
{
    virt_attach();
    for (uint32_t i = 0; i < NB; i++)
        give_rx(i);
    init();
}

static void test_unsupported_id(void **state)
{
    fd.info.device = 0x1234;
    start_plain();
    assert_int_equal(fd.status_writes, 0);
    assert_int_equal(fd.enables, 0);
    assert_int_equal(st->link_up, 0);
    send_tx(1, 100);
    notified(NET_DRV_CH_TX);
    assert_int_equal(st->tx.drops[NET_DROP_DEVICE], 1);
    assert_int_equal(tx_returned(), 1u << 1);
    assert_int_equal(timer_ns, 0); /* no retries: it will never be ours */
}

static void test_no_version_1(void **state)
{
    fd.offered &= ~VIRTIO_BIT(VIRTIO_F_VERSION_1);
    start_plain();
    assert_true(fd.status & VIRTIO_STATUS_FAILED);
    assert_int_equal(fd.enables, 0);
}

static void test_cap_outside_bar(void **state)
{
    cap(0x40, 0x50, VIRTIO_CAP_COMMON, 0x3f00, 0x1000);
    start_plain();
    assert_int_equal(st->device_resets, 1);
    assert_int_equal(fd.status_writes, 0); /* never programmed */
    assert_int_equal(fd.enables, 0);
    assert_true(timer_ns > 0);
}

static void test_transitional_big_queues(void **state)
{
    fd.info.device = VIRTIO_PCI_ID_NET_TRANS;
    fd.q[0].max = fd.q[1].max = 32768;
    cfg_queue_size = "100000";
    start_plain();
    assert_int_equal(fd.status, UP_STATUS);
    uint16_t rx = fd.q[0].size, tx = fd.q[1].size;
    assert_true(rx >= 2 && (rx & (rx - 1)) == 0 && rx < 32768);
    assert_true(tx >= 2 && (tx & (tx - 1)) == 0 && tx < 32768);
    /* Everything inside drv_dma. */
    assert_true(fd.q[0].used + VIRTQ_USED_BYTES(rx) <= DRV_BASE + NET_DRV_DMA_BYTES);
    assert_true(fd.q[1].used + VIRTQ_USED_BYTES(tx) <= DRV_BASE + NET_DRV_DMA_BYTES);
    assert_int_equal(posted(0), NB);
}

static void test_config_queue_size(void **state)
{
    cfg_queue_size = "48";
    start_plain();
    assert_int_equal(fd.q[0].size, 32);
    assert_int_equal(fd.q[1].size, 32);
    assert_int_equal(posted(0), NB); /* 16 chains of 2 fill 32 descriptors */
}

int main(int argc, char **argv)
{
    const char *which = argc > 1 ? argv[1] : "main";
    fake_device_init();
    if (!strcmp(which, "main")) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_init),
            cmocka_unit_test(test_rx_frame),
            cmocka_unit_test(test_rx_runt_dropped),
            cmocka_unit_test(test_tx_frame),
            cmocka_unit_test(test_tx_bad_len_returned),
            cmocka_unit_test(test_rx_used_idx_jump),
            cmocka_unit_test(test_rx_duplicate_id),
            cmocka_unit_test(test_rx_id_out_of_range),
            cmocka_unit_test(test_rx_len_over_buffer),
            cmocka_unit_test(test_rx_len_under_header),
            cmocka_unit_test(test_needs_reset_reclaims_tx),
            cmocka_unit_test(test_tx_used_len_over),
            cmocka_unit_test(test_link_status),
            cmocka_unit_test(test_bad_queue_size),
        };
        return cmocka_run_group_tests_name("net-virtio", tests, NULL, NULL);
    }
    static const struct {
        const char *name;
        CMUnitTestFunction fn;
    } scenarios[] = {
        {"badid", test_unsupported_id},   {"nov1", test_no_version_1},
        {"badcap", test_cap_outside_bar}, {"bigq", test_transitional_big_queues},
        {"cfgq", test_config_queue_size},
    };
    struct CMUnitTest one[1] = {{0}};
    for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
        if (!strcmp(which, scenarios[i].name))
            one[0] = (struct CMUnitTest){scenarios[i].name, scenarios[i].fn, NULL, NULL, NULL};
    if (!one[0].test_func) {
        fprintf(stderr, "unknown scenario '%s'\n", which);
        return 2;
    }
    return cmocka_run_group_tests_name(which, one, NULL, NULL);
}
