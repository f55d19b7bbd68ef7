/*
 * What the parts of the system description loader share and nobody else
 * needs: the parsed `networks:` section before it expands (net.c), and the
 * layout computation the expansion borrows from validation.
 */
#ifndef DEVMUX_SDF_INTERNAL_H
#define DEVMUX_SDF_INTERNAL_H

#include "sdf/sdf.h"

/* One client of a network, as written.  comp holds what a component would:
 * name, program (NULL for a TAP client), config and fault policy. */
struct sdf_net_addr;

struct sdf_net_client_spec {
    struct sdf_component comp;
    struct sdf_loc loc, name_loc, config_loc, mac_loc, burst_loc;
    bool has_tap, has_config;
    struct sdf_device tap; /* netns and ifname */
    bool has_mac;
    uint8_t mac[6];
    uint32_t buffers;
    bool broadcast, multicast;
    char **peers;
    struct sdf_loc *peer_locs;
    size_t npeers;
    bool has_rate;
    uint64_t rate_bits, burst;
    bool has_rx_rate; /* rx_rate: policing of what it receives */
    uint64_t rx_rate_bits, rx_burst;
    struct sdf_loc rx_burst_loc;
    uint32_t rx_share; /* shared receive buffers it may hold; 0: the default */
    struct sdf_loc rx_share_loc, buffers_loc;
    /* Addresses it may use (anti-spoofing): "a.b.c.d/len" and "x::y/len",
     * normalised, each with where it was written. */
    struct sdf_net_addr *addrs;
    size_t naddrs;
    bool dhcp; /* its IPv4 address may also be learned from DHCP */
};

/* One bound address or prefix of a client. */
struct sdf_net_addr {
    int family; /* AF_INET or AF_INET6 */
    uint8_t addr[16];
    unsigned prefix;
    struct sdf_loc loc;
};

struct sdf_net_spec {
    char *name;
    struct sdf_loc loc, name_loc;
    bool has_nic;
    struct sdf_device nic;       /* kind, ifname, netns */
    struct sdf_component driver; /* program (NULL: the default), fault */
    uint32_t buffers, buffer_size;
    struct sdf_loc buffers_loc;
    /* limits: class defaults for the trusted core (driver, virtualisers,
     * copiers) and for clients; a component's own limits: win. */
    struct sdf_limits core_limits, client_limits;
    struct sdf_net_client_spec *clients;
    size_t nclients;
    struct sdf_loc clients_loc;
};

struct sdf_net_specs {
    struct sdf_net_spec *v;
    size_t n;
};

/* Checks what needs a whole network (peers, MAC addresses, name lengths)
 * and appends its components, regions and channels to sys, and a summary
 * to sys->networks.  Adds nothing to sys when it reports an error. */
void sdf_net_expand(struct sdf_system *sys, const struct sdf_net_specs *nets,
                    struct sdf_errors *errs);
void sdf_net_specs_free(struct sdf_net_specs *nets);

/* Places r's items in order, each on a cache line, filling their sizes and
 * offsets.  Returns the bytes they span, or UINT64_MAX when that would pass
 * 2^64 (*bad is then the item where it did). */
uint64_t sdf_layout_items(struct sdf_region *r, size_t *bad);

/* Checks machines, PCI grants and device-visible regions, and gives each
 * such region its device address (machine.c). */
void sdf_check_machines(struct sdf_system *sys, struct sdf_errors *errs);

void sdf_component_free(struct sdf_component *c);
void sdf_device_free(struct sdf_device *d);

#endif
