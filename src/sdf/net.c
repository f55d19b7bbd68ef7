/*
 * The `networks:` section: each network expands into ordinary components,
 * regions and channels (the shape include/devmux/net.h fixes), appended to
 * the model before validation so that every later check applies to them and
 * the supervisor needs nothing special.  Generated entries carry the
 * location of the YAML node they came from.
 */
#include "sdf/internal.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "devmux/net.h"

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));

static char *fmt(const char *f, ...)
{
    char *s;
    va_list ap;
    va_start(ap, f);
    int n = vasprintf(&s, f, ap);
    va_end(ap);
    if (n < 0)
        abort();
    return s;
}

static void mac_format(const uint8_t *mac, char out[18])
{
    snprintf(out, 18, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4],
             mac[5]);
}

static uint64_t fnv1a(uint64_t h, const char *s)
{
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ull;
    }
    return h;
}

/* 02:xx:xx:xx:xx:xx, a locally administered unicast address: the low 40
 * bits of the 64-bit FNV-1a hash of "<system>/<net>/<client>", big-endian. */
static void mac_generate(const char *sys, const char *net, const char *client, uint8_t mac[6])
{
    uint64_t h = 0xcbf29ce484222325ull;
    h = fnv1a(h, sys);
    h = fnv1a(h, "/");
    h = fnv1a(h, net);
    h = fnv1a(h, "/");
    h = fnv1a(h, client);
    mac[0] = 0x02;
    for (int k = 0; k < 5; k++)
        mac[1 + k] = (uint8_t)(h >> (8 * (4 - k)));
}

static uint32_t pow2(uint32_t x)
{
    uint32_t p = 1;
    while (p < x)
        p <<= 1;
    return p;
}

/* ---- checks ------------------------------------------------------------ */

/* The part of the shared receive pool a client may hold by default:
 * B / (2N) for N clients, at least 16.  All clients together then hold at
 * most half the pool, so the driver always has the other half to receive
 * into, whatever the clients do; one client at its share leaves the rest to
 * the others and the driver. */
static uint32_t default_rx_share(const struct sdf_net_spec *net)
{
    uint32_t share = net->buffers / (2 * (uint32_t)net->nclients);
    return share < 16 ? 16 : share;
}

/* A client's own buffers: as written, or 256 but never more than the
 * network has. */
static uint32_t client_buffers(const struct sdf_net_spec *net, const struct sdf_net_client_spec *cl)
{
    if (cl->buffers_loc.line || cl->buffers <= net->buffers)
        return cl->buffers;
    return net->buffers;
}

/* What one client may take from the network's shared resources. */
static void check_client_shares(const struct sdf_net_spec *net,
                                const struct sdf_net_client_spec *cl, struct sdf_errors *errs)
{
    const char *name = cl->comp.name;
    if (net->nclients > 1 && cl->rx_share > net->buffers / 2)
        sdf_error(errs, cl->rx_share_loc,
                  "rx_share %u of client '%s' is more than half of network '%s''s %u receive "
                  "buffers; expected at most %u, so that the others always keep half",
                  cl->rx_share, name, net->name, net->buffers, net->buffers / 2);
    /* The client's queues from its copier hold up to `buffers` frames; more
     * than the shared pool could only be filled from it. */
    if (client_buffers(net, cl) > net->buffers)
        sdf_error(errs, cl->buffers_loc,
                  "client '%s' declares %u buffers, more than network '%s' has (%u); expected "
                  "at most the network's buffers",
                  name, cl->buffers, net->name, net->buffers);
    if (cl->has_rx_rate && cl->rx_burst < net->buffer_size)
        sdf_error(errs, cl->rx_burst_loc,
                  "rx_rate burst %" PRIu64 " is smaller than the network's buffer_size %u; "
                  "expected at least one full buffer",
                  cl->rx_burst, net->buffer_size);
}

static bool prefix_overlap(const struct sdf_net_addr *a, const struct sdf_net_addr *b)
{
    if (a->family != b->family)
        return false;
    unsigned bits = a->prefix < b->prefix ? a->prefix : b->prefix;
    for (unsigned k = 0; k < bits; k++)
        if ((a->addr[k / 8] ^ b->addr[k / 8]) >> (7 - k % 8) & 1u)
            return false;
    return true;
}

