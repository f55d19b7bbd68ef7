/*
 * The client side of a virtual NIC (include/devmux/net_client.h).  A client
 * owns its buffers: receive buffers go to its copier on the rx.free queue
 * and come back full on rx.active; transmit buffers go full to the tx
 * virtualiser on tx.active and come back on tx.free once copied out.
 */
#include "devmux/net_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/common/netlib.h"

#define WAIT_RX 1u
#define WAIT_TX 2u

/* fresh: we reset the pair for a restarted copier (we are the survivor). */
static int attach_rx(struct net_client *c, bool fresh)
{
    if (net_producer(&c->rx_free, c->name, NET_REGION_CLIENT_RX, NET_ITEM_FREE, fresh) ||
        net_consumer(&c->rx_active, c->name, NET_REGION_CLIENT_RX, NET_ITEM_ACTIVE, fresh))
        return -1;
    /* Every receive buffer the application does not hold goes to the copier. */
    for (uint32_t i = 0; i < c->rx_count && dmq_space(&c->rx_free); i++) {
        if (c->rx_out[i])
            continue;
        struct dmq_desc d = {.offset = (uint64_t)i * c->buf_size, .len = c->buf_size};
        dmq_put(&c->rx_free, &d);
    }
    dmq_publish(&c->rx_free);
    /* Ask to be woken by the first frame (we are not polling). */
    dmq_consumer_sleep(&c->rx_active);
    microkit_notify(NET_CLIENT_CH_RX);
    return 0;
}

static int attach_tx(struct net_client *c)
{
    if (net_producer(&c->tx_active, c->name, NET_REGION_CLIENT_TX, NET_ITEM_ACTIVE, false) ||
        net_consumer(&c->tx_free, c->name, NET_REGION_CLIENT_TX, NET_ITEM_FREE, false))
        return -1;
    for (c->tx_top = 0; c->tx_top < c->tx_count; c->tx_top++)
        c->tx_stack[c->tx_top] = c->tx_count - 1 - c->tx_top;
    microkit_notify(NET_CLIENT_CH_TX);
    return 0;
}

int net_client_init(struct net_client *c)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->name, sizeof(c->name), "%s", devmux_config_str("client", microkit_name));
    if (!net_mac_parse(devmux_config_str("mac", ""), c->mac)) {
        devmux_log("config mac '%s' is not a MAC address", devmux_config_str("mac", ""));
        return -1;
    }
    const struct devmux_item *rxb = net_item(c->name, NET_REGION_CLIENT_RX, NET_ITEM_BUFFERS);
    const struct devmux_item *txb = net_item(c->name, NET_REGION_CLIENT_TX, NET_ITEM_BUFFERS);
    const struct devmux_item *rxs = net_item(c->name, NET_REGION_CLIENT_RX, NET_ITEM_SYNC);
    const struct devmux_item *txs = net_item(c->name, NET_REGION_CLIENT_TX, NET_ITEM_SYNC);
    if (!rxb || !txb || !rxs || !txs || rxb->elem != txb->elem || rxb->elem < NET_MAX_FRAME ||
        rxs->size < NET_SYNC_BYTES || txs->size < NET_SYNC_BYTES) {
        devmux_log("client regions are missing or malformed");
        return -1;
    }
    c->buf_size = rxb->elem;
    c->rx_buffers = rxb->addr;
    c->rx_count = rxb->count;
    c->tx_buffers = txb->addr;
    c->tx_count = txb->count;
    c->rx_sync = rxs->addr;
    c->tx_sync = txs->addr;
    c->tx_stack = calloc(c->tx_count, sizeof(*c->tx_stack));
    c->rx_out = calloc(c->rx_count, 1);
    if (!c->tx_stack || !c->rx_out)
        return -1;
    c->up_acked = atomic_load(&c->rx_sync->up_ack);
    c->request = devmux_restarts();
    if (c->request == 0)
        return attach_rx(c, false) || attach_tx(c) ? -1 : 0;
    /* Restarted: the copier and the tx virtualiser own the queue state and
     * reset it for us; until they acknowledge, hands off. */
    atomic_store(&c->waiting, WAIT_RX | WAIT_TX);
    atomic_store_explicit(&c->rx_sync->request, c->request, memory_order_release);
    atomic_store_explicit(&c->tx_sync->request, c->request, memory_order_release);
    microkit_notify(NET_CLIENT_CH_RX);
    microkit_notify(NET_CLIENT_CH_TX);
    return 0;
}

bool net_client_ready(const struct net_client *c)
{
    return atomic_load_explicit(&c->waiting, memory_order_acquire) == 0;
}

