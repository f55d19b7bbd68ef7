/*
 * The network device class: how the components of one shared network talk.
 * One header per device class, as in sDDF.  docs/protocols/net.md is the
 * specification; this file is its C form.
 *
 *   wire <-> [driver] <-> [rx virt] --+--> [copier a] --> [client a]
 *                     <-> [tx virt] <-+--------------------- [client a]
 *                              |      +--> [copier b] --> [client b]
 *                              +-- local (client-to-client) --> [rx virt]
 *
 * The system description's `networks:` section expands into these
 * components, their regions and channels (src/sdf/net.c).  Every name and
 * channel number below is fixed by that expansion.
 */
#ifndef DEVMUX_NET_H
#define DEVMUX_NET_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define NET_MAX_CLIENTS 60   /* channel ids 2..61 in the virtualisers */
#define NET_MAX_FRAME   1518 /* Ethernet frame without FCS, with a VLAN tag */
#define NET_MIN_FRAME   14   /* an Ethernet header */
#define NET_MAC_LEN     6
#define NET_MAX_ADDRS   8 /* bound IPv4 plus IPv6 addresses or prefixes per client */

/* ---- channels ------------------------------------------------------------
 * Channel ids each generated component sees.  A client's frontend program
 * (TAP, lwIP, your own) uses NET_CLIENT_CH_*; ids from 2 up are its own. */
enum {
    NET_DRV_CH_RX = 0,      /* driver <-> rx virtualiser */
    NET_DRV_CH_TX = 1,      /* driver <-> tx virtualiser */
    NET_DRV_CH_IRQ = 2,     /* driver: the device's interrupt */
    NET_RXV_CH_DRV = 0,     /* rx virtualiser <-> driver */
    NET_RXV_CH_LOCAL = 1,   /* rx virtualiser <-> tx virtualiser (local frames) */
    NET_RXV_CH_COPY0 = 2,   /* rx virtualiser <-> copier of client i: 2 + i */
    NET_TXV_CH_DRV = 0,     /* tx virtualiser <-> driver */
    NET_TXV_CH_LOCAL = 1,   /* tx virtualiser <-> rx virtualiser */
    NET_TXV_CH_CLIENT0 = 2, /* tx virtualiser <-> client i: 2 + i */
    NET_COPY_CH_VIRT = 0,   /* copier <-> rx virtualiser */
    NET_COPY_CH_CLIENT = 1, /* copier <-> its client */
    NET_CLIENT_CH_RX = 0,   /* client <-> its copier: frames arrive */
    NET_CLIENT_CH_TX = 1,   /* client <-> tx virtualiser: frames leave */
    NET_CLIENT_CH_DEV = 2,  /* TAP frontend: the TAP interface's readiness */
};

/* ---- regions and items ---------------------------------------------------
 * Region names are "<net>.<suffix>"; client regions "<net>.<client>.<suffix>".
 * Item names inside them are fixed.  Who maps what, and how:
 *
 * region             items                       rw                  r
 * <net>.rx_dma       buffers                     driver              rx virt, copiers
 * <net>.tx_dma       buffers                     tx virt             driver, rx virt, copiers
 * <net>.drv_rx       free active sync stats      driver, rx virt
 * <net>.drv_tx       active free sync            driver, tx virt
 * <net>.local        active free                 tx virt, rx virt
 * <net>.rx_stats     stats                       rx virt
 * <net>.tx_stats     stats                       tx virt
 * <net>.<c>.copy     active free stats sync      rx virt, copier c
 * <net>.<c>.rx       free active sync buffers    client c, copier c
 * <net>.<c>.tx       active free sync buffers    client c, tx virt
 *
 * "active" queues carry filled buffers downstream, "free" queues carry empty
 * ones back.  Producer -> consumer of each:
 *   drv_rx.free    rx virt -> driver      drv_rx.active  driver -> rx virt
 *   drv_tx.active  tx virt -> driver      drv_tx.free    driver -> tx virt
 *   local.active   tx virt -> rx virt     local.free     rx virt -> tx virt
 *   copy.active    rx virt -> copier      copy.free      copier -> rx virt
 *   rx.free        client -> copier       rx.active      copier -> client
 *   tx.active      client -> tx virt      tx.free        tx virt -> client
 */