static void addr_format(const struct sdf_net_addr *a, char *out, size_t n)
{
    char host[INET6_ADDRSTRLEN];
    inet_ntop(a->family, a->addr, host, sizeof(host));
    unsigned max = a->family == AF_INET ? 32 : 128;
    if (a->prefix == max)
        snprintf(out, n, "%s", host);
    else
        snprintf(out, n, "%s/%u", host, a->prefix);
}

/* No address may be bound to two clients: that would let each speak for
 * the other, which is what binding is there to stop. */
static void check_addrs(const struct sdf_net_spec *net, size_t i, struct sdf_errors *errs)
{
    const struct sdf_net_client_spec *cl = &net->clients[i];
    for (size_t k = 0; k < cl->naddrs; k++) {
        const struct sdf_net_addr *a = &cl->addrs[k];
        for (size_t j = 0; j <= i; j++) {
            const struct sdf_net_client_spec *o = &net->clients[j];
            for (size_t m = 0; m < (j == i ? k : o->naddrs); m++) {
                if (!prefix_overlap(a, &o->addrs[m]))
                    continue;
                char x[64], y[64];
                addr_format(a, x, sizeof(x));
                addr_format(&o->addrs[m], y, sizeof(y));
                if (j == i)
                    sdf_error(errs, a->loc,
                              "address %s of client '%s' overlaps its own %s (line %d); "
                              "expected each address once",
                              x, cl->comp.name, y, o->addrs[m].loc.line);
                else
                    sdf_error(errs, a->loc,
                              "address %s of client '%s' overlaps %s of client '%s' (line %d); "
                              "expected addresses bound to one client only",
                              x, cl->comp.name, y, o->comp.name, o->addrs[m].loc.line);
            }
        }
    }
}

/* The longest names generated from a network's and a client's name. */
#define NET_LONGEST_SUFFIX    "." NET_REGION_RX_STATS
#define CLIENT_LONGEST_SUFFIX "." NET_REGION_COPY

static void check_network(const struct sdf_system *sys, const struct sdf_net_specs *nets, size_t ni,
                          uint8_t (*macs)[6], struct sdf_errors *errs)
{
    const struct sdf_net_spec *net = &nets->v[ni];
    for (size_t j = 0; j < ni; j++)
        if (!strcmp(nets->v[j].name, net->name))
            sdf_error(errs, net->name_loc,
                      "duplicate network name '%s' (first defined on line %d); expected unique "
                      "network names",
                      net->name, nets->v[j].loc.line);
    size_t netlen = strlen(net->name);
    if (netlen + strlen(NET_LONGEST_SUFFIX) > SDF_NAME_MAX)
        sdf_error(errs, net->name_loc,
                  "network name '%s' is too long for the names made from it ('%s%s'); expected "
                  "at most %zu characters",
                  net->name, net->name, NET_LONGEST_SUFFIX,
                  SDF_NAME_MAX - strlen(NET_LONGEST_SUFFIX));
    for (size_t i = 0; i < net->nclients; i++) {
        const struct sdf_net_client_spec *cl = &net->clients[i];
        const char *name = cl->comp.name;
        bool dup = false;
        for (size_t j = 0; j < i && !dup; j++)
            if (!strcmp(net->clients[j].comp.name, name)) {
                sdf_error(errs, cl->name_loc,
                          "duplicate client name '%s' in network '%s' (first on line %d); "
                          "expected unique client names",
                          name, net->name, net->clients[j].loc.line);
                dup = true;
            }
        if (netlen + 1 + strlen(name) + strlen(CLIENT_LONGEST_SUFFIX) > SDF_NAME_MAX)
            sdf_error(errs, cl->name_loc,
                      "client name '%s' makes the region name '%s.%s%s' longer than %d "
                      "characters; expected network and client names of at most %zu characters "
                      "together",
                      name, net->name, name, CLIENT_LONGEST_SUFFIX, SDF_NAME_MAX,
                      SDF_NAME_MAX - 1 - strlen(CLIENT_LONGEST_SUFFIX));
        /* MAC addresses, given or generated, must tell clients apart. */
        if (cl->has_mac)
            memcpy(macs[i], cl->mac, 6);
        else
            mac_generate(sys->name, net->name, name, macs[i]);
        for (size_t j = 0; j < i && !dup; j++)
            if (!memcmp(macs[j], macs[i], 6)) {
                char m[18];
                mac_format(macs[i], m);
                sdf_error(errs, cl->has_mac ? cl->mac_loc : cl->name_loc,
                          "%s MAC address %s of client '%s' is also that of client '%s' (line "
                          "%d); expected unique MAC addresses within network '%s'",
                          cl->has_mac ? "the" : "the generated", m, name, net->clients[j].comp.name,
                          net->clients[j].loc.line, net->name);
            }
        check_client_shares(net, cl, errs);
        check_addrs(net, i, errs);
        if (cl->has_rate && cl->burst < net->buffer_size)
            sdf_error(errs, cl->burst_loc,
                      "burst %" PRIu64 " is smaller than the network's buffer_size %u; expected "
                      "at least one full buffer",
                      cl->burst, net->buffer_size);
        for (size_t p = 0; p < cl->npeers; p++) {
            const char *peer = cl->peers[p];
            bool known = false;
            for (size_t j = 0; j < net->nclients; j++)
                known |= !strcmp(net->clients[j].comp.name, peer);
            if (!strcmp(peer, name))
                sdf_error(errs, cl->peer_locs[p],
                          "client '%s' names itself as a peer; expected other clients of "
                          "network '%s'",
                          name, net->name);
            else if (!known)
                sdf_error(errs, cl->peer_locs[p],
                          "peer '%s' of client '%s' is not a client of network '%s'; expected "
                          "the name of another client in the same network",
                          peer, name, net->name);
            for (size_t q = 0; q < p; q++)
                if (!strcmp(cl->peers[q], peer)) {
                    sdf_error(errs, cl->peer_locs[p],
                              "peer '%s' is listed twice; expected each peer once", peer);
                    break;
                }
        }
    }
}

