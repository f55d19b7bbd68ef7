/*
 * Helpers shared by the network components: finding their regions and
 * queues by the names docs/protocols/net.md fixes, reading the sharing
 * policy from config, and logging a misbehaving peer without letting it
 * flood the log.
 */
#ifndef DEVMUX_NET_NETLIB_H
#define DEVMUX_NET_NETLIB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "devmux/microkit.h"
#include "devmux/net.h"
#include "devmux/queue.h"

/* "<net>.<suffix>" or "<net>.<client>.<suffix>" (client may be NULL). */
void net_region_name(char *out, size_t len, const char *client, const char *suffix);

/* The item of region "<net>[.<client>].<suffix>"; logs and returns NULL when
 * the system description did not grant it. */
const struct devmux_item *net_item(const char *client, const char *suffix, const char *item);

/* Attach a queue item as producer or consumer (fresh as in queue.h).
 * Returns 0 or -1, logged. */
int net_producer(struct dmq_producer *p, const char *client, const char *suffix, const char *item,
                 bool fresh);
int net_consumer(struct dmq_consumer *c, const char *client, const char *suffix, const char *item,
                 bool fresh);

/* The survivor's side of the restart handshake (net.h): the request a
 * restarted peer made that we have not answered yet, or 0. */
static inline uint32_t net_sync_pending(struct net_sync *s, uint32_t acked)
{
    uint32_t req = atomic_load_explicit(&s->request, memory_order_acquire);
    return req == acked ? 0 : req;
}
/* A token bucket of bits, in bit-nanoseconds per second (bits x 1e9), so
 * that time converts to tokens exactly and no remainder is ever lost,
 * however often the bucket is looked at: a neighbour that wakes us
 * constantly cannot make a limited client's tokens round away.  The tx
 * virtualiser shapes with it (rate), the rx virtualiser polices (rx_rate). */
struct net_bucket {
    uint64_t rate, burst; /* bits per second (0: unlimited), bytes */
    unsigned __int128 tokens;
    uint64_t last_ns;
};
/* A full bucket. */
void net_bucket_init(struct net_bucket *b, uint64_t rate, uint64_t burst);
/* Takes len bytes' worth if the bucket has them and returns true; else
 * returns false and, if wait_ns is not NULL, sets it to when it will. */
bool net_bucket_take(struct net_bucket *b, uint32_t len, uint64_t *wait_ns);
/* The time it takes an empty bucket to fill half-way. */
uint64_t net_bucket_half_fill_ns(const struct net_bucket *b);

/* A survivor answers restart handshakes at a bounded rate: a peer that asks
 * again and again without restarting must not keep it busy resetting
 * queues.  A request after a fault the supervisor reported is answered at
 * once (a real restart is never slowed); others take a token from a
 * bucket of NET_RESYNC_BURST refilled one per NET_RESYNC_INTERVAL_NS. */
#define NET_RESYNC_BURST       4
#define NET_RESYNC_INTERVAL_NS 100000000ull /* 10 a second: faster than any restart back-off */
struct net_resync_limit {
    uint64_t credit_ns, last_ns;
    bool faulted; /* peer_fault seen since the last answer */
};
/* 0: answer now (the token is taken); else ns until it may be answered. */
uint64_t net_resync_wait(struct net_resync_limit *l);

/* Work a peer's garbage may cost us (net.md §4): refused descriptors per
 * window.  Beyond the budget it sits out the rest of the window, so
 * garbage costs the core at most NET_GARBAGE_BUDGET refusals per
 * NET_GARBAGE_WINDOW_NS per queue (measured in docs/benchmarks.md), while
 * an honest peer never has a descriptor refused and is never paused.  The
 * owner counts refusals in `refused` (its queue fault handler). */
#define NET_GARBAGE_BUDGET    64
#define NET_GARBAGE_WINDOW_NS 10000000ull
struct net_garbage {
    uint32_t refused;
    uint64_t window_ns, paused_until_ns;
};
/* Is the peer sitting out a window?  When this call starts the pause, it
 * sets *started; *wait_ns is the time until the pause ends. */
bool net_garbage_paused(struct net_garbage *g, bool *started, uint64_t *wait_ns);

/* A peer that notifies without giving us work (a storm) gets its channel
 * left quiet (devmux_channel_quiet) for a while: more than
 * NET_STORM_LIMIT idle notifications in NET_STORM_WINDOW_NS cost it
 * NET_STORM_QUIET_NS of silence.  An honest peer notifies only when we
 * asked (the queues' wake flags), so it never comes near the limit. */
#define NET_STORM_LIMIT     8
#define NET_STORM_WINDOW_NS 1000000ull
#define NET_STORM_QUIET_NS  5000000ull
struct net_storm {
    uint32_t idle;
    uint64_t window_ns;
};
/* One notification on ch that brought no work.  Returns true when the
 * channel was just made quiet. */
bool net_storm_idle(struct net_storm *s, microkit_channel ch);

