/*
 * Address binding checks on frames (bind.h).  Every read is bounds-checked
 * against the frame's length: the frame is a client's, and a client is not
 * trusted.
 */
#include "net/virt/bind.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ETH_IPV4 0x0800
#define ETH_ARP  0x0806
#define ETH_IPV6 0x86dd
#define ETH_VLAN 0x8100
#define ETH_QINQ 0x88a8

#define IPPROTO_UDP_   17
#define IPPROTO_ICMP6_ 58
#define ICMP6_NA       136

static uint16_t be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int parse_list(struct net_binding *b, const char *list, int family, char *err, size_t errlen)
{
    while (*list) {
        const char *end = strchr(list, ',');
        size_t n = end ? (size_t)(end - list) : strlen(list);
        char one[64];
        if (n == 0 || n >= sizeof(one) || b->n == NET_MAX_ADDRS || (end && !end[1])) {
            snprintf(err, errlen, "address list '%s' is malformed or too long", list);
            return -1;
        }
        memcpy(one, list, n);
        one[n] = 0;
        unsigned max = family == AF_INET ? 32 : 128;
        unsigned len = max;
        char *slash = strchr(one, '/');
        if (slash) {
            char *e;
            unsigned long l = strtoul(slash + 1, &e, 10);
            if (*e || l > max || l == 0) {
                snprintf(err, errlen, "prefix '%s' has a bad length", one);
                return -1;
            }
            len = (unsigned)l;
            *slash = 0;
        }
        struct net_prefix *p = &b->p[b->n];
        memset(p, 0, sizeof(*p));
        if (inet_pton(family, one, p->addr) != 1) {
            snprintf(err, errlen, "'%s' is not an IPv%d address", one, family == AF_INET ? 4 : 6);
            return -1;
        }
        p->family = family == AF_INET ? 4 : 6;
        p->len = (uint8_t)len;
        b->n++;
        list = end ? end + 1 : list + n;
    }
    return 0;
}

int net_bind_parse(struct net_binding *b, const uint8_t mac[NET_MAC_LEN], const char *v4,
                   const char *v6, bool dhcp, char *err, size_t errlen)
{
    memset(b, 0, sizeof(*b));
    memcpy(b->mac, mac, NET_MAC_LEN);
    b->dhcp = dhcp;
    if (parse_list(b, v4, AF_INET, err, errlen) || parse_list(b, v6, AF_INET6, err, errlen))
        return -1;
    b->bound = b->n > 0 || dhcp;
    /* The link-local address a Linux stack derives from its MAC (EUI-64,
     * RFC 4291 appendix A): no other client can hold this MAC, so no other
     * client can have a claim on this address. */
    b->link_local[0] = 0xfe;
    b->link_local[1] = 0x80;
    b->link_local[8] = mac[0] ^ 0x02;
    b->link_local[9] = mac[1];
    b->link_local[10] = mac[2];
    b->link_local[11] = 0xff;
    b->link_local[12] = 0xfe;
    b->link_local[13] = mac[3];
    b->link_local[14] = mac[4];
    b->link_local[15] = mac[5];
    return 0;
}

static bool in_prefix(const struct net_prefix *p, const uint8_t *addr)
{
    unsigned full = p->len / 8, rest = p->len % 8;
    if (memcmp(p->addr, addr, full))
        return false;
    if (!rest)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (p->addr[full] & mask) == (addr[full] & mask);
}

static bool v4_allowed(const struct net_binding *b, uint32_t lease, const uint8_t *a)
{
    if (lease && be32(a) == lease)
        return true;
    for (unsigned k = 0; k < b->n; k++)
        if (b->p[k].family == 4 && in_prefix(&b->p[k], a))
            return true;
    return false;
}

static bool v6_allowed(const struct net_binding *b, const uint8_t *a)
{
    if (!memcmp(a, b->link_local, 16))
        return true;
    for (unsigned k = 0; k < b->n; k++)
        if (b->p[k].family == 6 && in_prefix(&b->p[k], a))
            return true;
    return false;
}

static bool is_zero(const uint8_t *a, size_t n)
{
    for (size_t k = 0; k < n; k++)
        if (a[k])
            return false;
    return true;
}

/* Skips up to two VLAN tags.  Returns the ethertype and sets *off to the
 * payload, or returns 0 when the frame ends first. */
static uint16_t ethertype(const uint8_t *f, uint32_t len, uint32_t *off)
{
    uint32_t o = 12;
    for (int tags = 0; tags <= 2; tags++) {
        if (len < o + 2)
            return 0;
        uint16_t t = be16(f + o);
        if (t != ETH_VLAN && t != ETH_QINQ) {
            *off = o + 2;
            return t;
        }
        o += 4;
    }
    return 0; /* more tags than a frame of ours can carry */
}

static unsigned check_ipv4(const struct net_binding *b, uint32_t lease, const uint8_t *ip,
                           uint32_t n)
{
    if (n < 20 || ip[0] >> 4 != 4 || (uint32_t)(ip[0] & 15) * 4 > n || (ip[0] & 15) < 5)
        return NET_DROP_BAD_LEN;
    const uint8_t *src = ip + 12;
    if (v4_allowed(b, lease, src))
        return NET_DROP_REASONS;
    /* A DHCP client asks from 0.0.0.0, UDP port 68 to 67 (RFC 2131 4.1). */
    uint32_t ihl = (uint32_t)(ip[0] & 15) * 4;
    if (b->dhcp && is_zero(src, 4) && ip[9] == IPPROTO_UDP_ && n >= ihl + 8 &&
        be16(ip + ihl) == 68 && be16(ip + ihl + 2) == 67)
        return NET_DROP_REASONS;
    return NET_DROP_SPOOF_IP;
}