/* ---- building the model ------------------------------------------------ */

static size_t add_comp(struct sdf_system *sys, char *name, const char *program,
                       struct sdf_loc program_loc, const struct sdf_component *fault,
                       struct sdf_loc loc)
{
    sys->comps = xrealloc(sys->comps, (sys->ncomps + 1) * sizeof(*sys->comps));
    struct sdf_component *c = &sys->comps[sys->ncomps];
    memset(c, 0, sizeof(*c));
    c->name = name;
    c->program = xstrdup(program);
    c->program_loc = program_loc;
    c->loc = loc;
    if (fault) {
        c->fault = fault->fault;
        c->backoff_min_ms = fault->backoff_min_ms;
        c->backoff_max_ms = fault->backoff_max_ms;
    } else {
        /* The virtualisers and copiers are the trusted core: no restart. */
        c->fault = SDF_FAULT_SHUTDOWN;
        c->backoff_min_ms = 50;
        c->backoff_max_ms = 1000;
    }
    return sys->ncomps++;
}

static void set_cfg(struct sdf_component *c, char *key, char *value)
{
    c->config = xrealloc(c->config, (c->nconfig + 1) * sizeof(*c->config));
    c->config[c->nconfig].key = key;
    c->config[c->nconfig].value = value;
    c->nconfig++;
}

static void add_device(struct sdf_component *c, const char *name, const struct sdf_device *like,
                       uint32_t irq, struct sdf_loc loc)
{
    c->devices = xrealloc(c->devices, (c->ndevices + 1) * sizeof(*c->devices));
    struct sdf_device *d = &c->devices[c->ndevices++];
    *d = *like;
    d->name = xstrdup(name);
    d->ifname = like->ifname ? xstrdup(like->ifname) : NULL;
    d->netns = like->netns ? xstrdup(like->netns) : NULL;
    d->machine = like->machine ? xstrdup(like->machine) : NULL;
    d->mdevice = like->mdevice ? xstrdup(like->mdevice) : NULL;
    d->irq = irq;
    d->loc = loc;
}

static struct sdf_region *add_region(struct sdf_system *sys, char *name, struct sdf_loc loc)
{
    sys->regions = xrealloc(sys->regions, (sys->nregions + 1) * sizeof(*sys->regions));
    struct sdf_region *r = &sys->regions[sys->nregions++];
    memset(r, 0, sizeof(*r));
    r->name = name;
    r->loc = r->size_loc = r->machine_loc = loc;
    r->mach = -1;
    return r;
}

static void set_machine(struct sdf_region *r, const char *machine)
{
    r->machine = machine ? xstrdup(machine) : NULL;
}

