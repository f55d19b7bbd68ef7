/*
 * net-lwip-echo: a native client OS on a devmux network, built on lwIP.
 * It answers UDP and TCP echo (RFC 862) on its own address.
 *
 * config:
 *   ip             "10.0.0.30/24" (required)
 *   gateway        "10.0.0.1" (optional)
 *   udp_echo_port  default 7 (0: no UDP echo)
 *   tcp_echo_port  default 7 (0: no TCP echo)
 *   plus `net`, `client`, `mac` for the network client (net_client.h).
 *
 * The echo services use lwIP's raw API; their callbacks all run in the
 * tcpip thread.  TCP echo is flow controlled end to end: received data is
 * only acknowledged to the window (tcp_recved) once it is queued for
 * sending, so a sender that outruns the echo is held back by our window.
 */
#include <devmux/microkit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devmux/net_client.h"
#include "lwip/ip_addr.h"
#include "lwip/pbuf.h"
#include "lwip/tcp.h"
#include "lwip/udp.h"
#include "net/lwip/netif.h"

#define TICK_NS       (1000u * 1000u * 1000u) /* TX retry safety net */
#define STATS_TICKS   10                      /* log counters (if changed) every 10 s */
#define POLL_INTERVAL 4                       /* tcp_poll: every 4 * 500 ms */

static struct net_client client;
static struct lwipif ifc;
static unsigned ticks;

/* ---- UDP echo ----------------------------------------------------------- */

static void udp_echo_recv(void *arg, struct udp_pcb *pcb, struct pbuf *p, const ip_addr_t *addr,
                          u16_t port)
{
    (void)arg;
    udp_sendto(pcb, p, addr, port);
    pbuf_free(p);
}

/* ---- TCP echo ----------------------------------------------------------- */

struct echo_conn {
    struct tcp_pcb *pcb;
    struct pbuf *pending; /* received, not yet queued for sending */
    bool peer_closed;
};

static void echo_free(struct echo_conn *ec)
{
    if (ec->pending)
        pbuf_free(ec->pending);
    free(ec);
}

static void echo_detach(struct tcp_pcb *pcb)
{
    tcp_arg(pcb, NULL);
    tcp_recv(pcb, NULL);
    tcp_sent(pcb, NULL);
    tcp_err(pcb, NULL);
    tcp_poll(pcb, NULL, 0);
}

static err_t echo_abort(struct echo_conn *ec)
{
    struct tcp_pcb *pcb = ec->pcb;
    echo_detach(pcb);
    echo_free(ec);
    tcp_abort(pcb);
    return ERR_ABRT;
}

/* Drops n bytes from the front of a chain (n <= its first pbuf's len). */
static struct pbuf *consume(struct pbuf *q, u16_t n)
{
    if (n == 0 && q->len == 0) {
        struct pbuf *rest = q->next;
        q->next = NULL;
        pbuf_free(q);
        return rest;
    }
    return pbuf_free_header(q, n);
}

static err_t echo_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err);
static err_t echo_sent(void *arg, struct tcp_pcb *pcb, u16_t len);
static err_t echo_poll(void *arg, struct tcp_pcb *pcb);
static void echo_err(void *arg, err_t err);

static void echo_attach(struct echo_conn *ec)
{
    tcp_arg(ec->pcb, ec);
    tcp_recv(ec->pcb, echo_recv);
    tcp_sent(ec->pcb, echo_sent);
    tcp_err(ec->pcb, echo_err);
    tcp_poll(ec->pcb, echo_poll, POLL_INTERVAL);
}

/* Everything echoed and the peer is done sending: close.  Queued data still
 * goes out before our FIN.  If lwIP has no memory for the FIN now, the poll
 * callback tries again. */
static err_t echo_close(struct echo_conn *ec)
{
    struct tcp_pcb *pcb = ec->pcb;
    echo_detach(pcb);
    if (tcp_close(pcb) != ERR_OK) {
        echo_attach(ec);
        return ERR_OK;
    }
    echo_free(ec);
    return ERR_OK;
}

/* Moves pending data into the send buffer as far as it has room, opening
 * our receive window by as much. */
static err_t echo_pump(struct echo_conn *ec)
{
    struct tcp_pcb *pcb = ec->pcb;
    bool wrote = false;
    while (ec->pending) {
        struct pbuf *q = ec->pending;
        u16_t room = tcp_sndbuf(pcb);
        u16_t n = q->len < room ? q->len : room;
        if (q->len > 0 && n == 0)
            break;
        if (n > 0) {
            err_t e = tcp_write(pcb, q->payload, n, TCP_WRITE_FLAG_COPY);
            if (e == ERR_MEM)
                break; /* send queue full: echo_sent resumes */
            if (e != ERR_OK)
                return echo_abort(ec);
            tcp_recved(pcb, n);
            wrote = true;
        }
        ec->pending = consume(q, n);
    }
    if (wrote)
        tcp_output(pcb);
    if (!ec->pending && ec->peer_closed)
        return echo_close(ec);
    return ERR_OK;
}

static err_t echo_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
    struct echo_conn *ec = arg;
    if (!ec) { /* closing: acknowledge and discard, as lwIP's default does */
        if (p) {
            tcp_recved(pcb, p->tot_len);
            pbuf_free(p);
        }
        return ERR_OK;
    }
    if (!p) {
        ec->peer_closed = true;
        return echo_pump(ec);
    }
    if (err != ERR_OK) {
        pbuf_free(p);
        return ERR_OK;
    }
    if (ec->pending)
        pbuf_cat(ec->pending, p);
    else
        ec->pending = p;
    return echo_pump(ec);
}

