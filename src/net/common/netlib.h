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
    uint64_t peers;    /* bit j: this client may send to client j directly */
    uint64_t rate_bps; /* 0: unlimited */
    uint64_t burst;    /* bytes */
    uint32_t quota;    /* its buffers */
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

#endif
