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
};

struct sdf_net_spec {
    char *name;
    struct sdf_loc loc, name_loc;
    bool has_nic;
    struct sdf_device nic;       /* kind, ifname, netns */
    struct sdf_component driver; /* program (NULL: the default), fault */
    uint32_t buffers, buffer_size;
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