#define NET_REGION_RX_DMA    "rx_dma"
#define NET_REGION_TX_DMA    "tx_dma"
#define NET_REGION_DRV_RX    "drv_rx"
#define NET_REGION_DRV_TX    "drv_tx"
#define NET_REGION_LOCAL     "local"
#define NET_REGION_RX_STATS  "rx_stats"
#define NET_REGION_TX_STATS  "tx_stats"
#define NET_REGION_COPY      "copy"
#define NET_REGION_CLIENT_RX "rx"
#define NET_REGION_CLIENT_TX "tx"
#define NET_REGION_BIND      "bind"
/* A NIC driver on a hardware-layer device (nic: {pci: ...}) also gets this
 * region, device-visible and its own, for descriptor rings and headers;
 * rx_dma and tx_dma are then device-visible too, so frames move by DMA
 * straight between the device and the network's buffers. */
#define NET_REGION_DRV_DMA "drv_dma"
#define NET_DRV_DMA_BYTES  (128u * 1024u)

#define NET_ITEM_BUFFERS "buffers"
#define NET_ITEM_FREE    "free"
#define NET_ITEM_ACTIVE  "active"
#define NET_ITEM_SYNC    "sync"
#define NET_ITEM_STATS   "stats"
#define NET_ITEM_LEASES  "leases"

/* <net>.bind / leases: the IPv4 address each client with `dhcp: true` was
 * given by a DHCP server on the wire, which the rx virtualiser saw go by
 * (it writes; the tx virtualiser and `ctl net` read).  One word per
 * client: the address (host byte order) in the high 32 bits, the lease's
 * end in whole seconds of CLOCK_MONOTONIC in the low 32; 0: none. */
struct net_leases {
    _Atomic uint64_t lease[NET_MAX_CLIENTS];
};
#define NET_LEASE(addr, end_s) ((uint64_t)(addr) << 32 | (uint32_t)(end_s))
#define NET_LEASE_ADDR(l)      ((uint32_t)((l) >> 32))
#define NET_LEASE_END(l)       ((uint32_t)(l))

/* ---- descriptors ---------------------------------------------------------
 * A struct dmq_desc names a buffer by its byte offset in a buffer pool and
 * carries the frame length.  meta is 0 except:
 *   copy.active:  NET_META_TX_POOL set when the buffer is in tx_dma (a frame
 *                 switched locally) rather than rx_dma.
 *   local.active: the sending client's index + 1 in the low 16 bits. */
#define NET_META_TX_POOL   (1u << 31)
#define NET_META_SRC(meta) ((int)((meta)&0xffffu) - 1)

/* ---- restart handshake ---------------------------------------------------
 * Either side of a queue pair may restart while the other runs on: the
 * driver (its virtualisers survive), a client (its copier and the tx
 * virtualiser survive), a copier (the rx virtualiser and its client
 * survive).  The survivor owns the queue state.  A restarted component
 * (devmux_restarts() > 0) must not touch the pair until:
 *   1. it stores its restart count in its request word and notifies;
 *   2. the survivor, on peer_ready() (or that notification), stops using the
 *      pair, zeroes both ring headers, takes back every buffer the dead side
 *      held, stores the same value in the matching ack word and notifies;
 *   3. the restarted side sees ack == request and attaches with
 *      fresh = false (a client gives all its buffers again; the driver waits
 *      for free buffers; a copier waits for the client's buffers).
 * `request`/`ack` serve the restart of the side further from the wire (the
 * driver in drv_*, the copier in copy, the client in rx/tx); `up_request`/
 * `up_ack` the restart of the side nearer the wire where that side is not
 * the pool's owner (the copier, in the client's rx region).
 * On first start the regions are zero, so everyone attaches with
 * fresh = false without a handshake; a component starting takes the acks
 * already in memory as done, so it never replays an old request. */
struct net_sync {
    _Atomic uint32_t request; /* written by the restartable side */
    uint8_t pad0[60];
    _Atomic uint32_t ack; /* written by the survivor */
    uint8_t pad1[60];
    _Atomic uint32_t up_request; /* written by the copier, in a client's rx region */
    uint8_t pad2[60];
    _Atomic uint32_t up_ack; /* written by the client */
    uint8_t pad3[60];
};
#define NET_SYNC_BYTES 256

/* ---- counters ------------------------------------------------------------
 * Each counter block has exactly one writer; `devmux ctl net` reads them
 * from the supervisor.  All u64, monotonic since the system started (they
 * live in regions, so they survive restarts of their writer). */

