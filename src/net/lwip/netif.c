/*
 * lwIP netif on a devmux network client.  See netif.h for the thread split.
 */
#include "net/lwip/netif.h"

#include <inttypes.h>
#include <semaphore.h>
#include <string.h>

#include "lwip/etharp.h"
#include "lwip/ethip6.h"
#include "lwip/pbuf.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/tcpip.h"

#define ETH_MIN_FRAME 60 /* without FCS: shorter frames are padded */

static void count(_Atomic uint64_t *c)
{
    atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

/* tcpip thread (or a holder of the core lock, which we never are). */
static err_t linkoutput(struct netif *netif, struct pbuf *p)
{
    struct lwipif *ifc = netif->state;
    struct net_client *c = ifc->client;

    if (!net_client_ready(c)) {
        /* TCP keeps the segment and retries when the event loop sees the
         * handshake complete; anything else is lost, as on a real link. */
        count(&ifc->stats.tx_not_ready);
        return ERR_MEM;
    }
    if (p->tot_len > c->buf_size || p->tot_len > NET_MAX_FRAME) {
        count(&ifc->stats.tx_too_big);
        return ERR_IF;
    }
    uint32_t handle;
    uint8_t *buf = net_client_tx_buffer(c, &handle);
    if (!buf) {
        /* Announce the shortage, then look again: a buffer returned (and
         * notified) between the first look and the store is seen here, and
         * one returned later brings a notification that finds the flag. */
        atomic_store(&ifc->tx_starved, true);
        buf = net_client_tx_buffer(c, &handle);
        if (!buf) {
            count(&ifc->stats.tx_no_buffer);
            return ERR_MEM;
        }
    }
    uint32_t len = pbuf_copy_partial(p, buf, p->tot_len, 0);
    if (len < ETH_MIN_FRAME && c->buf_size >= ETH_MIN_FRAME) {
        memset(buf + len, 0, ETH_MIN_FRAME - len);
        len = ETH_MIN_FRAME;
    }
    net_client_tx_send(c, handle, len);
    net_client_tx_flush(c);
    count(&ifc->stats.tx_frames);
    return ERR_OK;
}

err_t lwipif_netif_init(struct netif *netif)
{
    struct lwipif *ifc = netif->state;
    netif->name[0] = 'd';
    netif->name[1] = 'm';
    netif->output = etharp_output;
#if LWIP_IPV6
    netif->output_ip6 = ethip6_output;
#endif
    netif->linkoutput = linkoutput;
    netif->mtu = 1500;
    netif->hwaddr_len = ETH_HWADDR_LEN;
    memcpy(netif->hwaddr, ifc->client->mac, ETH_HWADDR_LEN);
    netif->flags = NETIF_FLAG_BROADCAST | NETIF_FLAG_ETHARP | NETIF_FLAG_ETHERNET;
    return ERR_OK;
}

/* Event loop: one frame into a pbuf and onto the tcpip thread's mbox. */
static void deliver(struct lwipif *ifc, const uint8_t *frame, uint32_t len)
{
    if (len == 0 || len > NET_MAX_FRAME) {
        count(&ifc->stats.rx_bad_len);
        return;
    }
    /* PBUF_RAM, not PBUF_POOL: Debian's liblwip 2.1.3 is inconsistent
     * about pool pbufs.  Its memp.c sizes them for a 536-byte MSS (616
     * bytes with the header) while pbuf_alloc fills them as if they held
     * PBUF_POOL_BUFSIZE (1536) bytes, so a full frame overruns the heap.
     * With MEM_LIBC_MALLOC a RAM pbuf is one malloc of the exact size. */
    struct pbuf *p = pbuf_alloc(PBUF_RAW, (u16_t)len, PBUF_RAM);
    if (!p) {
        count(&ifc->stats.rx_no_pbuf);
        return;
    }
    pbuf_take(p, frame, (u16_t)len);
    if (ifc->netif.input(p, &ifc->netif) != ERR_OK) {
        pbuf_free(p);
        count(&ifc->stats.rx_mbox);
        return;
    }
    count(&ifc->stats.rx_frames);
}

void lwipif_rx_drain(struct lwipif *ifc)
{
    struct net_client *c = ifc->client;
    if (!net_client_ready(c))
        return;
    do {
        const uint8_t *frame;
        uint32_t len, handle;
        while (net_client_rx(c, &frame, &len, &handle)) {
            deliver(ifc, frame, len);
            net_client_rx_done(c, handle);
        }
    } while (net_client_rx_flush(c));
}

/* tcpip thread: retry TCP segments that linkoutput refused. */
static void tx_kick(void *arg)
{
    (void)arg;
    tcp_txnow();
}

static void post_kick(struct lwipif *ifc)
{
    if (tcpip_try_callback(tx_kick, ifc) == ERR_OK)
        count(&ifc->stats.tx_kicks);
    else
        atomic_store(&ifc->tx_starved, true); /* mbox full: next time */
}

void lwipif_notified(struct lwipif *ifc, microkit_channel ch)
{
    struct net_client *c = ifc->client;
    if (!net_client_notified(c, ch))
        return;
    bool ready = net_client_ready(c);
    bool became_ready = ready && !ifc->was_ready;
    ifc->was_ready = ready;
    if (!ready)
        return;
    if (atomic_exchange(&ifc->tx_starved, false) || became_ready)
        post_kick(ifc);
    lwipif_rx_drain(ifc);
}

void lwipif_tick(struct lwipif *ifc)
{
    if (net_client_ready(ifc->client) && atomic_exchange(&ifc->tx_starved, false))
        post_kick(ifc);
}

struct start_ctx {
    struct lwipif *ifc;
    const struct lwipif_config *cfg;
    sem_t done;
    int rc;
};

/* tcpip thread, core locked (tcpip_init's done callback). */
static void start_in_tcpip(void *arg)
{
    struct start_ctx *s = arg;
    struct lwipif *ifc = s->ifc;
    s->rc = -1;
    if (!netif_add(&ifc->netif, &s->cfg->ip, &s->cfg->netmask, &s->cfg->gw, ifc, lwipif_netif_init,
                   tcpip_input)) {
        devmux_log("lwIP: netif_add failed");
    } else {
        netif_set_default(&ifc->netif);
        netif_set_up(&ifc->netif);
        netif_set_link_up(&ifc->netif); /* announces us: gratuitous ARP */
        s->rc = s->cfg->services ? s->cfg->services(ifc, s->cfg->arg) : 0;
    }
    sem_post(&s->done);
}

int lwipif_start(struct lwipif *ifc, struct net_client *c, const struct lwipif_config *cfg)
{
    ifc->client = c;
    ifc->was_ready = net_client_ready(c);
    struct start_ctx s = {.ifc = ifc, .cfg = cfg, .rc = -1};
    if (sem_init(&s.done, 0, 0)) {
        devmux_log("lwIP: sem_init failed");
        return -1;
    }
    tcpip_init(start_in_tcpip, &s);
    while (sem_wait(&s.done))
        ;
    sem_destroy(&s.done);
    return s.rc;
}

static bool take(_Atomic uint64_t *now, _Atomic uint64_t *last, uint64_t *out)
{
    uint64_t v = atomic_load_explicit(now, memory_order_relaxed);
    bool changed = v != atomic_load_explicit(last, memory_order_relaxed);
    atomic_store_explicit(last, v, memory_order_relaxed);
    *out = v;
    return changed;
}

void lwipif_log_stats(struct lwipif *ifc)
{
    struct lwipif_stats *n = &ifc->stats, *l = &ifc->logged;
    uint64_t rx, nopbuf, mbox, badlen, kicks, tx, nobuf, notready, big;
    bool changed = take(&n->rx_frames, &l->rx_frames, &rx);
    changed |= take(&n->rx_no_pbuf, &l->rx_no_pbuf, &nopbuf);
    changed |= take(&n->rx_mbox, &l->rx_mbox, &mbox);
    changed |= take(&n->rx_bad_len, &l->rx_bad_len, &badlen);
    changed |= take(&n->tx_kicks, &l->tx_kicks, &kicks);
    changed |= take(&n->tx_frames, &l->tx_frames, &tx);
    changed |= take(&n->tx_no_buffer, &l->tx_no_buffer, &nobuf);
    changed |= take(&n->tx_not_ready, &l->tx_not_ready, &notready);
    changed |= take(&n->tx_too_big, &l->tx_too_big, &big);
    if (!changed)
        return;
    devmux_log("lwIP: rx %" PRIu64 " (dropped: no pbuf %" PRIu64 ", mbox full %" PRIu64
               ", bad length %" PRIu64 "), tx %" PRIu64 " (refused: no buffer %" PRIu64
               ", not ready %" PRIu64 ", too big %" PRIu64 "; retries %" PRIu64 ")",
               rx, nopbuf, mbox, badlen, tx, nobuf, notready, big, kicks);
}
