/*
 * Address binding (src/net/virt/bind.c) on crafted frames: what a bound
 * client may send, what it may not, and DHCP answers the rx virtualiser
 * learns leases from.  Each frame is built here byte by byte, the way a
 * hostile client would.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "net/virt/bind.h"

static const uint8_t MAC[6] = {0x02, 0, 0, 0, 0, 0x0a};
static const uint8_t OTHER[6] = {0x02, 0, 0, 0, 0, 0x0d};

struct frame {
    uint8_t b[1600];
    uint32_t n;
};

static void put(struct frame *f, const void *p, size_t n)
{
    memcpy(f->b + f->n, p, n);
    f->n += (uint32_t)n;
}

static void put16(struct frame *f, uint16_t v)
{
    uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    put(f, b, 2);
}

static void eth(struct frame *f, uint16_t type, int vlan)
{
    f->n = 0;
    static const uint8_t bc[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    put(f, bc, 6);
    put(f, MAC, 6);
    if (vlan) {
        put16(f, 0x8100);
        put16(f, 7);
    }
    put16(f, type);
}

/* IPv4 header (20 bytes) + 8 bytes of UDP from src, ports sp -> dp. */
static void ipv4_udp(struct frame *f, const uint8_t src[4], uint16_t sp, uint16_t dp, int vlan)
{
    eth(f, 0x0800, vlan);
    uint8_t ip[20] = {0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17};
    memcpy(ip + 12, src, 4);
    static const uint8_t dst[4] = {10, 77, 0, 1};
    memcpy(ip + 16, dst, 4);
    put(f, ip, 20);
    put16(f, sp);
    put16(f, dp);
    put16(f, 8);
    put16(f, 0);
}

static void arp(struct frame *f, const uint8_t sha[6], const uint8_t spa[4])
{
    eth(f, 0x0806, 0);
    put16(f, 1);
    put16(f, 0x0800);
    uint8_t hl[2] = {6, 4};
    put(f, hl, 2);
    put16(f, 2); /* reply */
    put(f, sha, 6);
    put(f, spa, 4);
    static const uint8_t zero[10];
    put(f, zero, 10);
}

/* IPv6 from src; with hbh, a hop-by-hop header first; then ICMPv6 of
 * `type` with target `tgt` (NS/NA layout). */
static void ipv6_icmp(struct frame *f, const uint8_t src[16], int hbh, uint8_t type,
                      const uint8_t tgt[16])
{
    eth(f, 0x86dd, 0);
    uint8_t ip[40] = {0x60};
    ip[5] = (uint8_t)(24 + (hbh ? 8 : 0));
    ip[6] = hbh ? 0 : 58;
    ip[7] = 255;
    memcpy(ip + 8, src, 16);
    ip[24] = 0xff;
    ip[25] = 0x02;
    ip[39] = 1;
    put(f, ip, 40);
    if (hbh) {
        uint8_t h[8] = {58, 0, 1, 4, 0, 0, 0, 0};
        put(f, h, 8);
    }
    uint8_t icmp[8] = {type};
    put(f, icmp, 8);
    put(f, tgt, 16);
}

static struct net_binding bound(const char *v4, const char *v6, bool dhcp)
{
    struct net_binding b;
    char err[128];
    assert_int_equal(net_bind_parse(&b, MAC, v4, v6, dhcp, err, sizeof(err)), 0);
    return b;
}

static const uint8_t A_IP[4] = {10, 77, 0, 10}, VICTIM[4] = {10, 77, 0, 11}, ZERO4[4];

static void unbound_client_sends_anything(void **state)
{
    (void)state;
    struct net_binding b = bound("", "", false);
    struct frame f;
    ipv4_udp(&f, VICTIM, 1, 2, 0);
    assert_int_equal(net_bind_check(&b, 0, f.b, f.n), NET_DROP_REASONS);
    arp(&f, OTHER, VICTIM);
    assert_int_equal(net_bind_check(&b, 0, f.b, f.n), NET_DROP_REASONS);
}

