/*
 * net-attack: a hostile client of a shared network that attacks in phases,
 * alternating with idle phases, on a schedule its config fixes.  It is
 * written against the protocol (docs/protocols/net.md, queue.md) and the
 * component API only, as an untrusted OS's frontend would be.
 *
 * config:
 *   attacks     comma-separated, in order (default: all of them, below)
 *   pairs       (attack on, idle) phase pairs per attack (default 3)
 *   phase_ms    length of every phase (default 5000)
 *   lead_ms     idle time before phase 1 (default 3000)
 *   ip          our own IPv4 address (10.77.0.13)
 *   victim_ip   the address arp-spoof claims (10.77.0.10)
 *   lan_ip      the far end we ping (10.77.0.1); lan_mac its MAC (required
 *               for the attacks that send IP)
 *   state       a region of our own (rw, >= 4 KiB) that keeps the schedule
 *               across restarts; without it a restart starts a new schedule
 *   spin_threads  threads that spin besides the event loop (default 3)
 *   memory_cap  the memory attack stops growing here (bytes; 0: never).  A
 *               safety net for hosts without a memory quota.
 *
 * The attacks:
 *   arp-spoof       every 50 ms, from our own MAC: a gratuitous ARP reply
 *                   claiming victim_ip, an ARP request to lan_ip "from"
 *                   victim_ip, an ICMP echo request and a UDP datagram to
 *                   lan_ip with the forged source victim_ip;
 *   attract         ICMP echo requests (1400 bytes) to lan_ip as fast as
 *                   the network takes them, so that replies flood back; it
 *                   never takes a received frame nor returns a buffer;
 *   attract-return  the same, taking and returning received frames;
 *   restart-storm   new values in the request words of its rx and tx sync
 *                   items, and notifications, over and over, without ever
 *                   restarting;
 *   scribble        random bytes over every byte of its rx and tx regions
 *                   (rings, headers, sync, buffers), and notifications;
 *   spin            every thread it may have burns CPU;
 *   memory          allocates and touches memory without end;
 *   storm           notifications on every channel, log lines and raw
 *                   messages on its control socket, without pause.
 *
 * The schedule is in wall-clock time: it logs
 *   schedule: start_us=T phase_ms=P pairs=N attacks=a,b,...
 * once, where T is the CLOCK_REALTIME microsecond phase 1 starts, so a test
 * can time its measurements without depending on log lines arriving (the
 * storm floods the log, whose lines the supervisor rate-limits).  It also
 * logs each phase change ("phase 3: attack attract on (pair 2/3)",
 * "phase 4: idle") and, at the end of each attack phase, what it did.
 * When no attack is on it is a quiet, honest client: it answers ARP for its
 * own address and returns every buffer.
 */
#include <devmux/microkit.h>
#include <devmux/net.h>
#include <devmux/net_client.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "runtime/abi.h"

enum attack {
    A_ARP_SPOOF,
    A_ATTRACT,
    A_ATTRACT_RETURN,
    A_RESTART_STORM,
    A_SCRIBBLE,
    A_SPIN,
    A_MEMORY,
    A_STORM,
    A_COUNT,
    A_IDLE = A_COUNT,
};
static const char *const attack_names[A_COUNT] = {
    "arp-spoof", "attract", "attract-return", "restart-storm",
    "scribble",  "spin",    "memory",         "storm",
};

#define STATE_MAGIC   0x6b636174746174ull /* "tattack" */
#define SLICE_NS      (5u * 1000000u)     /* a busy attack returns to the loop this often */
#define MAX_SPINNERS  16
#define MEMORY_CHUNK  (1u << 20)
#define ECHO_PAYLOAD  1400u
#define SPOOF_PERIOD  (50u * 1000000u)
#define IDLE_TICK_NS  (10u * 1000000u)
#define BUSY_TICK_NS  1000u
#define ATTRACT_TICK  (1u * 1000000u)
#define ETH_HDR       14u
#define IP_HDR        20u
#define ETHERTYPE_IP  0x0800u
#define ETHERTYPE_ARP 0x0806u

/* What survives our restarts: where the schedule started. */
struct state {
    uint64_t magic;
    int64_t start_us;
};

static struct net_client nc;
static struct state *st, local_state;
static uint8_t mac[6], lan_mac[6];
static bool have_lan_mac;
static uint32_t my_ip, victim_ip, lan_ip; /* host order */
static unsigned attacks[64], nattacks, pairs;
static uint64_t phase_ms;
static long cur_phase = -2;
static enum attack cur = A_IDLE;
static uint64_t last_spoof_ns;
static uint16_t ip_id, echo_seq;
static const char *me;
static char rx_name[128], tx_name[128];