static unsigned check_arp(const struct net_binding *b, uint32_t lease, const uint8_t *a, uint32_t n)
{
    /* Ethernet/IPv4 ARP only: hardware type 1, protocol 0x0800, 6 and 4. */
    if (n < 28 || be16(a) != 1 || be16(a + 2) != ETH_IPV4 || a[4] != 6 || a[5] != 4)
        return NET_DROP_SPOOF_ARP;
    if (memcmp(a + 8, b->mac, NET_MAC_LEN))
        return NET_DROP_SPOOF_ARP;
    /* Sender 0.0.0.0 is an address probe (RFC 5227 2.1.1): it claims nothing. */
    if (is_zero(a + 14, 4) || v4_allowed(b, lease, a + 14))
        return NET_DROP_REASONS;
    return NET_DROP_SPOOF_ARP;
}

static unsigned check_ipv6(const struct net_binding *b, const uint8_t *ip, uint32_t n)
{
    if (n < 40 || ip[0] >> 4 != 6)
        return NET_DROP_BAD_LEN;
    const uint8_t *src = ip + 8;
    /* :: is what duplicate address detection and MLD send from before an
     * address is assigned (RFC 4862 5.4.2); it claims nothing. */
    if (!is_zero(src, 16) && !v6_allowed(b, src))
        return NET_DROP_SPOOF_IP;
    /* Find ICMPv6 past the extension headers a receiver would also walk;
     * a neighbour advertisement claims its target address, so the target
     * must be the client's own. */
    uint8_t next = ip[6];
    uint32_t o = 40;
    for (int k = 0; k < 8 && (next == 0 || next == 43 || next == 60); k++) {
        if (n < o + 8)
            return NET_DROP_BAD_LEN;
        next = ip[o];
        o += ((uint32_t)ip[o + 1] + 1) * 8;
    }
    if (next != IPPROTO_ICMP6_)
        return NET_DROP_REASONS; /* fragments included: hosts drop fragmented ND (RFC 6980) */
    if (n < o + 1)
        return NET_DROP_BAD_LEN;
    if (ip[o] != ICMP6_NA)
        return NET_DROP_REASONS;
    if (n < o + 24)
        return NET_DROP_SPOOF_ARP;
    return v6_allowed(b, ip + o + 8) ? NET_DROP_REASONS : NET_DROP_SPOOF_ARP;
}

unsigned net_bind_check(const struct net_binding *b, uint32_t lease, const uint8_t *f, uint32_t len)
{
    if (!b->bound)
        return NET_DROP_REASONS;
    uint32_t off;
    switch (ethertype(f, len, &off)) {
    case ETH_IPV4:
        return check_ipv4(b, lease, f + off, len - off);
    case ETH_ARP:
        return check_arp(b, lease, f + off, len - off);
    case ETH_IPV6:
        return check_ipv6(b, f + off, len - off);
    default:
        return NET_DROP_PROTO;
    }
}

bool net_dhcp_snoop(const uint8_t *f, uint32_t len, const uint8_t mac[NET_MAC_LEN], uint32_t *addr,
                    uint32_t *secs)
{
    uint32_t off;
    if (ethertype(f, len, &off) != ETH_IPV4)
        return false;
    const uint8_t *ip = f + off;
    uint32_t n = len - off;
    if (n < 20 || ip[0] >> 4 != 4 || ip[9] != IPPROTO_UDP_)
        return false;
    uint32_t ihl = (uint32_t)(ip[0] & 15) * 4;
    /* A first fragment only: a later one has no UDP header. */
    if (ihl < 20 || (be16(ip + 6) & 0x1fff) || n < ihl + 8)
        return false;
    const uint8_t *udp = ip + ihl;
    if (be16(udp) != 67 || be16(udp + 2) != 68)
        return false;
    const uint8_t *m = udp + 8; /* BOOTP, RFC 2131 section 2 */
    uint32_t mn = n - ihl - 8;
    if (mn < 240 || m[0] != 2 || m[1] != 1 || m[2] != 6 || memcmp(m + 28, mac, NET_MAC_LEN) ||
        be32(m + 236) != 0x63825363u)
        return false;
    int type = 0;
    uint32_t lease = 0;
    for (uint32_t o = 240; o < mn;) {
        uint8_t code = m[o];
        if (code == 255)
            break;
        if (code == 0) {
            o++;
            continue;
        }
        if (o + 2 > mn || o + 2 + m[o + 1] > mn)
            return false; /* an option runs off the end: not trusted */
        uint8_t olen = m[o + 1];
        if (code == 53 && olen == 1)
            type = m[o + 2];
        else if (code == 51 && olen == 4)
            lease = be32(m + o + 2);
        o += 2u + olen;
    }
    if (type == 6) { /* DHCPNAK: whatever it had is gone */
        *addr = 0;
        *secs = 0;
        return true;
    }
    uint32_t yiaddr = be32(m + 16);
    if (type != 5 || !yiaddr || !lease)
        return false;
    *addr = yiaddr;
    *secs = lease;
    return true;
}