static void ipv4_sources(void **state)
{
    (void)state;
    struct net_binding b = bound("10.77.0.10/32,10.77.1.0/24", "", false);
    struct frame f;
    ipv4_udp(&f, A_IP, 1, 2, 0);
    assert_int_equal(net_bind_check(&b, 0, f.b, f.n), NET_DROP_REASONS);
    ipv4_udp(&f, (uint8_t[]){10, 77, 1, 200}, 1, 2, 0);
    assert_int_equal(net_bind_check(&b, 0, f.b, f.n), NET_DROP_REASONS);
    ipv4_udp(&f, VICTIM, 1, 2, 0);
    assert_int_equal(net_bind_check(&b, 0, f.b, f.n), NET_DROP_SPOOF_IP);
    /* A VLAN tag does not hide the source. */
    ipv4_udp(&f, VICTIM, 1, 2, 1);
    assert_int_equal(net_bind_check(&b, 0, f.b, f.n), NET_DROP_SPOOF_IP);
    /* Nor does a truncated header let it through. */
    ipv4_udp(&f, A_IP, 1, 2, 0);
    assert_int_equal(net_bind_check(&b, 0, f.b, 14 + 12), NET_DROP_BAD_LEN);
    f.b[14] = 0x4f; /* IHL 60 bytes, past the frame */
    assert_int_equal(net_bind_check(&b, 0, f.b, 14 + 40), NET_DROP_BAD_LEN);
    /* DHCP from 0.0.0.0 only with dhcp: true. */
    ipv4_udp(&f, ZERO4, 68, 67, 0);
    assert_int_equal(net_bind_check(&b, 0, f.b, f.n), NET_DROP_SPOOF_IP);
}

static void arp_claims(void **state)
{
    (void)state;
    struct net_binding b = bound("10.77.0.10", "", false);
    struct frame f;
    arp(&f, MAC, A_IP);
    assert_int_equal(net_bind_check(&b, 0, f.b, f.n), NET_DROP_REASONS);
    arp(&f, MAC, ZERO4); /* a probe claims nothing */
    assert_int_equal(net_bind_check(&b, 0, f.b, f.n), NET_DROP_REASONS);
    arp(&f, MAC, VICTIM); /* the poisoning the issue measured */
    assert_int_equal(net_bind_check(&b, 0, f.b, f.n), NET_DROP_SPOOF_ARP);
    arp(&f, OTHER, A_IP); /* its IP, someone else's hardware address */
    assert_int_equal(net_bind_check(&b, 0, f.b, f.n), NET_DROP_SPOOF_ARP);
    arp(&f, MAC, A_IP);
    assert_int_equal(net_bind_check(&b, 0, f.b, f.n - 1), NET_DROP_SPOOF_ARP);
    f.b[19] = 8; /* hardware length 8: not Ethernet ARP */
    assert_int_equal(net_bind_check(&b, 0, f.b, f.n), NET_DROP_SPOOF_ARP);
    /* Another protocol altogether. */
    eth(&f, 0x88b5, 0);
    f.n = 60;
    assert_int_equal(net_bind_check(&b, 0, f.b, f.n), NET_DROP_PROTO);
}

static void ipv6_and_neighbour_advertisements(void **state)
{
    (void)state;
    struct net_binding b = bound("", "fd00::a/128", false);
    uint8_t ll[16] = {0xfe, 0x80, [8] = 0x00, 0, 0, 0xff, 0xfe, 0, 0, 0x0a};
    uint8_t mine[16] = {0xfd, 0, [15] = 0x0a}, theirs[16] = {0xfd, 0, [15] = 0x0b};
    uint8_t other_ll[16] = {0xfe, 0x80, [11] = 0xff, 0xfe, [15] = 0x0b}, any[16] = {0};
    struct frame f;
    ipv6_icmp(&f, ll, 0, 135, theirs); /* NS from its own link-local */
    assert_int_equal(net_bind_check(&b, 0, f.b, f.n), NET_DROP_REASONS);
    ipv6_icmp(&f, any, 0, 135, mine); /* duplicate address detection */
    assert_int_equal(net_bind_check(&b, 0, f.b, f.n), NET_DROP_REASONS);
    ipv6_icmp(&f, other_ll, 0, 135, mine);
    assert_int_equal(net_bind_check(&b, 0, f.b, f.n), NET_DROP_SPOOF_IP);
    ipv6_icmp(&f, mine, 0, 136, mine);
    assert_int_equal(net_bind_check(&b, 0, f.b, f.n), NET_DROP_REASONS);
    ipv6_icmp(&f, mine, 0, 136, theirs); /* advertising another's address */
    assert_int_equal(net_bind_check(&b, 0, f.b, f.n), NET_DROP_SPOOF_ARP);
    ipv6_icmp(&f, any, 1, 136, theirs); /* behind a hop-by-hop header */
    assert_int_equal(net_bind_check(&b, 0, f.b, f.n), NET_DROP_SPOOF_ARP);
    ipv6_icmp(&f, mine, 0, 136, theirs);
    assert_int_equal(net_bind_check(&b, 0, f.b, f.n - 4), NET_DROP_SPOOF_ARP);
}

