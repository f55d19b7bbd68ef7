/*
 * The client side of a shared network: what a client OS's frontend (the TAP
 * frontend, an lwIP component, your own) links to reach its virtual NIC.
 * It hides the queues, the buffer bookkeeping and the restart handshake of
 * docs/protocols/net.md.
 *
 * Threads: the receive calls (net_client_rx*) belong to one thread and the
 * transmit calls (net_client_tx*) to one thread, which may be another
 * (lwIP transmits from its tcpip thread).  net_client_notified() runs on the
 * component's event loop; it attaches a pair only while the `waiting` bit of
 * that pair keeps the rx and tx calls away from it.
 */
#ifndef DEVMUX_NET_CLIENT_H
#define DEVMUX_NET_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include "devmux/microkit.h"
#include "devmux/net.h"
#include "devmux/queue.h"

struct net_client {
    char name[64];
    uint8_t mac[NET_MAC_LEN];
    uint32_t buf_size;
    /* receive side: buffers in our <net>.<c>.rx region */
    struct dmq_producer rx_free;
    struct dmq_consumer rx_active;
    uint8_t *rx_buffers;
    uint32_t rx_count;
    struct net_sync *rx_sync;
    /* transmit side: buffers in our <net>.<c>.tx region */
    struct dmq_producer tx_active;
    struct dmq_consumer tx_free;
    uint8_t *tx_buffers;
    uint32_t tx_count;
    struct net_sync *tx_sync;
    uint32_t *tx_stack, tx_top; /* transmit buffers we hold, as indices */
    uint8_t *rx_out;            /* per rx buffer: 1 while the application has it */
    uint32_t up_acked;          /* copier restart last acknowledged */
    /* restart handshake: bit 0 rx pair, bit 1 tx pair still waiting */
    _Atomic unsigned waiting;
    uint32_t request;
    bool rx_notify, tx_notify; /* a publish asked for a notification */
};

/* Maps the regions named by the component's config (`net`, `client`, `mac`)
 * and attaches the queues.  After a restart it starts the handshake and the
 * client is not ready until net_client_notified() says so.  Returns 0, or
 * -1 with the reason logged. */
int net_client_init(struct net_client *c);

/* The client may use the queues (first start, or handshake complete). */
bool net_client_ready(const struct net_client *c);

/* Call from notified(ch) for NET_CLIENT_CH_RX and NET_CLIENT_CH_TX.  Returns
 * true if ch belonged to the client.  Completes the restart handshake; on
 * the step that makes the client ready it gives all receive buffers to the
 * copier.  When the copier restarted, it resets the receive pair and gives
 * the copier every receive buffer the application does not hold. */
bool net_client_notified(struct net_client *c, microkit_channel ch);

/* ---- receive ---- */

/* The next received frame, or false if none.  The frame stays valid until
 * net_client_rx_done(handle). */
bool net_client_rx(struct net_client *c, const uint8_t **frame, uint32_t *len, uint32_t *handle);
/* Give a receive buffer back for the next frame. */
void net_client_rx_done(struct net_client *c, uint32_t handle);
/* Publish returned buffers and notify the copier if it asked.  Call after a
 * batch.  Returns false (and asks to be notified) if no frame is waiting, so
 * the caller may sleep. */
bool net_client_rx_flush(struct net_client *c);

/* ---- transmit ---- */

/* A free transmit buffer of c->buf_size bytes, or NULL if all of ours are
 * in flight (wait for a notification on NET_CLIENT_CH_TX, then retry). */
uint8_t *net_client_tx_buffer(struct net_client *c, uint32_t *handle);
/* Give back a transmit buffer unused (nothing to send after all). */
void net_client_tx_unget(struct net_client *c, uint32_t handle);
/* Queue the frame in buffer handle, len bytes. */
void net_client_tx_send(struct net_client *c, uint32_t handle, uint32_t len);
/* Publish queued frames and notify the tx virtualiser if it asked. */
void net_client_tx_flush(struct net_client *c);

#endif
