/*
 * The component's event loop and its calls into the system: notify,
 * protected calls, IRQ ack and logging.  Like a Microkit protection domain,
 * a component handles one event at a time and its entry points never nest.
 */
#include "runtime/runtime.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define TAG_RECV  0x100u
#define TAG_SERVE 0x200u
#define TAG_CTRL  0x300u
#define TAG_IRQ   0x400u
#define TAG_TIMER 0x500u
#define TAG_QUIET 0x600u

struct chan {
    int recv_fd, send_fd, call_fd, serve_fd;
};

static struct chan chans[MICROKIT_MAX_CHANNELS];
static uint64_t mrs[MICROKIT_MAX_MRS];
static int epfd = -1, timer_fd = -1;
/* devmux_channel_quiet: until when each channel's notifications wait, and
 * the timer that brings them back. */
static uint64_t quiet_until[MICROKIT_MAX_CHANNELS];
static int quiet_fd = -1;
/* Device descriptor whose readiness is the interrupt on channel ch, or -1;
 * irq_counted: it is an eventfd counting interrupts, which we drain. */
static int irq_fd[MICROKIT_MAX_CHANNELS];
static bool irq_counted[MICROKIT_MAX_CHANNELS];
static void (*irq_hook[MICROKIT_MAX_CHANNELS])(void *);
static void *irq_hook_ctx[MICROKIT_MAX_CHANNELS];

/* Control messages that arrive while we are inside an entry point (during a
 * ppcall) wait here, so entry points never nest. */
static struct dmx_ctrl deferred[256];
static unsigned ndeferred;

static bool chan_ok(microkit_channel ch)
{
    return ch < MICROKIT_MAX_CHANNELS && dmx_boot->channels[ch].present;
}

void devmux_log(const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof(buf) - 2)
        n = sizeof(buf) - 2;
    buf[n++] = '\n';
    (void)!write(2, buf, (size_t)n);
}

void microkit_dbg_puts(const char *s)
{
    (void)!write(2, s, strlen(s));
}

void microkit_mr_set(unsigned int mr, uint64_t value)
{
    if (mr < MICROKIT_MAX_MRS)
        mrs[mr] = value;
}

uint64_t microkit_mr_get(unsigned int mr)
{
    return mr < MICROKIT_MAX_MRS ? mrs[mr] : 0;
}

void microkit_notify(microkit_channel ch)
{
    if (!chan_ok(ch)) {
        devmux_log("notify on channel %u: no such channel in the system description", ch);
        return;
    }
    uint64_t one = 1;
    if (write(chans[ch].send_fd, &one, sizeof(one)) == sizeof(one))
        dmx_stats->ch[ch].notify_sent++;
}

/* A device's readiness is watched one-shot: like a level-triggered IRQ
 * line that stays masked from delivery until the driver acknowledges it. */
static void irq_arm(microkit_channel ch, int op)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLONESHOT, .data.u32 = TAG_IRQ | ch};
    if (epoll_ctl(epfd, op, irq_fd[ch], &ev))
        dmx_die("epoll_ctl on device of channel %u: %s", ch, strerror(errno));
}

void microkit_irq_ack(microkit_channel ch)
{
    if (ch >= MICROKIT_MAX_CHANNELS || irq_fd[ch] < 0) {
        devmux_log("irq_ack on channel %u: no interrupt is routed to this channel", ch);
        return;
    }
    if (irq_hook[ch])
        irq_hook[ch](irq_hook_ctx[ch]);
    irq_arm(ch, EPOLL_CTL_MOD);
}

void dmx_irq_ack_hook(microkit_channel ch, void (*fn)(void *ctx), void *ctx)
{
    if (ch < MICROKIT_MAX_CHANNELS) {
        irq_hook[ch] = fn;
        irq_hook_ctx[ch] = ctx;
    }
}

uint64_t devmux_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void devmux_timeout(uint64_t ns)
{
    struct itimerspec its = {0};
    its.it_value.tv_sec = (time_t)(ns / 1000000000u);
    its.it_value.tv_nsec = (long)(ns % 1000000000u);
    if (timer_fd >= 0 && timerfd_settime(timer_fd, 0, &its, NULL))
        devmux_log("devmux_timeout: %s", strerror(errno));
}

static void quiet_arm(void)
{
    uint64_t next = 0;
    for (unsigned ch = 0; ch < MICROKIT_MAX_CHANNELS; ch++)
        if (quiet_until[ch] && (!next || quiet_until[ch] < next))
            next = quiet_until[ch];
    struct itimerspec its = {0};
    its.it_value.tv_sec = (time_t)(next / 1000000000u);
    its.it_value.tv_nsec = (long)(next % 1000000000u);
    if (next && !its.it_value.tv_sec && !its.it_value.tv_nsec)
        its.it_value.tv_nsec = 1;
    timerfd_settime(quiet_fd, TFD_TIMER_ABSTIME, &its, NULL);
}