/* The pair is reset: answer req on channel ch and remember it in *acked. */
static inline void net_sync_ack(struct net_sync *s, uint32_t req, uint32_t *acked,
                                microkit_channel ch)
{
    *acked = req;
    atomic_store_explicit(&s->ack, req, memory_order_release);
    microkit_notify(ch);
}

/* One client's sharing policy, as the networks: section set it. */
struct net_client_policy {
    char name[64];
    uint8_t mac[NET_MAC_LEN];
    bool broadcast, multicast;
    uint64_t peers;                 /* bit j: this client may send to client j directly */
    uint64_t rate_bps;              /* 0: unlimited */
    uint64_t burst;                 /* bytes */
    uint32_t quota;                 /* its buffers */
    uint64_t rx_rate_bps, rx_burst; /* policing of what it receives; 0: none */
    uint32_t rx_share;              /* shared receive buffers it may hold */
    const char *ipv4, *ipv6;        /* bound addresses, "a/len,..." ("" if none) */
    bool dhcp;                      /* its IPv4 address may come from DHCP */
};

struct net_policy {
    unsigned n;
    struct net_client_policy c[NET_MAX_CLIENTS];
};

/* Reads clients and client.<i>.* from config.  Returns 0 or -1, logged. */
int net_policy_load(struct net_policy *p);
/* The client whose MAC this is, or -1. */
int net_policy_find(const struct net_policy *p, const uint8_t *mac);
/* May client `from` hand a frame for client `to` over directly? */
static inline bool net_policy_allows(const struct net_policy *p, int from, int to)
{
    return from != to && (p->c[from].peers >> to) & 1u;
}

/* At most one line per second per limiter; the rest are counted and the
 * count is reported with the next line that gets through. */
struct net_ratelog {
    uint64_t window_ns;
    uint64_t suppressed;
};
void net_log_limited(struct net_ratelog *rl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- the NIC driver's side of drv_rx / drv_tx -----------------------------
 * What every NIC driver (net-packet, net-virtio) does the same way towards
 * the virtualisers: find its regions, attach its four queues or go through
 * the restart handshake first, hold the rx_dma buffers the rx virtualiser
 * gives it, hand received frames and sent tx_dma buffers back, count. */
struct net_drv {
    struct net_drv_stats *stats;
    struct net_sync *rx_sync, *tx_sync;
    uint32_t sync_request;
    bool rx_synced, tx_synced;
    const struct devmux_item *it_rx_free, *it_rx_active, *it_tx_active, *it_tx_free;
    const struct devmux_item *rx_buffers, *tx_buffers;
    struct dmq_consumer rx_free;   /* drv_rx.free: empty rx_dma buffers from the rx virt */
    struct dmq_producer rx_active; /* drv_rx.active: received frames to the rx virt */
    struct dmq_consumer tx_active; /* drv_tx.active: frames to send from the tx virt */
    struct dmq_producer tx_free;   /* drv_tx.free: sent tx_dma buffers back */
    struct dmq_pool rx_pool, tx_pool;
    /* rx_dma buffers we hold and have not given to the device or the rx
     * virtualiser yet. */
    uint32_t *rx_stack;
    uint32_t rx_nfree;
    uint64_t timer_at; /* deadline of the pending timeout, 0: none */
    struct net_ratelog log;
    /* Queue faults count against the direction they happened in. */
    struct net_drv_fault {
        struct net_drv *drv;
        struct net_counters *c;
    } fault_rx, fault_tx;
};

/* Finds the regions of network `net` and sets up the pools.  A driver
 * cannot run without them: logs and aborts on a bad description. */
void net_drv_init(struct net_drv *d, const char *net);
/* Attaches the queues, or (after a restart) asks the virtualisers to reset
 * them first; stats->restarts is set either way. */
void net_drv_start(struct net_drv *d);
/* After a restart, attaches each pair once its survivor acknowledged. */
void net_drv_check_sync(struct net_drv *d);
/* Takes the empty buffers the rx virtualiser handed us onto rx_stack. */
void net_drv_rx_refill(struct net_drv *d);
/* Puts a frame of len bytes in rx buffer i (ours) on drv_rx.active and
 * counts it.  The caller checked dmq_space(&d->rx_active). */
void net_drv_rx_put(struct net_drv *d, uint32_t i, uint32_t len);
void net_drv_rx_publish(struct net_drv *d);
/* The next frame to send: 1 with *desc and *index (the buffer is now ours),
 * 0 for a descriptor refused (counted; try the next), -1 when
 * drv_tx.active is empty (and we asked to be woken). */
int net_drv_tx_take(struct net_drv *d, struct dmq_desc *desc, uint32_t *index);
/* Gives tx buffer i back on drv_tx.free.  The caller checked space. */
void net_drv_tx_return(struct net_drv *d, uint32_t i);
/* End of a tx turn: release what we took, publish what we returned. */
void net_drv_tx_flush(struct net_drv *d);
/* A one-shot timeout in ns unless an earlier one is pending; clear
 * timer_at when it fires. */
void net_drv_timer(struct net_drv *d, uint64_t ns);
/* peer_ready of a driver: the virtualiser sees our request or wake-up. */
void net_drv_peer_ready(microkit_channel ch);

#endif