static void dhcp_bound_client(void **state)
{
    (void)state;
    struct net_binding b = bound("", "", true);
    struct frame f;
    ipv4_udp(&f, ZERO4, 68, 67, 0); /* DISCOVER / REQUEST */
    assert_int_equal(net_bind_check(&b, 0, f.b, f.n), NET_DROP_REASONS);
    ipv4_udp(&f, ZERO4, 68, 53, 0);
    assert_int_equal(net_bind_check(&b, 0, f.b, f.n), NET_DROP_SPOOF_IP);
    ipv4_udp(&f, A_IP, 1, 2, 0);
    assert_int_equal(net_bind_check(&b, 0, f.b, f.n), NET_DROP_SPOOF_IP);
    assert_int_equal(net_bind_check(&b, 0x0a4d000a, f.b, f.n), NET_DROP_REASONS);
    arp(&f, MAC, A_IP);
    assert_int_equal(net_bind_check(&b, 0x0a4d000a, f.b, f.n), NET_DROP_REASONS);
    assert_int_equal(net_bind_check(&b, 0, f.b, f.n), NET_DROP_SPOOF_ARP);
}

/* A DHCP answer from the server to MAC: type 5 (ACK) or 6 (NAK). */
static void dhcp_reply(struct frame *f, const uint8_t chaddr[6], uint8_t type, int lease_opt)
{
    eth(f, 0x0800, 0);
    uint8_t ip[20] = {0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0, 10, 77, 0, 1, 255, 255, 255, 255};
    put(f, ip, 20);
    put16(f, 67);
    put16(f, 68);
    put16(f, 0);
    put16(f, 0);
    uint8_t m[240] = {2, 1, 6};
    m[16] = 10, m[17] = 77, m[18] = 0, m[19] = 10; /* yiaddr */
    memcpy(m + 28, chaddr, 6);
    m[236] = 0x63, m[237] = 0x82, m[238] = 0x53, m[239] = 0x63;
    put(f, m, 240);
    uint8_t t[3] = {53, 1, type};
    put(f, t, 3);
    if (lease_opt) {
        uint8_t l[6] = {51, 4, 0, 0, 0x0e, 0x10}; /* 3600 s */
        put(f, l, 6);
    }
    uint8_t end = 255;
    put(f, &end, 1);
}

static void dhcp_snooping(void **state)
{
    (void)state;
    struct frame f;
    uint32_t addr = 1, secs = 1;
    dhcp_reply(&f, MAC, 5, 1);
    assert_true(net_dhcp_snoop(f.b, f.n, MAC, &addr, &secs));
    assert_int_equal(addr, 0x0a4d000a);
    assert_int_equal(secs, 3600);
    assert_false(net_dhcp_snoop(f.b, f.n, OTHER, &addr, &secs)); /* someone else's */
    /* An option running off the end: not believed. */
    assert_false(net_dhcp_snoop(f.b, f.n - 3, MAC, &addr, &secs));
    dhcp_reply(&f, MAC, 5, 0); /* an ACK without a lease time */
    assert_false(net_dhcp_snoop(f.b, f.n, MAC, &addr, &secs));
    dhcp_reply(&f, MAC, 6, 0);
    assert_true(net_dhcp_snoop(f.b, f.n, MAC, &addr, &secs));
    assert_int_equal(addr, 0);
    /* From a client port, not the server's. */
    dhcp_reply(&f, MAC, 5, 1);
    f.b[14 + 20 + 1] = 99;
    assert_false(net_dhcp_snoop(f.b, f.n, MAC, &addr, &secs));
    for (uint32_t n = 0; n < 14 + 20 + 8 + 240; n += 7)
        assert_false(net_dhcp_snoop(f.b, n, MAC, &addr, &secs));
}

static void bad_config_refused(void **state)
{
    (void)state;
    struct net_binding b;
    char err[128];
    assert_int_equal(net_bind_parse(&b, MAC, "10.77.0.300/32", "", false, err, sizeof(err)), -1);
    assert_int_equal(net_bind_parse(&b, MAC, "10.77.0.1/33", "", false, err, sizeof(err)), -1);
    assert_int_equal(net_bind_parse(&b, MAC, "", "fd00::1/200", false, err, sizeof(err)), -1);
    assert_int_equal(net_bind_parse(&b, MAC, "10.0.0.1,", "", false, err, sizeof(err)), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(unbound_client_sends_anything),
        cmocka_unit_test(ipv4_sources),
        cmocka_unit_test(arp_claims),
        cmocka_unit_test(ipv6_and_neighbour_advertisements),
        cmocka_unit_test(dhcp_bound_client),
        cmocka_unit_test(dhcp_snooping),
        cmocka_unit_test(bad_config_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