void devmux_channel_quiet(microkit_channel ch, uint64_t ns)
{
    if (ch >= MICROKIT_MAX_CHANNELS || chans[ch].recv_fd < 0 || quiet_fd < 0 || !ns)
        return;
    /* Watched for nothing: the eventfd keeps counting, epoll stays quiet. */
    struct epoll_event ev = {.events = 0, .data.u32 = TAG_RECV | ch};
    if (epoll_ctl(epfd, EPOLL_CTL_MOD, chans[ch].recv_fd, &ev))
        return;
    quiet_until[ch] = devmux_now_ns() + ns;
    quiet_arm();
}

/* The quiet time of some channels is over: watch them again, so that what
 * arrived meanwhile is delivered, once. */
static void quiet_expire(void)
{
    uint64_t cnt, now = devmux_now_ns();
    (void)!read(quiet_fd, &cnt, sizeof(cnt));
    for (unsigned ch = 0; ch < MICROKIT_MAX_CHANNELS; ch++) {
        if (!quiet_until[ch] || quiet_until[ch] > now)
            continue;
        quiet_until[ch] = 0;
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = TAG_RECV | ch};
        epoll_ctl(epfd, EPOLL_CTL_MOD, chans[ch].recv_fd, &ev);
    }
    quiet_arm();
}

static void watch(int fd, uint32_t tag)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = tag};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev))
        dmx_die("epoll_ctl: %s", strerror(errno));
}

static void unwatch_close(int *fd)
{
    if (*fd >= 0) {
        epoll_ctl(epfd, EPOLL_CTL_DEL, *fd, NULL);
        close(*fd);
        *fd = -1;
    }
}

/* Reads one control message, taking a descriptor along if one is attached.
 * Returns 1 with a message, 0 if none is waiting, -1 if the supervisor is
 * gone (then there is nothing left to do but exit). */
static int ctrl_read(struct dmx_ctrl *m, int *fd, bool block)
{
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct iovec iov = {m, sizeof(*m)};
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
    *fd = -1;
    ssize_t n = recvmsg(DMX_FD_CTRL, &mh, (block ? 0 : MSG_DONTWAIT) | MSG_CMSG_CLOEXEC);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    if (n <= 0)
        return -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
            memcpy(fd, CMSG_DATA(c), sizeof(int));
    return n == sizeof(*m) ? 1 : 0;
}

/* A new call socket takes effect at once, even inside a ppcall.  Everything
 * else waits in `deferred` for the loop, so entry points never nest and a
 * serve socket is never swapped under a call being served.  While the queue
 * is full, messages stay in the socket: nothing is dropped, and the loop
 * comes back for them (the descriptor stays readable). */
/* The deferred list is full: a handler has run for long (init, a loop of
 * protected calls) while a peer crash-looped.  Keep only the newest
 * message of each kind per channel, in their order: a peer that faulted
 * and came back a hundred times is, to the handler, one that did so once,
 * and there are fewer kinds times channels than places in the list.  A
 * call socket behind them must never wait for the handler to return. */
static void deferred_compact(void)
{
    for (unsigned i = ndeferred; i-- > 0;) {
        bool newer = false;
        for (unsigned j = i + 1; j < ndeferred && !newer; j++)
            newer = deferred[j].type == deferred[i].type && deferred[j].ch == deferred[i].ch &&
                    deferred[j].type != 0;
        if (newer) {
            if (deferred[i].type == DMX_CTRL_SERVE_FD)
                close((int)deferred[i].a);
            deferred[i].type = 0; /* dropped (types start at 1) */
        }
    }
    unsigned k = 0;
    for (unsigned i = 0; i < ndeferred; i++)
        if (deferred[i].type)
            deferred[k++] = deferred[i];
    ndeferred = k;
}

static void ctrl_drain(void)
{
    struct dmx_ctrl m;
    int fd;
    if (ndeferred == sizeof(deferred) / sizeof(deferred[0]))
        deferred_compact();
    while (ndeferred < sizeof(deferred) / sizeof(deferred[0])) {
        int r = ctrl_read(&m, &fd, false);
        if (r < 0)
            _exit(0); /* supervisor gone: so are we */
        if (r == 0)
            return;
        if (m.type == DMX_CTRL_CALL_FD && m.ch < MICROKIT_MAX_CHANNELS && fd >= 0) {
            if (chans[m.ch].call_fd >= 0)
                close(chans[m.ch].call_fd);
            chans[m.ch].call_fd = fd;
            continue;
        }
        if (m.type == DMX_CTRL_SERVE_FD) {
            if (fd < 0)
                continue;
            m.a = fd;
        } else if (fd >= 0) {
            close(fd);
        }
        deferred[ndeferred++] = m;
        if (ndeferred == sizeof(deferred) / sizeof(deferred[0]))
            deferred_compact();
    }
}

