/*
 * Glue between lwIP (Debian's liblwip, NO_SYS=0) and a devmux network
 * client (include/devmux/net_client.h).
 *
 * Threads:
 *   - the component's event loop owns the receive side: lwipif_notified()
 *     takes frames off the client's RX queue and posts them to the tcpip
 *     thread with netif->input (tcpip_input, a non-blocking mbox post);
 *   - lwIP's tcpip thread owns the transmit side: the netif's linkoutput
 *     copies each frame into a client TX buffer and publishes it.
 * Every other lwIP call is made in the tcpip thread (tcpip_init's done
 * callback, tcpip_try_callback), so the core lock is never taken from the
 * event loop and linkoutput never runs there.
 */
#ifndef DEVMUX_NET_LWIP_NETIF_H
#define DEVMUX_NET_LWIP_NETIF_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "devmux/net_client.h"
#include "lwip/ip4_addr.h"
#include "lwip/netif.h"

struct lwipif_stats {
    /* written by the event loop */
    _Atomic uint64_t rx_frames;  /* handed to the tcpip thread */
    _Atomic uint64_t rx_no_pbuf; /* dropped: no pbuf for it */
    _Atomic uint64_t rx_mbox;    /* dropped: the tcpip mbox was full */
    _Atomic uint64_t rx_bad_len; /* dropped: empty or over NET_MAX_FRAME */
    _Atomic uint64_t tx_kicks;   /* TCP output retried after TX buffers came back */
    /* written by the tcpip thread */
    _Atomic uint64_t tx_frames;    /* queued to the tx virtualiser */
    _Atomic uint64_t tx_no_buffer; /* refused (ERR_MEM): every TX buffer in flight */
    _Atomic uint64_t tx_not_ready; /* refused (ERR_MEM): restart handshake pending */
    _Atomic uint64_t tx_too_big;   /* dropped: over the client's buffer size */
};

struct lwipif {
    struct netif netif;
    struct net_client *client;
    struct lwipif_stats stats;
    /* Set by the tcpip thread when linkoutput found no TX buffer; the event
     * loop clears it on the next TX notification and has TCP retry. */
    _Atomic bool tx_starved;
    bool was_ready;             /* event loop only: the client was ready last time */
    struct lwipif_stats logged; /* event loop only: as last logged */
};

struct lwipif_config {
    ip4_addr_t ip, netmask, gw;
    /* Run in the tcpip thread once the netif is up: start services there.
     * Returns 0, or -1 to make lwipif_start fail. */
    int (*services)(struct lwipif *ifc, void *arg);
    void *arg;
};

/* Starts lwIP (tcpip_init: creates the tcpip thread), adds the netif for
 * client c (already initialised) as the default, sets it and its link up,
 * and runs cfg->services, all in the tcpip thread; waits for that to finish.
 * Returns 0 or -1.  Call once, from init(). */
int lwipif_start(struct lwipif *ifc, struct net_client *c, const struct lwipif_config *cfg);

/* netif_add() init function; netif->state must point to the struct lwipif.
 * Sets the MAC from the client, MTU 1500, Ethernet/ARP/broadcast.  Runs in
 * the tcpip thread. */
err_t lwipif_netif_init(struct netif *netif);

/* From the component's notified(ch): lets the client consume ch, drains the
 * RX queue into lwIP, and restarts TCP output when TX buffers came back or
 * the client just became ready.  Event loop only. */
void lwipif_notified(struct lwipif *ifc, microkit_channel ch);

/* Drains the RX queue (also called once after init).  Event loop only. */
void lwipif_rx_drain(struct lwipif *ifc);

/* From a periodic timer: retries TCP output if linkoutput ran out of TX
 * buffers and no notification has come since.  Event loop only. */
void lwipif_tick(struct lwipif *ifc);

/* Logs the counters if any changed since the last call.  Event loop only. */
void lwipif_log_stats(struct lwipif *ifc);

#endif