static void add_item(struct sdf_region *r, const char *name, enum sdf_item_kind kind,
                     uint32_t count, uint32_t elem, uint64_t bytes)
{
    r->items = xrealloc(r->items, (r->nitems + 1) * sizeof(*r->items));
    struct sdf_item *it = &r->items[r->nitems++];
    memset(it, 0, sizeof(*it));
    it->name = xstrdup(name);
    it->kind = kind;
    it->count = count;
    it->elem = elem;
    it->size = bytes;
    it->loc = r->loc;
}

static void add_map(struct sdf_region *r, const char *comp, bool writable)
{
    r->maps = xrealloc(r->maps, (r->nmaps + 1) * sizeof(*r->maps));
    struct sdf_mapping *m = &r->maps[r->nmaps++];
    memset(m, 0, sizeof(*m));
    m->component = xstrdup(comp);
    m->comp = -1;
    m->writable = writable;
    m->loc = r->loc;
}

/* Just large enough for the layout, in whole pages. */
static void size_region(struct sdf_region *r)
{
    size_t bad;
    uint64_t end = sdf_layout_items(r, &bad);
    r->size = (end + SDF_PAGE - 1) & ~(uint64_t)(SDF_PAGE - 1);
}

static void add_channel(struct sdf_system *sys, char *name, const char *a, uint32_t ida,
                        const char *b, uint32_t idb, struct sdf_loc loc)
{
    sys->channels = xrealloc(sys->channels, (sys->nchannels + 1) * sizeof(*sys->channels));
    struct sdf_channel *ch = &sys->channels[sys->nchannels++];
    memset(ch, 0, sizeof(*ch));
    ch->name = name;
    ch->loc = loc;
    ch->end[0] = (struct sdf_end){.component = xstrdup(a), .comp = -1, .id = ida, .loc = loc};
    ch->end[1] = (struct sdf_end){.component = xstrdup(b), .comp = -1, .id = idb, .loc = loc};
}

/* A client's bound addresses of one family, "a/len" joined by sep (every
 * prefix written out if full, else only where it is not the whole address). */
static char *addr_list(const struct sdf_net_client_spec *cl, int family, const char *sep, bool full)
{
    char *out = xstrdup("");
    for (size_t k = 0; k < cl->naddrs; k++) {
        const struct sdf_net_addr *a = &cl->addrs[k];
        if (a->family != family)
            continue;
        char one[64], host[INET6_ADDRSTRLEN];
        if (full) {
            inet_ntop(a->family, a->addr, host, sizeof(host));
            snprintf(one, sizeof(one), "%s/%u", host, a->prefix);
        } else {
            addr_format(a, one, sizeof(one));
        }
        char *more = fmt("%s%s%s", out, *out ? sep : "", one);
        free(out);
        out = more;
    }
    return out;
}

/* The configuration both virtualisers get: the whole client table. */
static void virt_config(struct sdf_component *c, const struct sdf_net_spec *net, uint8_t (*macs)[6])
{
    set_cfg(c, xstrdup("net"), xstrdup(net->name));
    set_cfg(c, xstrdup("clients"), fmt("%zu", net->nclients));
    for (size_t i = 0; i < net->nclients; i++) {
        const struct sdf_net_client_spec *cl = &net->clients[i];
        char m[18];
        mac_format(macs[i], m);
        set_cfg(c, fmt("client.%zu.name", i), xstrdup(cl->comp.name));
        set_cfg(c, fmt("client.%zu.mac", i), xstrdup(m));
        set_cfg(c, fmt("client.%zu.broadcast", i), xstrdup(cl->broadcast ? "1" : "0"));
        set_cfg(c, fmt("client.%zu.multicast", i), xstrdup(cl->multicast ? "1" : "0"));
        /* Peers as indices, ascending. */
        char *peers = xstrdup("");
        for (size_t j = 0; j < net->nclients; j++) {
            bool allowed = false;
            for (size_t p = 0; p < cl->npeers; p++)
                allowed |= !strcmp(cl->peers[p], net->clients[j].comp.name);
            if (!allowed)
                continue;
            char *more = fmt("%s%s%zu", peers, *peers ? "," : "", j);
            free(peers);
            peers = more;
        }
        set_cfg(c, fmt("client.%zu.peers", i), peers);
        set_cfg(c, fmt("client.%zu.rate", i), fmt("%" PRIu64, cl->has_rate ? cl->rate_bits : 0));
        set_cfg(c, fmt("client.%zu.burst", i), fmt("%" PRIu64, cl->has_rate ? cl->burst : 0));
        set_cfg(c, fmt("client.%zu.quota", i), fmt("%u", client_buffers(net, cl)));
        set_cfg(c, fmt("client.%zu.rx_rate", i),
                fmt("%" PRIu64, cl->has_rx_rate ? cl->rx_rate_bits : 0));
        set_cfg(c, fmt("client.%zu.rx_burst", i),
                fmt("%" PRIu64, cl->has_rx_rate ? cl->rx_burst : 0));
        set_cfg(c, fmt("client.%zu.rx_share", i),
                fmt("%u", cl->rx_share ? cl->rx_share : default_rx_share(net)));
        set_cfg(c, fmt("client.%zu.ipv4", i), addr_list(cl, AF_INET, ",", true));
        set_cfg(c, fmt("client.%zu.ipv6", i), addr_list(cl, AF_INET6, ",", true));
        set_cfg(c, fmt("client.%zu.dhcp", i), xstrdup(cl->dhcp ? "1" : "0"));
    }
}

