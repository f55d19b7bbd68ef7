/*
 * The `networks:` section: each network expands into ordinary components,
 * regions and channels (the shape include/devmux/net.h fixes), appended to
 * the model before validation so that every later check applies to them and
 * the supervisor needs nothing special.  Generated entries carry the
 * location of the YAML node they came from.
 */
#include "sdf/internal.h"

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
        set_cfg(c, fmt("client.%zu.quota", i), fmt("%u", cl->buffers));
    }
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
    for (size_t k = 0; k < d->nconfig; k++)
        set_cfg(&sys->comps[ci], xstrdup(d->config[k].key), xstrdup(d->config[k].value));
    set_cfg(&sys->comps[ci], xstrdup("net"), xstrdup(n));
    if (!pci)
        set_cfg(&sys->comps[ci], xstrdup("interface"), xstrdup(net->nic.ifname));
    add_device(&sys->comps[ci], "nic", &net->nic, NET_DRV_CH_IRQ, net->loc);
    ci = add_comp(sys, xstrdup(rxv), "net-rxvirt", net->loc, NULL, net->loc);
    virt_config(&sys->comps[ci], net, macs);
    ci = add_comp(sys, xstrdup(txv), "net-txvirt", net->loc, NULL, net->loc);
    virt_config(&sys->comps[ci], net, macs);
    for (size_t i = 0; i < nc; i++) {
        const struct sdf_net_client_spec *cl = &net->clients[i];
        ci = add_comp(sys, xstrdup(copy[i]), "net-copy", cl->loc, &copier_fault, cl->loc);
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

    for (size_t i = 0; i < nc; i++) {
        const struct sdf_net_client_spec *cl = &net->clients[i];
        const char *c = cl->comp.name;
        uint32_t q = cl->buffers, qq = pow2(q);
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
        sn->clients[i].name = xstrdup(net->clients[i].comp.name);
        memcpy(sn->clients[i].mac, macs[i], 6);
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
        }
        free(net->clients);
    }
    free(nets->v);
    nets->v = NULL;
    nets->n = 0;
}