/* Drop reasons, indices into the drop arrays below. */
enum net_drop {
    NET_DROP_UNKNOWN_DST = 0, /* rx: unicast for no client */
    NET_DROP_QUEUE_FULL,      /* a queue to a copier or client was full */
    NET_DROP_NO_BUFFER,       /* client gave no free buffer (its quota) */
    NET_DROP_SPOOF,           /* tx: source MAC not the client's own */
    NET_DROP_PEER_DENIED,     /* tx: to another client, policy says no */
    NET_DROP_BAD_DESC,        /* descriptor outside the region, not held, duplicate */
    NET_DROP_BAD_LEN,         /* length shorter than a header or over the buffer */
    NET_DROP_BAD_INDEX,       /* queue index jumped */
    NET_DROP_DEVICE,          /* the device or driver refused or lost it */
    NET_DROP_PEER_DOWN,       /* the other side was restarting */
    NET_DROP_SPOOF_IP,        /* tx: IP source not one of the client's addresses */
    NET_DROP_SPOOF_ARP,       /* tx: ARP or neighbour advertisement not for its own address */
    NET_DROP_PROTO,           /* tx: a client with bound addresses sent neither IP nor ARP */
    NET_DROP_SHARE,           /* rx: the client already holds its share of the receive pool */
    NET_DROP_RATE,            /* rx: over the client's rx_rate */
    NET_DROP_REASONS
};

static inline const char *net_drop_name(unsigned r)
{
    static const char *const names[NET_DROP_REASONS] = {
        "unknown_dst", "queue_full", "no_buffer", "spoof",  "peer_denied",
        "bad_desc",    "bad_len",    "bad_index", "device", "peer_down",
        "spoof_ip",    "spoof_arp",  "proto",     "share",  "rate"};
    return r < NET_DROP_REASONS ? names[r] : "?";
}

struct net_counters {
    uint64_t packets, bytes;
    uint64_t drops[NET_DROP_REASONS];
};

/* <net>.rx_stats: the rx virtualiser.  wire = frames from the driver,
 * local = frames switched from the tx virtualiser; client[i] = frames
 * queued towards client i and those dropped on its way. */
struct net_rx_stats {
    struct net_counters wire, local;
    struct net_counters client[NET_MAX_CLIENTS];
    uint64_t held[NET_MAX_CLIENTS]; /* shared buffers queued for or held by its copier, now */
};

/* <net>.tx_stats: the tx virtualiser.  client[i] = frames taken from client
 * i (packets/bytes: accepted) and why others were refused; wire = frames
 * handed to the driver; throttled[i] = frames of client i the rate limit held back. */
struct net_tx_stats {
    struct net_counters wire;
    struct net_counters client[NET_MAX_CLIENTS];
    uint64_t throttled[NET_MAX_CLIENTS];
    uint64_t local[NET_MAX_CLIENTS]; /* frames from client i switched locally */
    /* Restart handshakes client i asked for: answered, and put off because
     * it asked more often than a restarting client could (net.md §6). */
    uint64_t resyncs[NET_MAX_CLIENTS], resyncs_deferred[NET_MAX_CLIENTS];
    /* Turns skipped because client i's descriptors were refused more often
     * than its garbage budget allows (net.md §4). */
    uint64_t garbage_pauses[NET_MAX_CLIENTS];
    /* Times client i's channel was left quiet because it notified without
     * giving us anything to do (net.md §4). */
    uint64_t notify_pauses[NET_MAX_CLIENTS];
};

/* <net>.<c>.copy stats: the copier of client c.  delivered = frames copied
 * into the client's buffers. */
struct net_copy_stats {
    struct net_counters delivered;
    uint64_t resyncs, resyncs_deferred; /* the client's handshakes on its rx pair */
    uint64_t garbage_pauses;            /* as in net_tx_stats, for rx.free */
    uint64_t notify_pauses;             /* as in net_tx_stats */
};

/* <net>.drv_rx stats: the driver. */
struct net_drv_stats {
    struct net_counters rx, tx;
    uint64_t link_up;  /* 1 while the link is up */
    uint64_t restarts; /* how often the driver (re)attached to the device */
    /* A device the driver programs (net-virtio): how often it misbehaved
     * and was reset and re-initialised.  0 for net-packet. */
    uint64_t device_resets;
};

/* ---- frames -------------------------------------------------------------- */

static inline bool net_mac_is_multicast(const uint8_t *mac)
{
    return mac[0] & 1u; /* broadcast is a multicast address too */
}

static inline bool net_mac_is_broadcast(const uint8_t *mac)
{
    static const uint8_t bc[NET_MAC_LEN] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    return memcmp(mac, bc, NET_MAC_LEN) == 0;
}

/* Parses "02:00:00:00:00:0a".  Returns false on anything else. */
bool net_mac_parse(const char *s, uint8_t mac[NET_MAC_LEN]);

#endif