/* The class's defaults for what its components may use of the machine
 * (docs/protocols/net.md §5, "The machine"): the trusted core runs at ten
 * times a client's weight, so that no client, however busy, pushes the
 * components every client depends on off the CPU; and a client gets at most
 * one CPU, however many threads it runs. */
static const struct sdf_limits core_default = {.has_weight = true, .weight = 1000};
static const struct sdf_limits client_default = {
    .has_weight = true,
    .weight = 100,
    .has_cpu = true,
    .cpu_budget_us = 10000,
    .cpu_period_us = 10000,
};
/* A TAP client's frontend is our own program (net-tap): the client OS is
 * the Linux stack behind the TAP interface, outside any of our groups, and
 * reaches us only through that device.  The frontend is as trusted as a
 * copier and weighs as much, so that work the core does for a noisy
 * neighbour cannot starve the frontend of an honest one. */
static const struct sdf_limits tap_default = {
    .has_weight = true,
    .weight = 1000,
    .has_cpu = true,
    .cpu_budget_us = 10000,
    .cpu_period_us = 10000,
};

static void core_limits(struct sdf_component *c, const struct sdf_net_spec *net)
{
    sdf_limits_inherit(&c->limits, &net->core_limits);
    sdf_limits_inherit(&c->limits, &core_default);
}