static struct devmux_fault_info fault_info(const struct dmx_ctrl *m)
{
    struct devmux_fault_info fi = {
        .signal = m->a, .exit_status = m->b, .restarting = (m->flags & DMX_CTRL_F_RESTARTING) != 0};
    return fi;
}

static void run_deferred(void)
{
    for (unsigned i = 0; i < ndeferred; i++) {
        struct dmx_ctrl *m = &deferred[i];
        if (m->ch >= MICROKIT_MAX_CHANNELS) {
            if (m->type == DMX_CTRL_SERVE_FD)
                close(m->a);
            continue;
        }
        if (m->type == DMX_CTRL_PEER_FAULT && peer_fault) {
            struct devmux_fault_info fi = fault_info(m);
            peer_fault(m->ch, &fi);
        } else if (m->type == DMX_CTRL_PEER_READY && peer_ready) {
            peer_ready(m->ch);
        } else if (m->type == DMX_CTRL_SERVE_FD) {
            unwatch_close(&chans[m->ch].serve_fd);
            chans[m->ch].serve_fd = m->a;
            watch(m->a, TAG_SERVE | m->ch);
        }
    }
    ndeferred = 0;
}

static microkit_msginfo fault_reply(microkit_channel ch)
{
    dmx_stats->ch[ch].ppc_faults++;
    return microkit_msginfo_new(DEVMUX_PPC_FAULT, 0);
}

microkit_msginfo microkit_ppcall(microkit_channel ch, microkit_msginfo msginfo)
{
    if (!chan_ok(ch) || dmx_boot->channels[ch].call_fd < 0) {
        devmux_log("ppcall on channel %u: this component may not call on it (needs pp: true)", ch);
        return microkit_msginfo_new(DEVMUX_PPC_FAULT, 0);
    }
    ctrl_drain();
    struct chan *c = &chans[ch];
    if (c->call_fd < 0)
        return fault_reply(ch);
    struct dmx_ppc_msg msg;
    unsigned count = microkit_msginfo_get_count(msginfo);
    if (count > MICROKIT_MAX_MRS)
        count = MICROKIT_MAX_MRS;
    msg.msginfo = msginfo;
    memcpy(msg.mr, mrs, count * sizeof(uint64_t));
    size_t len = sizeof(uint64_t) * (1 + count);
    if (send(c->call_fd, &msg, len, MSG_NOSIGNAL) != (ssize_t)len)
        goto dead;
    ssize_t n;
    do
        n = recv(c->call_fd, &msg, sizeof(msg), 0);
    while (n < 0 && errno == EINTR);
    if (n <= 0)
        goto dead;
    count = microkit_msginfo_get_count(msg.msginfo);
    if ((size_t)n < sizeof(uint64_t) || count > MICROKIT_MAX_MRS ||
        (size_t)n != sizeof(uint64_t) * (1 + count)) {
        devmux_log("ppcall on channel %u: malformed reply (%zd bytes)", ch, n);
        return fault_reply(ch);
    }
    memcpy(mrs, msg.mr, count * sizeof(uint64_t));
    dmx_stats->ch[ch].ppc_made++;
    return msg.msginfo;
dead:
    /* The callee died: this socket is finished.  The supervisor sends a fresh
     * one when it restarts the callee. */
    close(c->call_fd);
    c->call_fd = -1;
    return fault_reply(ch);
}

static void serve(microkit_channel ch)
{
    struct chan *c = &chans[ch];
    struct dmx_ppc_msg msg;
    ssize_t n = recv(c->serve_fd, &msg, sizeof(msg), MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        /* Caller gone; its replacement connection arrives by control message. */
        unwatch_close(&c->serve_fd);
        return;
    }
    unsigned count = microkit_msginfo_get_count(msg.msginfo);
    microkit_msginfo reply;
    if ((size_t)n < sizeof(uint64_t) || (size_t)n != sizeof(uint64_t) * (1 + count)) {
        /* A caller is not trusted either: answer garbage with a fault. */
        devmux_log("protected call on channel %u: malformed message (%zd bytes)", ch, n);
        reply = microkit_msginfo_new(DEVMUX_PPC_FAULT, 0);
    } else {
        memcpy(mrs, msg.mr, count * sizeof(uint64_t));
        memset(mrs + count, 0, (MICROKIT_MAX_MRS - count) * sizeof(uint64_t));
        dmx_stats->ch[ch].ppc_served++;
        reply = protected ? protected(ch, msg.msginfo) : microkit_msginfo_new(DEVMUX_PPC_FAULT, 0);
    }
    count = microkit_msginfo_get_count(reply);
    if (count > MICROKIT_MAX_MRS)
        count = MICROKIT_MAX_MRS;
    msg.msginfo = reply;
    memcpy(msg.mr, mrs, count * sizeof(uint64_t));
    send(c->serve_fd, &msg, sizeof(uint64_t) * (1 + count), MSG_NOSIGNAL | MSG_DONTWAIT);
}

