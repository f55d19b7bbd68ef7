/*
 * `devmux ctl net`: the per-client counters of each shared network.  The
 * counters live in regions their single writers (rx virtualiser, tx
 * virtualiser, copiers, driver) update; the supervisor created those
 * regions, so it maps them read-only here and reads without any help from
 * the components.  docs/protocols/net.md defines the layout.
 */
#include "supervisor/supervisor.h"

#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "devmux/net.h"

struct view {
    void *map;
    size_t len;
};

/* Item `item` of region `region`, mapped read-only; NULL if absent. */
static const void *view_item(struct sup *s, struct view *v, const char *region, const char *item,
                             size_t need)
{
    v->map = NULL;
    int r = sdf_region_index(s->sys, region);
    if (r < 0)
        return NULL;
    const struct sdf_region *reg = &s->sys->regions[r];
    for (size_t k = 0; k < reg->nitems; k++) {
        if (strcmp(reg->items[k].name, item) || reg->items[k].size < need)
            continue;
        void *m = mmap(NULL, reg->size, PROT_READ, MAP_SHARED, s->regions[r].ro_fd, 0);
        if (m == MAP_FAILED)
            return NULL;
        v->map = m;
        v->len = reg->size;
        return (const char *)m + reg->items[k].offset;
    }
    return NULL;
}

static void unview(struct view *v)
{
    if (v->map)
        munmap(v->map, v->len);
}

static void drops(FILE *f, const char *side, const uint64_t *a, const uint64_t *b)
{
    for (unsigned r = 0; r < NET_DROP_REASONS; r++) {
        uint64_t n = a[r] + (b ? b[r] : 0);
        if (n)
            fprintf(f, " %s_drop_%s=%llu", side, net_drop_name(r), (unsigned long long)n);
    }
}

/* The addresses a client may use: bound=ADDR,... (none: bound=-), and
 * with dhcp: true the lease DHCP gave it (lease=- while it has none). */
static void bound(FILE *f, const struct sdf_net_client *c, uint64_t lease)
{
    fprintf(f, " bound=%s", *c->addrs ? c->addrs : "-");
    if (!c->dhcp)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint32_t a = NET_LEASE_ADDR(lease);
    if (!lease || NET_LEASE_END(lease) <= (uint64_t)ts.tv_sec)
        fputs(" lease=-", f);
    else
        fprintf(f, " lease=%u.%u.%u.%u/%llus", a >> 24, a >> 16 & 255, a >> 8 & 255, a & 255,
                (unsigned long long)(NET_LEASE_END(lease) - (uint64_t)ts.tv_sec));
}