bool net_client_notified(struct net_client *c, microkit_channel ch)
{
    if (ch != NET_CLIENT_CH_RX && ch != NET_CLIENT_CH_TX)
        return false;
    unsigned w = atomic_load_explicit(&c->waiting, memory_order_acquire);
    if (ch == NET_CLIENT_CH_RX && (w & WAIT_RX) &&
        atomic_load_explicit(&c->rx_sync->ack, memory_order_acquire) == c->request) {
        if (attach_rx(c, false) == 0)
            atomic_fetch_and_explicit(&c->waiting, ~WAIT_RX, memory_order_release);
    }
    /* Our copier restarted: we own these buffers, so we reset the pair. */
    uint32_t up = atomic_load_explicit(&c->rx_sync->up_request, memory_order_acquire);
    if (ch == NET_CLIENT_CH_RX && !(w & WAIT_RX) && up != c->up_acked && attach_rx(c, true) == 0) {
        c->up_acked = up;
        atomic_store_explicit(&c->rx_sync->up_ack, up, memory_order_release);
        microkit_notify(NET_CLIENT_CH_RX);
    }
    if (ch == NET_CLIENT_CH_TX && (w & WAIT_TX) &&
        atomic_load_explicit(&c->tx_sync->ack, memory_order_acquire) == c->request) {
        if (attach_tx(c) == 0)
            atomic_fetch_and_explicit(&c->waiting, ~WAIT_TX, memory_order_release);
    }
    return true;
}

bool net_client_rx(struct net_client *c, const uint8_t **frame, uint32_t *len, uint32_t *handle)
{
    if (atomic_load_explicit(&c->waiting, memory_order_acquire) & WAIT_RX)
        return false;
    while (c->rx_active.tail_seen != c->rx_active.head || dmq_avail(&c->rx_active)) {
        struct dmq_desc d;
        dmq_take(&c->rx_active, &d);
        /* The copier is trusted, but a bad descriptor must still never make
         * us read outside our own buffers. */
        if (d.offset % c->buf_size || d.offset / c->buf_size >= c->rx_count ||
            d.len > c->buf_size) {
            dmq_fault(&c->rx_active.q, DMQ_FAULT_DESC, d.offset, d.len);
            continue;
        }
        *handle = (uint32_t)(d.offset / c->buf_size);
        c->rx_out[*handle] = 1;
        *frame = c->rx_buffers + d.offset;
        *len = d.len;
        return true;
    }
    return false;
}

void net_client_rx_done(struct net_client *c, uint32_t handle)
{
    if (handle >= c->rx_count || !c->rx_out[handle] || !dmq_space(&c->rx_free))
        return;
    c->rx_out[handle] = 0;
    struct dmq_desc d = {.offset = (uint64_t)handle * c->buf_size, .len = c->buf_size};
    dmq_put(&c->rx_free, &d);
}

bool net_client_rx_flush(struct net_client *c)
{
    if (atomic_load_explicit(&c->waiting, memory_order_acquire) & WAIT_RX)
        return false;
    bool wake = dmq_publish(&c->rx_free);
    wake |= dmq_release(&c->rx_active);
    if (wake)
        microkit_notify(NET_CLIENT_CH_RX);
    if (c->rx_active.tail_seen != c->rx_active.head || dmq_avail(&c->rx_active))
        return true;
    return dmq_consumer_sleep(&c->rx_active);
}

uint8_t *net_client_tx_buffer(struct net_client *c, uint32_t *handle)
{
    if (atomic_load_explicit(&c->waiting, memory_order_acquire) & WAIT_TX)
        return NULL;
    for (;;) {
        if (c->tx_top) {
            *handle = c->tx_stack[--c->tx_top];
            return c->tx_buffers + (size_t)*handle * c->buf_size;
        }
        struct dmq_desc d;
        if (c->tx_free.tail_seen == c->tx_free.head && dmq_avail(&c->tx_free) == 0) {
            if (dmq_release(&c->tx_free))
                microkit_notify(NET_CLIENT_CH_TX);
            if (!dmq_consumer_sleep(&c->tx_free))
                return NULL;
            continue;
        }
        dmq_take(&c->tx_free, &d);
        uint64_t i = d.offset / c->buf_size;
        if (d.offset % c->buf_size || i >= c->tx_count) {
            dmq_fault(&c->tx_free.q, DMQ_FAULT_DESC, d.offset, d.len);
            continue;
        }
        if (c->tx_top < c->tx_count)
            c->tx_stack[c->tx_top++] = (uint32_t)i;
    }
}

void net_client_tx_unget(struct net_client *c, uint32_t handle)
{
    if (handle < c->tx_count && c->tx_top < c->tx_count)
        c->tx_stack[c->tx_top++] = handle;
}

void net_client_tx_send(struct net_client *c, uint32_t handle, uint32_t len)
{
    if (handle >= c->tx_count || len > c->buf_size || !dmq_space(&c->tx_active))
        return;
    struct dmq_desc d = {.offset = (uint64_t)handle * c->buf_size, .len = len};
    dmq_put(&c->tx_active, &d);
}

void net_client_tx_flush(struct net_client *c)
{
    if (atomic_load_explicit(&c->waiting, memory_order_acquire) & WAIT_TX)
        return;
    bool wake = dmq_publish(&c->tx_active);
    wake |= dmq_release(&c->tx_free);
    if (wake)
        microkit_notify(NET_CLIENT_CH_TX);
}