int main(void)
{
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0)
        dmx_die("epoll_create1: %s", strerror(errno));
    for (unsigned ch = 0; ch < MICROKIT_MAX_CHANNELS; ch++) {
        const struct dmx_boot_channel *bc = &dmx_boot->channels[ch];
        chans[ch] = (struct chan){-1, -1, -1, -1};
        if (!bc->present)
            continue;
        chans[ch].recv_fd = bc->recv_fd;
        chans[ch].send_fd = bc->send_fd;
        chans[ch].call_fd = bc->call_fd;
        chans[ch].serve_fd = bc->serve_fd;
        if (bc->recv_fd >= 0)
            watch(bc->recv_fd, TAG_RECV | ch);
        if (bc->serve_fd >= 0)
            watch(bc->serve_fd, TAG_SERVE | ch);
    }
    watch(DMX_FD_CTRL, TAG_CTRL);
    for (unsigned ch = 0; ch < MICROKIT_MAX_CHANNELS; ch++)
        irq_fd[ch] = -1;
    for (uint32_t i = 0; i < dmx_boot->ndevices && i < DMX_MAX_DEVICES; i++) {
        const struct dmx_boot_device *d = &dmx_boot->devices[i];
        int fd = d->irq_fd >= 0 ? d->irq_fd : d->fd;
        if (d->irq < MICROKIT_MAX_CHANNELS && fd >= 0) {
            irq_fd[d->irq] = fd;
            irq_counted[d->irq] = d->irq_fd >= 0;
            irq_arm(d->irq, EPOLL_CTL_ADD);
        }
    }
    timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (timer_fd < 0)
        dmx_die("timerfd_create: %s", strerror(errno));
    watch(timer_fd, TAG_TIMER);
    quiet_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (quiet_fd < 0)
        dmx_die("timerfd_create: %s", strerror(errno));
    watch(quiet_fd, TAG_QUIET);

    init();
    struct dmx_ctrl ready = {.type = DMX_CTRL_READY};
    send(DMX_FD_CTRL, &ready, sizeof(ready), MSG_NOSIGNAL);

    struct epoll_event evs[64];
    for (;;) {
        run_deferred();
        int n = epoll_wait(epfd, evs, 64, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            dmx_die("epoll_wait: %s", strerror(errno));
        /* Control messages first: a peer's fault must be seen before a
         * notification its restarted incarnation sent, which the same batch
         * may hold (the supervisor reports the fault long before the
         * restart, so the message is already waiting). */
        for (int i = 0; i < n; i++)
            if ((evs[i].data.u32 & 0xf00u) == TAG_CTRL) {
                ctrl_drain();
                run_deferred();
            }
        for (int i = 0; i < n; i++) {
            uint32_t tag = evs[i].data.u32 & 0xf00u, ch = evs[i].data.u32 & 0xffu;
            dmx_stats->events++;
            if (tag == TAG_RECV) {
                uint64_t cnt;
                if (read(chans[ch].recv_fd, &cnt, sizeof(cnt)) == sizeof(cnt)) {
                    dmx_stats->ch[ch].notify_recv += cnt;
                    if (notified)
                        notified(ch);
                }
            } else if (tag == TAG_SERVE) {
                if (chans[ch].serve_fd >= 0)
                    serve(ch);
            } else if (tag == TAG_IRQ) {
                uint64_t cnt;
                /* Interrupts that came while this one was pending merge
                 * into it, as on a real line. */
                if (irq_counted[ch] && read(irq_fd[ch], &cnt, sizeof(cnt)) != sizeof(cnt)) {
                    irq_arm(ch, EPOLL_CTL_MOD);
                    continue;
                }
                if (notified)
                    notified(ch);
            } else if (tag == TAG_QUIET) {
                quiet_expire();
            } else if (tag == TAG_TIMER) {
                uint64_t cnt;
                if (read(timer_fd, &cnt, sizeof(cnt)) == sizeof(cnt) && notified)
                    notified(DEVMUX_TIMER_CHANNEL);
            }
        }
    }
}