static void report_one(struct sup *s, const struct sdf_network *net, FILE *f)
{
    char name[160];
    struct view vr, vt, vd;
    snprintf(name, sizeof(name), "%s.%s", net->name, NET_REGION_RX_STATS);
    const struct net_rx_stats *rx = view_item(s, &vr, name, NET_ITEM_STATS, sizeof(*rx));
    snprintf(name, sizeof(name), "%s.%s", net->name, NET_REGION_TX_STATS);
    const struct net_tx_stats *tx = view_item(s, &vt, name, NET_ITEM_STATS, sizeof(*tx));
    snprintf(name, sizeof(name), "%s.%s", net->name, NET_REGION_DRV_RX);
    const struct net_drv_stats *drv = view_item(s, &vd, name, NET_ITEM_STATS, sizeof(*drv));
    snprintf(name, sizeof(name), "%s.%s", net->name, NET_REGION_BIND);
    struct view vl;
    const struct net_leases *ls = view_item(s, &vl, name, NET_ITEM_LEASES, sizeof(*ls));
    fprintf(f, "network %s\n", net->name);
    if (drv) {
        fprintf(f,
                "driver rx_packets=%llu rx_bytes=%llu tx_packets=%llu tx_bytes=%llu link=%s "
                "device_resets=%llu",
                (unsigned long long)drv->rx.packets, (unsigned long long)drv->rx.bytes,
                (unsigned long long)drv->tx.packets, (unsigned long long)drv->tx.bytes,
                drv->link_up ? "up" : "down", (unsigned long long)drv->device_resets);
        drops(f, "rx", drv->rx.drops, NULL);
        drops(f, "tx", drv->tx.drops, NULL);
        fputc('\n', f);
    }
    if (rx && tx) {
        fprintf(f, "wire rx_packets=%llu rx_bytes=%llu tx_packets=%llu tx_bytes=%llu",
                (unsigned long long)rx->wire.packets, (unsigned long long)rx->wire.bytes,
                (unsigned long long)tx->wire.packets, (unsigned long long)tx->wire.bytes);
        drops(f, "rx", rx->wire.drops, NULL);
        drops(f, "tx", tx->wire.drops, NULL);
        fprintf(f, "\nlocal packets=%llu", (unsigned long long)rx->local.packets);
        drops(f, "rx", rx->local.drops, NULL);
        fputc('\n', f);
    }
    for (size_t i = 0; i < net->nclients && i < NET_MAX_CLIENTS; i++) {
        const struct sdf_net_client *c = &net->clients[i];
        struct view vc;
        snprintf(name, sizeof(name), "%s.%s.%s", net->name, c->name, NET_REGION_COPY);
        const struct net_copy_stats *cp = view_item(s, &vc, name, NET_ITEM_STATS, sizeof(*cp));
        const uint8_t *m = c->mac;
        fprintf(f, "client %s mac=%02x:%02x:%02x:%02x:%02x:%02x", c->name, m[0], m[1], m[2], m[3],
                m[4], m[5]);

        if (cp)
            fprintf(f, " rx_packets=%llu rx_bytes=%llu", (unsigned long long)cp->delivered.packets,
                    (unsigned long long)cp->delivered.bytes);
        if (tx)
            fprintf(f, " tx_packets=%llu tx_bytes=%llu local=%llu throttled=%llu",
                    (unsigned long long)tx->client[i].packets,
                    (unsigned long long)tx->client[i].bytes, (unsigned long long)tx->local[i],
                    (unsigned long long)tx->throttled[i]);
        bound(f, c, ls ? atomic_load(&ls->lease[i]) : 0);
        if (c->tx_rate || c->rx_rate)
            fprintf(f, " tx_rate=%llu rx_rate=%llu", (unsigned long long)c->tx_rate,
                    (unsigned long long)c->rx_rate);
        if (rx)
            fprintf(f, " rx_held=%llu rx_share=%u", (unsigned long long)rx->held[i], c->rx_share);
        if (tx)
            fprintf(f, " resyncs=%llu resyncs_deferred=%llu garbage_pauses=%llu notify_pauses=%llu",
                    (unsigned long long)(tx->resyncs[i] + (cp ? cp->resyncs : 0)),
                    (unsigned long long)(tx->resyncs_deferred[i] + (cp ? cp->resyncs_deferred : 0)),
                    (unsigned long long)(tx->garbage_pauses[i] + (cp ? cp->garbage_pauses : 0)),
                    (unsigned long long)(tx->notify_pauses[i] + (cp ? cp->notify_pauses : 0)));
        if (rx)
            drops(f, "rx", rx->client[i].drops, cp ? cp->delivered.drops : NULL);
        if (tx)
            drops(f, "tx", tx->client[i].drops, NULL);
        fputc('\n', f);
        unview(&vc);
    }
    unview(&vr);
    unview(&vt);
    unview(&vd);
    unview(&vl);
}

int sup_net_report(struct sup *s, const char *which, FILE *f)
{
    int found = 0;
    for (size_t n = 0; n < s->sys->nnetworks; n++)
        if (!which || !strcmp(which, s->sys->networks[n].name)) {
            report_one(s, &s->sys->networks[n], f);
            found++;
        }
    return found;
}