static void expand(struct sdf_system *sys, const struct sdf_net_spec *net, uint8_t (*macs)[6])
{
    const char *n = net->name;
    char *drv = fmt("%s.driver", n), *rxv = fmt("%s.rxvirt", n), *txv = fmt("%s.txvirt", n);
    size_t nc = net->nclients;
    char **copy = xcalloc(nc, sizeof(char *));
    for (size_t i = 0; i < nc; i++)
        copy[i] = fmt("%s.copy.%s", n, net->clients[i].comp.name);

    /* Components: driver, virtualisers, copiers, clients.  A copier serves
     * one client, so its crash is that client's alone: it restarts. */
    struct sdf_component copier_fault = {
        .fault = SDF_FAULT_RESTART, .backoff_min_ms = 50, .backoff_max_ms = 1000};
    const struct sdf_component *d = &net->driver;
    bool pci = net->nic.kind == SDF_DEV_PCI;
    const char *def_driver = pci ? "net-virtio" : "net-packet";
    size_t ci = add_comp(sys, xstrdup(drv), d->program ? d->program : def_driver,
                         d->program ? d->program_loc : d->loc, d, d->loc);
    sys->comps[ci].limits = d->limits;
    core_limits(&sys->comps[ci], net);
    for (size_t k = 0; k < d->nconfig; k++)
        set_cfg(&sys->comps[ci], xstrdup(d->config[k].key), xstrdup(d->config[k].value));
    set_cfg(&sys->comps[ci], xstrdup("net"), xstrdup(n));
    if (!pci)
        set_cfg(&sys->comps[ci], xstrdup("interface"), xstrdup(net->nic.ifname));
    add_device(&sys->comps[ci], "nic", &net->nic, NET_DRV_CH_IRQ, net->loc);
    ci = add_comp(sys, xstrdup(rxv), "net-rxvirt", net->loc, NULL, net->loc);
    core_limits(&sys->comps[ci], net);
    virt_config(&sys->comps[ci], net, macs);
    ci = add_comp(sys, xstrdup(txv), "net-txvirt", net->loc, NULL, net->loc);
    core_limits(&sys->comps[ci], net);
    virt_config(&sys->comps[ci], net, macs);
    for (size_t i = 0; i < nc; i++) {
        const struct sdf_net_client_spec *cl = &net->clients[i];
        ci = add_comp(sys, xstrdup(copy[i]), "net-copy", cl->loc, &copier_fault, cl->loc);
        core_limits(&sys->comps[ci], net);
        set_cfg(&sys->comps[ci], xstrdup("net"), xstrdup(n));
        set_cfg(&sys->comps[ci], xstrdup("client"), xstrdup(cl->comp.name));
        set_cfg(&sys->comps[ci], xstrdup("index"), fmt("%zu", i));
    }
    for (size_t i = 0; i < nc; i++) {
        const struct sdf_net_client_spec *cl = &net->clients[i];
        const char *program = cl->comp.program ? cl->comp.program : "net-tap";
        ci = add_comp(sys, xstrdup(cl->comp.name), program,
                      cl->comp.program ? cl->comp.program_loc : cl->loc, &cl->comp, cl->loc);
        struct sdf_component *c = &sys->comps[ci];
        c->limits = cl->comp.limits;
        sdf_limits_inherit(&c->limits, &net->client_limits);
        sdf_limits_inherit(&c->limits, cl->has_tap ? &tap_default : &client_default);
        for (size_t k = 0; k < cl->comp.nconfig; k++)
            set_cfg(c, xstrdup(cl->comp.config[k].key), xstrdup(cl->comp.config[k].value));
        char m[18];
        mac_format(macs[i], m);
        set_cfg(c, xstrdup("net"), xstrdup(n));
        set_cfg(c, xstrdup("client"), xstrdup(cl->comp.name));
        set_cfg(c, xstrdup("mac"), xstrdup(m));
        if (cl->has_tap) {
            struct sdf_device tap = cl->tap;
            memcpy(tap.mac, macs[i], 6);
            tap.has_mac = true;
            add_device(c, "tap", &tap, NET_CLIENT_CH_DEV, cl->loc);
        }
    }

    /* Regions.  With a device behind the hardware layer, the buffer pools
     * are device-visible memory of its machine, so frames move by DMA. */
    const char *mach = pci ? net->nic.machine : NULL;
    uint32_t b = net->buffers, s = net->buffer_size, qb = pow2(b);
    struct sdf_region *r = add_region(sys, fmt("%s." NET_REGION_RX_DMA, n), net->loc);
    add_item(r, NET_ITEM_BUFFERS, SDF_ITEM_BUFFERS, b, s, 0);
    add_map(r, drv, true);
    add_map(r, rxv, false);
    for (size_t i = 0; i < nc; i++)
        add_map(r, copy[i], false);
    size_region(r);
    set_machine(r, mach);

    r = add_region(sys, fmt("%s." NET_REGION_TX_DMA, n), net->loc);
    add_item(r, NET_ITEM_BUFFERS, SDF_ITEM_BUFFERS, b, s, 0);
    add_map(r, txv, true);
    add_map(r, drv, false);
    add_map(r, rxv, false);
    for (size_t i = 0; i < nc; i++)
        add_map(r, copy[i], false);
    size_region(r);
    set_machine(r, mach);

    if (pci) {
        r = add_region(sys, fmt("%s." NET_REGION_DRV_DMA, n), net->loc);
        add_item(r, "rings", SDF_ITEM_BYTES, 0, 0, NET_DRV_DMA_BYTES);
        add_map(r, drv, true);
        size_region(r);
        set_machine(r, mach);
    }

    r = add_region(sys, fmt("%s." NET_REGION_DRV_RX, n), net->loc);
    add_item(r, NET_ITEM_FREE, SDF_ITEM_QUEUE, qb, 0, 0);
    add_item(r, NET_ITEM_ACTIVE, SDF_ITEM_QUEUE, qb, 0, 0);
    add_item(r, NET_ITEM_SYNC, SDF_ITEM_BYTES, 0, 0, NET_SYNC_BYTES);
    add_item(r, NET_ITEM_STATS, SDF_ITEM_BYTES, 0, 0, 512);
    add_map(r, drv, true);
    add_map(r, rxv, true);
    size_region(r);

    r = add_region(sys, fmt("%s." NET_REGION_DRV_TX, n), net->loc);
    add_item(r, NET_ITEM_ACTIVE, SDF_ITEM_QUEUE, qb, 0, 0);
    add_item(r, NET_ITEM_FREE, SDF_ITEM_QUEUE, qb, 0, 0);
    add_item(r, NET_ITEM_SYNC, SDF_ITEM_BYTES, 0, 0, NET_SYNC_BYTES);
    add_map(r, drv, true);
    add_map(r, txv, true);
    size_region(r);

    r = add_region(sys, fmt("%s." NET_REGION_LOCAL, n), net->loc);
    add_item(r, NET_ITEM_ACTIVE, SDF_ITEM_QUEUE, qb, 0, 0);
    add_item(r, NET_ITEM_FREE, SDF_ITEM_QUEUE, qb, 0, 0);
    add_map(r, txv, true);
    add_map(r, rxv, true);
    size_region(r);

    r = add_region(sys, fmt("%s." NET_REGION_RX_STATS, n), net->loc);
    add_item(r, NET_ITEM_STATS, SDF_ITEM_BYTES, 0, 0, 65536);
    add_map(r, rxv, true);
    size_region(r);

    r = add_region(sys, fmt("%s." NET_REGION_TX_STATS, n), net->loc);
    add_item(r, NET_ITEM_STATS, SDF_ITEM_BYTES, 0, 0, 65536);
    add_map(r, txv, true);
    size_region(r);

    r = add_region(sys, fmt("%s." NET_REGION_BIND, n), net->loc);
    add_item(r, NET_ITEM_LEASES, SDF_ITEM_BYTES, 0, 0, sizeof(struct net_leases));
    add_map(r, rxv, true);
    add_map(r, txv, false);
    size_region(r);

    for (size_t i = 0; i < nc; i++) {
        const struct sdf_net_client_spec *cl = &net->clients[i];
        const char *c = cl->comp.name;
        uint32_t q = client_buffers(net, cl), qq = pow2(q);
        r = add_region(sys, fmt("%s.%s." NET_REGION_COPY, n, c), cl->loc);
        add_item(r, NET_ITEM_ACTIVE, SDF_ITEM_QUEUE, qq, 0, 0);
        add_item(r, NET_ITEM_FREE, SDF_ITEM_QUEUE, qq, 0, 0);
        add_item(r, NET_ITEM_STATS, SDF_ITEM_BYTES, 0, 0, 256);
        add_item(r, NET_ITEM_SYNC, SDF_ITEM_BYTES, 0, 0, NET_SYNC_BYTES);
        add_map(r, rxv, true);
        add_map(r, copy[i], true);
        size_region(r);

        r = add_region(sys, fmt("%s.%s." NET_REGION_CLIENT_RX, n, c), cl->loc);
        add_item(r, NET_ITEM_FREE, SDF_ITEM_QUEUE, qq, 0, 0);
        add_item(r, NET_ITEM_ACTIVE, SDF_ITEM_QUEUE, qq, 0, 0);
        add_item(r, NET_ITEM_SYNC, SDF_ITEM_BYTES, 0, 0, NET_SYNC_BYTES);
        add_item(r, NET_ITEM_BUFFERS, SDF_ITEM_BUFFERS, q, s, 0);
        add_map(r, c, true);
        add_map(r, copy[i], true);
        size_region(r);

        r = add_region(sys, fmt("%s.%s." NET_REGION_CLIENT_TX, n, c), cl->loc);
        add_item(r, NET_ITEM_ACTIVE, SDF_ITEM_QUEUE, qq, 0, 0);
        add_item(r, NET_ITEM_FREE, SDF_ITEM_QUEUE, qq, 0, 0);
        add_item(r, NET_ITEM_SYNC, SDF_ITEM_BYTES, 0, 0, NET_SYNC_BYTES);
        add_item(r, NET_ITEM_BUFFERS, SDF_ITEM_BUFFERS, q, s, 0);
        add_map(r, c, true);
        add_map(r, txv, true);
        size_region(r);
    }

    /* Channels, with the ids include/devmux/net.h fixes. */
    add_channel(sys, fmt("%s.drv_rx", n), drv, NET_DRV_CH_RX, rxv, NET_RXV_CH_DRV, net->loc);
    add_channel(sys, fmt("%s.drv_tx", n), drv, NET_DRV_CH_TX, txv, NET_TXV_CH_DRV, net->loc);
    add_channel(sys, fmt("%s.local", n), rxv, NET_RXV_CH_LOCAL, txv, NET_TXV_CH_LOCAL, net->loc);
    for (size_t i = 0; i < nc; i++) {
        const struct sdf_net_client_spec *cl = &net->clients[i];
        const char *c = cl->comp.name;
        add_channel(sys, fmt("%s.%s.copy", n, c), rxv, NET_RXV_CH_COPY0 + (uint32_t)i, copy[i],
                    NET_COPY_CH_VIRT, cl->loc);
        add_channel(sys, fmt("%s.%s.rx", n, c), copy[i], NET_COPY_CH_CLIENT, c, NET_CLIENT_CH_RX,
                    cl->loc);
        add_channel(sys, fmt("%s.%s.tx", n, c), txv, NET_TXV_CH_CLIENT0 + (uint32_t)i, c,
                    NET_CLIENT_CH_TX, cl->loc);
    }

    /* What `devmux ctl net` needs. */
    sys->networks = xrealloc(sys->networks, (sys->nnetworks + 1) * sizeof(*sys->networks));
    struct sdf_network *sn = &sys->networks[sys->nnetworks++];
    sn->name = xstrdup(n);
    sn->loc = net->loc;
    sn->nclients = nc;
    sn->clients = xcalloc(nc, sizeof(*sn->clients));
    for (size_t i = 0; i < nc; i++) {
        const struct sdf_net_client_spec *cl = &net->clients[i];
        sn->clients[i].name = xstrdup(cl->comp.name);
        memcpy(sn->clients[i].mac, macs[i], 6);
        char *v4 = addr_list(cl, AF_INET, ",", false), *v6 = addr_list(cl, AF_INET6, ",", false);
        sn->clients[i].addrs = fmt("%s%s%s", v4, *v4 && *v6 ? "," : "", v6);
        free(v4);
        free(v6);
        sn->clients[i].dhcp = cl->dhcp;
        sn->clients[i].rx_share = cl->rx_share ? cl->rx_share : default_rx_share(net);
        sn->clients[i].tx_rate = cl->has_rate ? cl->rate_bits : 0;
        sn->clients[i].rx_rate = cl->has_rx_rate ? cl->rx_rate_bits : 0;
    }

    for (size_t i = 0; i < nc; i++)
        free(copy[i]);
    free(copy);
    free(drv);
    free(rxv);
    free(txv);
}