static err_t echo_sent(void *arg, struct tcp_pcb *pcb, u16_t len)
{
    (void)pcb;
    (void)len;
    return arg ? echo_pump(arg) : ERR_OK;
}

static err_t echo_poll(void *arg, struct tcp_pcb *pcb)
{
    (void)pcb;
    return arg ? echo_pump(arg) : ERR_OK;
}

/* The pcb is already gone (reset, or aborted by lwIP). */
static void echo_err(void *arg, err_t err)
{
    (void)err;
    if (arg)
        echo_free(arg);
}

static err_t echo_accept(void *arg, struct tcp_pcb *pcb, err_t err)
{
    (void)arg;
    if (err != ERR_OK || !pcb)
        return ERR_VAL;
    struct echo_conn *ec = calloc(1, sizeof(*ec));
    if (!ec) {
        tcp_abort(pcb);
        return ERR_ABRT;
    }
    ec->pcb = pcb;
    tcp_nagle_disable(pcb);
    echo_attach(ec);
    return ERR_OK;
}

/* ---- start-up ----------------------------------------------------------- */

struct services {
    u16_t udp_port, tcp_port;
};

/* tcpip thread, core locked. */
static int start_services(struct lwipif *unused, void *arg)
{
    (void)unused;
    const struct services *sv = arg;
    if (sv->udp_port) {
        struct udp_pcb *u = udp_new_ip_type(IPADDR_TYPE_ANY);
        if (!u || udp_bind(u, IP_ANY_TYPE, sv->udp_port) != ERR_OK) {
            devmux_log("UDP echo: cannot bind port %u", sv->udp_port);
            return -1;
        }
        udp_recv(u, udp_echo_recv, NULL);
    }
    if (sv->tcp_port) {
        struct tcp_pcb *t = tcp_new_ip_type(IPADDR_TYPE_ANY);
        if (!t || tcp_bind(t, IP_ANY_TYPE, sv->tcp_port) != ERR_OK) {
            devmux_log("TCP echo: cannot bind port %u", sv->tcp_port);
            return -1;
        }
        struct tcp_pcb *l = tcp_listen(t);
        if (!l) {
            devmux_log("TCP echo: cannot listen on port %u", sv->tcp_port);
            return -1;
        }
        tcp_accept(l, echo_accept);
    }
    return 0;
}

/* "10.0.0.30/24" (no prefix: /24). */
static bool parse_cidr(const char *s, ip4_addr_t *ip, ip4_addr_t *mask)
{
    char buf[32];
    const char *slash = strchr(s, '/');
    size_t n = slash ? (size_t)(slash - s) : strlen(s);
    if (n >= sizeof(buf))
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (!ip4addr_aton(buf, ip))
        return false;
    unsigned long prefix = 24;
    if (slash) {
        char *end;
        prefix = strtoul(slash + 1, &end, 10);
        if (end == slash + 1 || *end || prefix > 32)
            return false;
    }
    uint32_t m = prefix ? 0xffffffffu << (32 - prefix) : 0;
    ip4_addr_set_u32(mask, lwip_htonl(m));
    return true;
}

static u16_t port_config(const char *key)
{
    uint64_t v = devmux_config_u64(key, 7);
    if (v > 65535) {
        devmux_log("%s: %llu is not a port; using 7", key, (unsigned long long)v);
        v = 7;
    }
    return (u16_t)v;
}

void init(void)
{
    if (net_client_init(&client))
        abort();

    const char *ip_s = devmux_config_str("ip", NULL);
    const char *gw_s = devmux_config_str("gateway", NULL);
    static struct services sv;
    struct lwipif_config cfg = {.services = start_services, .arg = &sv};
    if (!ip_s || !parse_cidr(ip_s, &cfg.ip, &cfg.netmask)) {
        devmux_log("config: ip must be an IPv4 address with a prefix, e.g. 10.0.0.30/24 (got %s)",
                   ip_s ? ip_s : "nothing");
        abort();
    }
    ip4_addr_set_zero(&cfg.gw);
    if (gw_s && !ip4addr_aton(gw_s, &cfg.gw)) {
        devmux_log("config: gateway '%s' is not an IPv4 address", gw_s);
        abort();
    }
    sv.udp_port = port_config("udp_echo_port");
    sv.tcp_port = port_config("tcp_echo_port");

    /* lwIP's LWIP_RAND is rand(): vary ephemeral ports across restarts. */
    srand((unsigned)(devmux_now_ns() ^ ((uint64_t)devmux_restarts() << 32)));

    if (lwipif_start(&ifc, &client, &cfg))
        abort();

    const uint8_t *m = client.mac;
    devmux_log("lwIP up: %s mac %02x:%02x:%02x:%02x:%02x:%02x, udp echo :%u, tcp echo :%u%s", ip_s,
               m[0], m[1], m[2], m[3], m[4], m[5], sv.udp_port, sv.tcp_port,
               net_client_ready(&client) ? "" : " (waiting for the restart handshake)");

    lwipif_rx_drain(&ifc);
    devmux_timeout(TICK_NS);
}

void notified(microkit_channel ch)
{
    if (ch == DEVMUX_TIMER_CHANNEL) {
        lwipif_tick(&ifc);
        if (++ticks % STATS_TICKS == 0)
            lwipif_log_stats(&ifc);
        devmux_timeout(TICK_NS);
        return;
    }
    lwipif_notified(&ifc, ch);
}
