#include "net/common/netlib.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool net_mac_parse(const char *s, uint8_t mac[NET_MAC_LEN])
{
    for (int i = 0; i < NET_MAC_LEN; i++) {
        unsigned v = 0;
        for (int k = 0; k < 2; k++) {
            char ch = *s++;
            unsigned d;
            if (ch >= '0' && ch <= '9')
                d = (unsigned)(ch - '0');
            else if (ch >= 'a' && ch <= 'f')
                d = (unsigned)(ch - 'a' + 10);
            else if (ch >= 'A' && ch <= 'F')
                d = (unsigned)(ch - 'A' + 10);
            else
                return false;
            v = v * 16 + d;
        }
        mac[i] = (uint8_t)v;
        if (*s != (i == NET_MAC_LEN - 1 ? '\0' : ':'))
            return false;
        s++;
    }
    return true;
}

void net_region_name(char *out, size_t len, const char *client, const char *suffix)
{
    const char *net = devmux_config_str("net", "net");
    if (client)
        snprintf(out, len, "%s.%s.%s", net, client, suffix);
    else
        snprintf(out, len, "%s.%s", net, suffix);
}

const struct devmux_item *net_item(const char *client, const char *suffix, const char *item)
{
    char name[128];
    net_region_name(name, sizeof(name), client, suffix);
    const struct devmux_item *it = devmux_item(name, item);
    if (!it)
        devmux_log("no item '%s' in region '%s': the system description does not grant it", item,
                   name);
    return it;
}

int net_producer(struct dmq_producer *p, const char *client, const char *suffix, const char *item,
                 bool fresh)
{
    const struct devmux_item *it = net_item(client, suffix, item);
    if (!it)
        return -1;
    if (dmq_producer_init(p, it->addr, it->size, it->count, item, fresh)) {
        devmux_log("queue '%s' in '%s': cannot attach as producer", item, suffix);
        return -1;
    }
    return 0;
}

int net_consumer(struct dmq_consumer *c, const char *client, const char *suffix, const char *item,
                 bool fresh)
{
    const struct devmux_item *it = net_item(client, suffix, item);
    if (!it)
        return -1;
    if (dmq_consumer_init(c, it->addr, it->size, it->count, item, fresh)) {
        devmux_log("queue '%s' in '%s': cannot attach as consumer", item, suffix);
        return -1;
    }
    return 0;
}

static const char *client_key(unsigned i, const char *key, const char *def)
{
    char k[64];
    snprintf(k, sizeof(k), "client.%u.%s", i, key);
    return devmux_config_str(k, def);
}

static uint64_t client_u64(unsigned i, const char *key, uint64_t def)
{
    char k[64];
    snprintf(k, sizeof(k), "client.%u.%s", i, key);
    return devmux_config_u64(k, def);
}

int net_policy_load(struct net_policy *p)
{
    memset(p, 0, sizeof(*p));
    uint64_t n = devmux_config_u64("clients", 0);
    if (n == 0 || n > NET_MAX_CLIENTS) {
        devmux_log("config 'clients' = %llu; expected 1..%d", (unsigned long long)n,
                   NET_MAX_CLIENTS);
        return -1;
    }
    p->n = (unsigned)n;
    for (unsigned i = 0; i < p->n; i++) {
        struct net_client_policy *c = &p->c[i];
        snprintf(c->name, sizeof(c->name), "%s", client_key(i, "name", "?"));
        if (!net_mac_parse(client_key(i, "mac", ""), c->mac)) {
            devmux_log("client %u ('%s'): config mac '%s' is not a MAC address", i, c->name,
                       client_key(i, "mac", ""));
            return -1;
        }
        c->broadcast = client_u64(i, "broadcast", 1) != 0;
        c->multicast = client_u64(i, "multicast", 1) != 0;
        c->rate_bps = client_u64(i, "rate", 0);
        c->burst = client_u64(i, "burst", 0);
        c->quota = (uint32_t)client_u64(i, "quota", 256);
        const char *peers = client_key(i, "peers", "");
        while (*peers) {
            char *end;
            unsigned long j = strtoul(peers, &end, 10);
            if (end == peers || j >= p->n) {
                devmux_log("client %u ('%s'): config peers '%s' is not a list of client indices", i,
                           c->name, client_key(i, "peers", ""));
                return -1;
            }
            c->peers |= 1ull << j;
            peers = *end == ',' ? end + 1 : end;
        }
    }
    return 0;
}

int net_policy_find(const struct net_policy *p, const uint8_t *mac)
{
    for (unsigned i = 0; i < p->n; i++)
        if (!memcmp(p->c[i].mac, mac, NET_MAC_LEN))
            return (int)i;
    return -1;
}

void net_log_limited(struct net_ratelog *rl, const char *fmt, ...)
{
    uint64_t now = devmux_now_ns();
    if (rl->window_ns && now - rl->window_ns < 1000000000u) {
        rl->suppressed++;
        return;
    }
    rl->window_ns = now;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (rl->suppressed)
        devmux_log("%s (and %llu more like it in the last second)", buf,
                   (unsigned long long)rl->suppressed);
    else
        devmux_log("%s", buf);
    rl->suppressed = 0;
}