void sdf_net_expand(struct sdf_system *sys, const struct sdf_net_specs *nets,
                    struct sdf_errors *errs)
{
    /* Parsing left no error, so every required field is set. */
    uint8_t(**macs)[6] = xcalloc(nets->n, sizeof(*macs));
    for (size_t i = 0; i < nets->n; i++) {
        macs[i] = xcalloc(nets->v[i].nclients ? nets->v[i].nclients : 1, sizeof(**macs));
        check_network(sys, nets, i, macs[i], errs);
    }
    if (!errs->n)
        for (size_t i = 0; i < nets->n; i++)
            expand(sys, &nets->v[i], macs[i]);
    for (size_t i = 0; i < nets->n; i++)
        free(macs[i]);
    free(macs);
}

void sdf_net_specs_free(struct sdf_net_specs *nets)
{
    for (size_t i = 0; i < nets->n; i++) {
        struct sdf_net_spec *net = &nets->v[i];
        free(net->name);
        sdf_device_free(&net->nic);
        sdf_component_free(&net->driver);
        for (size_t k = 0; k < net->nclients; k++) {
            struct sdf_net_client_spec *cl = &net->clients[k];
            sdf_component_free(&cl->comp);
            sdf_device_free(&cl->tap);
            for (size_t p = 0; p < cl->npeers; p++)
                free(cl->peers[p]);
            free(cl->peers);
            free(cl->peer_locs);
            free(cl->addrs);
        }
        free(net->clients);
    }
    free(nets->v);
    nets->v = NULL;
    nets->n = 0;
}