/* What this phase did, logged when it ends. */
static struct {
    uint64_t frames, notifies, requests, bytes, lines, ctrl, passes;
} did;

/* ---- time and schedule -------------------------------------------------- */

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static long total_phases(void)
{
    return (long)nattacks * pairs * 2;
}

/* -1 before phase 1, total_phases() after the last. */
static long phase_now(void)
{
    int64_t t = now_us() - st->start_us;
    if (t < 0)
        return -1;
    long k = (long)(t / (int64_t)(phase_ms * 1000));
    return k > total_phases() ? total_phases() : k;
}

static enum attack attack_of(long k)
{
    if (k < 0 || k >= total_phases() || k % 2)
        return A_IDLE;
    return (enum attack)attacks[k / (2 * (long)pairs)];
}

static bool parse_attacks(const char *s)
{
    char buf[1024];
    snprintf(buf, sizeof(buf), "%s", s);
    for (char *save = NULL, *t = strtok_r(buf, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
        unsigned a = 0;
        while (a < A_COUNT && strcmp(t, attack_names[a]))
            a++;
        if (a == A_COUNT || nattacks == 64) {
            devmux_log("%s: unknown attack '%s'", me, t);
            return false;
        }
        attacks[nattacks++] = a;
    }
    return nattacks > 0;
}

static bool parse_ip(const char *s, uint32_t *out)
{
    unsigned a, b, c, d;
    char tail;
    if (sscanf(s, "%u.%u.%u.%u%c", &a, &b, &c, &d, &tail) != 4 || a > 255 || b > 255 || c > 255 ||
        d > 255)
        return false;
    *out = a << 24 | b << 16 | c << 8 | d;
    return true;
}

/* ---- frames ------------------------------------------------------------- */

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
    put16(p, (uint16_t)(v >> 16));
    put16(p + 2, (uint16_t)v);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint16_t csum(const uint8_t *p, size_t n)
{
    uint32_t s = 0;
    for (size_t i = 0; i + 1 < n; i += 2)
        s += (uint32_t)p[i] << 8 | p[i + 1];
    if (n & 1)
        s += (uint32_t)p[n - 1] << 8;
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return (uint16_t)~s;
}

static void eth(uint8_t *f, const uint8_t *dst, uint16_t type)
{
    memcpy(f, dst, 6);
    memcpy(f + 6, mac, 6);
    put16(f + 12, type);
}

/* An ARP packet from our own MAC; returns the frame length. */
static uint32_t arp(uint8_t *f, const uint8_t *dst, uint16_t op, uint32_t spa, const uint8_t *tha,
                    uint32_t tpa)
{
    eth(f, dst, ETHERTYPE_ARP);
    uint8_t *a = f + ETH_HDR;
    put16(a, 1);
    put16(a + 2, ETHERTYPE_IP);
    a[4] = 6;
    a[5] = 4;
    put16(a + 6, op);
    memcpy(a + 8, mac, 6);
    put32(a + 14, spa);
    memcpy(a + 18, tha, 6);
    put32(a + 24, tpa);
    memset(a + 28, 0, 18); /* pad to the 60-byte minimum */
    return ETH_HDR + 46;
}

/* An IPv4 packet to lan_ip from src, payload already in place after the
 * header; returns the frame length. */
static uint32_t ipv4(uint8_t *f, uint32_t src, uint8_t proto, uint32_t payload)
{
    eth(f, lan_mac, ETHERTYPE_IP);
    uint8_t *h = f + ETH_HDR;
    h[0] = 0x45;
    h[1] = 0;
    put16(h + 2, (uint16_t)(IP_HDR + payload));
    put16(h + 4, ip_id++);
    put16(h + 6, 0x4000); /* don't fragment */
    h[8] = 64;
    h[9] = proto;
    put16(h + 10, 0);
    put32(h + 12, src);
    put32(h + 16, lan_ip);
    put16(h + 10, csum(h, IP_HDR));
    return ETH_HDR + IP_HDR + payload;
}

static uint32_t echo_request(uint8_t *f, uint32_t src, uint32_t size)
{
    uint8_t *icmp = f + ETH_HDR + IP_HDR;
    icmp[0] = 8;
    icmp[1] = 0;
    put16(icmp + 2, 0);
    put16(icmp + 4, 0x4854); /* "HT" */
    put16(icmp + 6, echo_seq++);
    memset(icmp + 8, 0xa5, size);
    put16(icmp + 2, csum(icmp, 8 + size));
    return ipv4(f, src, 1, 8 + size);
}

static uint32_t udp(uint8_t *f, uint32_t src, uint16_t port)
{
    uint8_t *u = f + ETH_HDR + IP_HDR;
    put16(u, 40000);
    put16(u + 2, port);
    put16(u + 4, 8 + 32);
    put16(u + 6, 0); /* no checksum */
    memset(u + 8, 'S', 32);
    return ipv4(f, src, 17, 8 + 32);
}

/* One frame through our own tx queue; false when no buffer is free. */
static bool send_frame(uint32_t (*build)(uint8_t *, void *), void *arg)
{
    uint32_t h;
    uint8_t *b = net_client_tx_buffer(&nc, &h);
    if (!b)
        return false;
    net_client_tx_send(&nc, h, build(b, arg));
    did.frames++;
    return true;
}

static uint32_t build_garp(uint8_t *f, void *arg)
{
    static const uint8_t bc[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    return arp(f, bc, 2, victim_ip, bc, victim_ip);
}

static uint32_t build_arp_req(uint8_t *f, void *arg)
{
    static const uint8_t bc[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, zero[6];
    return arp(f, bc, 1, victim_ip, zero, lan_ip);
}

static uint32_t build_spoofed_echo(uint8_t *f, void *arg)
{
    return echo_request(f, victim_ip, 56);
}

static uint32_t build_spoofed_udp(uint8_t *f, void *arg)
{
    return udp(f, victim_ip, 9);
}

static uint32_t build_echo(uint8_t *f, void *arg)
{
    return echo_request(f, my_ip, ECHO_PAYLOAD);
}

static const uint8_t *reply_to;
static uint32_t reply_ip;
static uint32_t build_arp_reply(uint8_t *f, void *arg)
{
    return arp(f, reply_to, 2, my_ip, reply_to, reply_ip);
}

/* Receive like an honest client: take every frame, answer ARP requests for
 * our own address, return the buffer. */
static void receive(void)
{
    const uint8_t *f;
    uint32_t len, h;
    while (net_client_rx(&nc, &f, &len, &h)) {
        if (len >= ETH_HDR + 28 && f[12] == 0x08 && f[13] == 0x06 && f[ETH_HDR + 7] == 1 &&
            get32(f + ETH_HDR + 24) == my_ip) {
            uint8_t who[6];
            memcpy(who, f + ETH_HDR + 8, 6);
            reply_to = who;
            reply_ip = get32(f + ETH_HDR + 14);
            send_frame(build_arp_reply, NULL);
            net_client_tx_flush(&nc);
        }
        net_client_rx_done(&nc, h);
    }
    net_client_rx_flush(&nc);
}

/* ---- the busy attacks ---------------------------------------------------- */

static _Atomic bool spinning;
static pthread_t spinners[MAX_SPINNERS];
static unsigned nspinners;

static void *spin_thread(void *arg)
{
    volatile uint64_t x = 0;
    while (atomic_load_explicit(&spinning, memory_order_relaxed))
        for (int i = 0; i < 100000; i++)
            x = x * 6364136223846793005ull + 1;
    return NULL;
}

static void spin_start(void)
{
    unsigned want = (unsigned)devmux_config_u64("spin_threads", 3);
    atomic_store(&spinning, true);
    for (nspinners = 0; nspinners < want && nspinners < MAX_SPINNERS; nspinners++)
        if (pthread_create(&spinners[nspinners], NULL, spin_thread, NULL))
            break;
    did.passes = nspinners;
}

static void spin_stop(void)
{
    atomic_store(&spinning, false);
    for (unsigned i = 0; i < nspinners; i++)
        pthread_join(spinners[i], NULL);
    nspinners = 0;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next_random(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void scribble_region(const char *name)
{
    size_t size;
    uint8_t *p = devmux_region(name, &size);
    if (!p || !devmux_region_writable(name))
        return;
    for (size_t i = 0; i + 8 <= size; i += 8) {
        uint64_t v = next_random();
        memcpy(p + i, &v, 8);
    }
    did.bytes += size;
}

static uint64_t allocated;

/* One slice of a busy attack: at most SLICE_NS, then back to the loop. */
static void busy_slice(void)
{
    uint64_t end = devmux_now_ns() + SLICE_NS;
    uint64_t cap = devmux_config_u64("memory_cap", 0);
    do {
        switch (cur) {
        case A_RESTART_STORM: {
            uint32_t v = (uint32_t)next_random() | 1u;
            atomic_store(&nc.rx_sync->request, v);
            atomic_store(&nc.tx_sync->request, v + 1);
            microkit_notify(NET_CLIENT_CH_RX);
            microkit_notify(NET_CLIENT_CH_TX);
            did.requests += 2;
            did.notifies += 2;
            break;
        }
        case A_SCRIBBLE:
            scribble_region(rx_name);
            scribble_region(tx_name);
            microkit_notify(NET_CLIENT_CH_RX);
            microkit_notify(NET_CLIENT_CH_TX);
            did.notifies += 2;
            did.passes++;
            break;
        case A_SPIN: {
            volatile uint64_t x = 0;
            for (int i = 0; i < 100000; i++)
                x = x * 6364136223846793005ull + 1;
            break;
        }
        case A_MEMORY:
            if (cap && allocated >= cap)
                return;
            uint8_t *chunk = malloc(MEMORY_CHUNK);
            if (!chunk)
                return;
            memset(chunk, 0x5a, MEMORY_CHUNK);
            allocated += MEMORY_CHUNK;
            did.bytes = allocated;
            break;
        case A_STORM: {
            for (microkit_channel ch = 0; ch < 2; ch++)
                for (int i = 0; i < 64; i++)
                    microkit_notify(ch);
            did.notifies += 128;
            /* Channels we do not have: the runtime refuses and logs. */
            microkit_notify((microkit_channel)(2 + next_random() % 60));
            devmux_log("%s: storm line %llu %s", me, (unsigned long long)did.lines,
                       "................................................................");
            did.lines += 2;
            /* Raw messages on our control socket: a forged ready, a forged
             * forbidden-syscall report, and junk of the wrong size. */
            struct dmx_ctrl m = {.type = DMX_CTRL_READY};
            uint8_t junk[7] = {0xff, 1, 2, 3, 4, 5, 6};
            if (send(DMX_FD_CTRL, &m, sizeof(m), MSG_DONTWAIT) == sizeof(m))
                did.ctrl++;
            m.type = DMX_CTRL_SYSCALL;
            m.a = (int32_t)next_random();
            if (send(DMX_FD_CTRL, &m, sizeof(m), MSG_DONTWAIT) == sizeof(m))
                did.ctrl++;
            if (send(DMX_FD_CTRL, junk, sizeof(junk), MSG_DONTWAIT) == sizeof(junk))
                did.ctrl++;
            break;
        }
        default:
            return;
        }
    } while (devmux_now_ns() < end);
}

/* ---- the network attacks -------------------------------------------------- */

static void spoof_tick(void)
{
    uint64_t now = devmux_now_ns();
    if (now - last_spoof_ns < SPOOF_PERIOD)
        return;
    last_spoof_ns = now;
    send_frame(build_garp, NULL);
    send_frame(build_arp_req, NULL);
    if (have_lan_mac) {
        send_frame(build_spoofed_echo, NULL);
        send_frame(build_spoofed_udp, NULL);
    }
    net_client_tx_flush(&nc);
}

static void attract_tick(void)
{
    if (!have_lan_mac)
        return;
    while (send_frame(build_echo, NULL))
        ;
    net_client_tx_flush(&nc);
}

/* ---- phases -------------------------------------------------------------- */

static void phase_end(void)
{
    if (cur == A_IDLE)
        return;
    if (cur == A_SPIN)
        spin_stop();
    devmux_log("%s: %s did: frames=%llu notifies=%llu sync_requests=%llu bytes=%llu "
               "log_lines=%llu ctrl_msgs=%llu passes=%llu",
               me, attack_names[cur], (unsigned long long)did.frames,
               (unsigned long long)did.notifies, (unsigned long long)did.requests,
               (unsigned long long)did.bytes, (unsigned long long)did.lines,
               (unsigned long long)did.ctrl, (unsigned long long)did.passes);
}

static void phase_begin(long k, bool resumed)
{
    memset(&did, 0, sizeof(did));
    cur = attack_of(k);
    const char *how = resumed ? " (resumed after a restart)" : "";
    if (k < 0)
        devmux_log("%s: waiting for phase 1%s", me, how);
    else if (k >= total_phases())
        devmux_log("%s: schedule done: %ld phases", me, total_phases());
    else if (cur == A_IDLE)
        devmux_log("%s: phase %ld: idle%s", me, k + 1, how);
    else
        devmux_log("%s: phase %ld: attack %s on (pair %ld/%u)%s", me, k + 1, attack_names[cur],
                   k % (2 * (long)pairs) / 2 + 1, pairs, how);
    if (cur == A_SPIN)
        spin_start();
}

static void tick(void)
{
    long k = phase_now();
    if (k != cur_phase) {
        phase_end();
        phase_begin(k, cur_phase == -2 && devmux_restarts() > 0);
        cur_phase = k;
    }
    uint64_t next = IDLE_TICK_NS;
    if (!net_client_ready(&nc)) {
        /* Restart handshake still running: our queues are not ours yet. */
        if (cur == A_SPIN || cur == A_MEMORY || cur == A_STORM) {
            busy_slice();
            next = BUSY_TICK_NS;
        }
        devmux_timeout(next);
        return;
    }
    switch (cur) {
    case A_ARP_SPOOF:
        receive();
        spoof_tick();
        break;
    case A_ATTRACT:
        attract_tick();
        next = ATTRACT_TICK;
        break;
    case A_ATTRACT_RETURN:
        receive();
        attract_tick();
        next = ATTRACT_TICK;
        break;
    case A_RESTART_STORM:
    case A_SCRIBBLE:
    case A_SPIN:
    case A_MEMORY:
    case A_STORM:
        busy_slice();
        next = BUSY_TICK_NS;
        break;
    default:
        receive();
        break;
    }
    /* Wake exactly at the next phase boundary, not up to a tick late. */
    int64_t to_next =
        st->start_us + (int64_t)((cur_phase + 1) * (int64_t)phase_ms * 1000) - now_us();
    if (to_next > 0 && (uint64_t)to_next * 1000 < next)
        next = (uint64_t)to_next * 1000;
    devmux_timeout(next ? next : 1);
}

void init(void)
{
    me = devmux_config_str("client", microkit_name);
    if (net_client_init(&nc))
        abort();
    memcpy(mac, nc.mac, 6);
    if (!parse_attacks(devmux_config_str("attacks", "arp-spoof,attract,attract-return,"
                                                    "restart-storm,scribble,spin,memory,storm")) ||
        !parse_ip(devmux_config_str("ip", "10.77.0.13"), &my_ip) ||
        !parse_ip(devmux_config_str("victim_ip", "10.77.0.10"), &victim_ip) ||
        !parse_ip(devmux_config_str("lan_ip", "10.77.0.1"), &lan_ip)) {
        devmux_log("%s: bad attacks or addresses in config", me);
        abort();
    }
    have_lan_mac = net_mac_parse(devmux_config_str("lan_mac", ""), lan_mac);
    pairs = (unsigned)devmux_config_u64("pairs", 3);
    phase_ms = devmux_config_u64("phase_ms", 5000);
    if (pairs == 0 || phase_ms == 0)
        abort();
    const char *net = devmux_config_str("net", "");
    snprintf(rx_name, sizeof(rx_name), "%s.%s.%s", net, me, NET_REGION_CLIENT_RX);
    snprintf(tx_name, sizeof(tx_name), "%s.%s.%s", net, me, NET_REGION_CLIENT_TX);

    size_t size = 0;
    const char *sname = devmux_config_str("state", "");
    st = *sname ? devmux_region(sname, &size) : NULL;
    if (!st || size < sizeof(*st) || !devmux_region_writable(sname))
        st = &local_state;
    if (st->magic != STATE_MAGIC) {
        st->start_us = now_us() + (int64_t)devmux_config_u64("lead_ms", 3000) * 1000;
        st->magic = STATE_MAGIC;
    }
    rng ^= (uint64_t)now_us();
    char list[1024] = "";
    for (unsigned i = 0; i < nattacks; i++)
        snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? "," : "",
                 attack_names[attacks[i]]);
    devmux_log("%s: schedule: start_us=%lld phase_ms=%llu pairs=%u attacks=%s restarts=%u", me,
               (long long)st->start_us, (unsigned long long)phase_ms, pairs, list,
               devmux_restarts());
    devmux_timeout(1000);
}

void notified(microkit_channel ch)
{
    if (ch == DEVMUX_TIMER_CHANNEL) {
        tick();
        return;
    }
    if (!net_client_notified(&nc, ch) || !net_client_ready(&nc))
        return;
    /* A frame arrived or a buffer came back: serve it now when the phase
     * wants it, rather than at the next tick. */
    if (ch == NET_CLIENT_CH_TX && (cur == A_ATTRACT || cur == A_ATTRACT_RETURN))
        attract_tick();
    if (ch == NET_CLIENT_CH_RX && cur != A_ATTRACT && cur != A_RESTART_STORM && cur != A_SCRIBBLE &&
        cur != A_STORM)
        receive();
}
