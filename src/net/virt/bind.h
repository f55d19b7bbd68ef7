/*
 * Address binding: which IP addresses a client may speak for.  A source MAC
 * check alone lets a client claim another's IP address with ARP or forged
 * IP sources, and so take its traffic; libvirt's clean-traffic filter and a
 * cloud's port security close that with exactly these checks.  The tx
 * virtualiser runs net_bind_check on its private copy of every frame; the
 * rx virtualiser learns DHCP leases with net_dhcp_snoop.  The rules are in
 * docs/protocols/net.md, section 5.
 */
#ifndef DEVMUX_NET_VIRT_BIND_H
#define DEVMUX_NET_VIRT_BIND_H

#include <stdbool.h>
#include <stdint.h>

#include "devmux/net.h"

struct net_prefix {
    uint8_t family; /* 4 or 6 */
    uint8_t len;    /* prefix length in bits */
    uint8_t addr[16];
};

struct net_binding {
    bool bound; /* any address or dhcp: the checks apply */
    bool dhcp;  /* its IPv4 address may also come from a DHCP lease */
    unsigned n;
    struct net_prefix p[NET_MAX_ADDRS];
    uint8_t mac[NET_MAC_LEN];
    uint8_t link_local[16]; /* fe80::/64 with the EUI-64 of mac */
};

/* From the virtualisers' config: comma-separated "a.b.c.d/len" and
 * "x::y/len" lists (either may be empty).  Returns 0, or -1 with a
 * description of what was wrong in err. */
int net_bind_parse(struct net_binding *b, const uint8_t mac[NET_MAC_LEN], const char *v4,
                   const char *v6, bool dhcp, char *err, size_t errlen);

/* May this client send frame f (len bytes, Ethernet header first)?
 * lease is its DHCP-learned IPv4 address (host order), 0 for none.
 * Returns NET_DROP_REASONS when it may, else the reason to drop it. */
unsigned net_bind_check(const struct net_binding *b, uint32_t lease, const uint8_t *f,
                        uint32_t len);

/* Is f a DHCP server's answer to the client with this MAC?  For an ACK
 * sets *addr (host order) and *secs (the lease time; 0xffffffff: for
 * ever) and returns true; for a NAK sets *addr = 0 and returns true. */
bool net_dhcp_snoop(const uint8_t *f, uint32_t len, const uint8_t mac[NET_MAC_LEN], uint32_t *addr,
                    uint32_t *secs);

#endif
