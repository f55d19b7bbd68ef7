/*
 * The supervisor's event loop: component logs and control messages, child
 * exits and the fault policy, restart back-off, the control socket, and an
 * orderly shutdown on SIGINT/SIGTERM that leaves nothing behind.
 */
#include "supervisor/supervisor.h"

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <seccomp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "supervisor/machine.h"

#define LOG_LINES_PER_SEC 200
#define EVENT_READS       64 /* reads per event from one component's pipe or socket */
/* What one component's output and control messages may cost the supervisor
 * per second.  A read is charged a fixed amount on top of its bytes, so a
 * storm of tiny writes costs no more syscalls than one of big ones; a
 * component that stays within LOG_LINES_PER_SEC lines of ordinary length is
 * never held back.  Beyond it, its writes block in its own pipe and its
 * sends fail with EAGAIN: its own problem. */
#define LOG_BYTES_PER_SEC (256u * 1024)
#define LOG_READ_COST     512u
#define CTRL_MSGS_PER_SEC 500u
#define THROTTLE_TICK_MS  100
/* The supervisor's own lines about one component (start, fault, policy). */
#define SUP_LINES_PER_WINDOW 30
#define SUP_WINDOW_NS        (10ull * 1000000000ull)
#define STABLE_NS            (10ull * 1000000000ull) /* up this long: not a crash loop */
#define STOP_GRACE_NS        (2ull * 1000000000ull)

static void sup_vlog(const char *fmt, va_list ap);

void sup_log(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sup_vlog(fmt, ap);
    va_end(ap);
}

static void sup_vlog(const char *fmt, va_list ap)
{
    char buf[1024];
    vsnprintf(buf, sizeof(buf), fmt, ap);
    fprintf(stderr, "devmux: %s\n", buf);
}

static void sup_comp_flush(struct comp *c)
{
    if (c->sup_dropped)
        sup_log("(%u lines about '%s' suppressed: over %d per %llu s)", c->sup_dropped,
                c->def->name, SUP_LINES_PER_WINDOW, SUP_WINDOW_NS / 1000000000ull);
    c->sup_dropped = 0;
}

void sup_comp_log(struct comp *c, const char *fmt, ...)
{
    uint64_t now = now_ns();
    if (now - c->sup_window_ns > SUP_WINDOW_NS) {
        sup_comp_flush(c);
        c->sup_window_ns = now;
        c->sup_lines = 0;
    }
    /* The first lines of each window get through: they say what happens. */
    if (++c->sup_lines > SUP_LINES_PER_WINDOW) {
        c->sup_dropped++;
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    sup_vlog(fmt, ap);
    va_end(ap);
}

const char *comp_state_name(enum comp_state st)
{
    switch (st) {
    case COMP_STARTING:
        return "starting";
    case COMP_RUNNING:
        return "running";
    case COMP_BACKOFF:
        return "backoff";
    case COMP_HALTED:
        return "halted";
    case COMP_STOPPED:
        return "stopped";
    }
    return "?";
}

int sup_send_ctrl(struct comp *c, const struct dmx_ctrl *m, int fd)
{
    if (c->ctrl_fd < 0)
        return -1;
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct iovec iov = {(void *)m, sizeof(*m)};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (fd >= 0) {
        mh.msg_control = u.buf;
        mh.msg_controllen = sizeof(u.buf);
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &fd, sizeof(int));
    }
    if (sendmsg(c->ctrl_fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
        /* A full buffer means a busy component; the caller retries. */
        if (errno != EAGAIN)
            sup_comp_log(c, "cannot reach '%s' on its control socket: %s", c->def->name,
                         strerror(errno));
        return -1;
    }
    return 0;
}

void sup_arm_retry(struct sup *s)
{
    struct itimerspec its = {.it_value = {0, 50 * 1000000}};
    timerfd_settime(s->retry_fd, 0, &its, NULL);
}

void sup_epoll_add(struct sup *s, int fd, uint32_t tag)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = tag};
    if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev))
        sup_log("epoll_ctl: %s", strerror(errno));
}

static void close_fd(struct sup *s, int *fd)
{
    if (*fd >= 0) {
        epoll_ctl(s->epfd, EPOLL_CTL_DEL, *fd, NULL);
        close(*fd);
        *fd = -1;
    }
}

/* ---- what reading a component may cost --------------------------------- */

/* Refills b at rate per second (at most one second's worth) and says how
 * much it holds. */
static uint64_t budget_fill(struct read_budget *b, uint64_t rate)
{
    uint64_t now = now_ns(), dt = now - b->last_ns;
    if (!b->last_ns || dt > 1000000000ull)
        dt = 1000000000ull;
    b->tokens += dt * rate / 1000000000ull;
    if (b->tokens > rate)
        b->tokens = rate;
    b->last_ns = now;
    return b->tokens;
}

static void budget_take(struct read_budget *b, uint64_t n)
{
    b->tokens = b->tokens > n ? b->tokens - n : 0;
}

static void watch(struct sup *s, int fd, uint32_t tag, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.u32 = tag};
    if (fd >= 0 && epoll_ctl(s->epfd, EPOLL_CTL_MOD, fd, &ev))
        sup_log("epoll_ctl: %s", strerror(errno));
}

/* Stops watching fd until the throttle timer finds b refilled.  (Hang-up is
 * still reported: a dead component's last bytes are few and drained.) */
static void budget_pause(struct sup *s, struct read_budget *b, int fd, uint32_t tag)
{
    if (b->paused)
        return;
    b->paused = true;
    b->throttled++;
    watch(s, fd, tag, 0);
    if (!s->throttle_armed) {
        struct itimerspec its = {.it_value = {0, THROTTLE_TICK_MS * 1000000}};
        timerfd_settime(s->throttle_fd, 0, &its, NULL);
        s->throttle_armed = true;
    }
}

static void budget_reset(struct read_budget *b)
{
    b->paused = false;
    b->last_ns = 0; /* a fresh start gets a full second's budget */
    b->tokens = 0;
}

static void on_throttle_timer(struct sup *s)
{
    uint64_t x;
    if (read(s->throttle_fd, &x, sizeof(x)) != sizeof(x))
        return;
    s->throttle_armed = false;
    bool again = false;
    for (size_t i = 0; i < s->sys->ncomps; i++) {
        struct comp *c = &s->comps[i];
        struct {
            struct read_budget *b;
            int fd;
            uint32_t tag, rate, min;
        } w[2] = {
            {&c->log_budget, c->log_fd, EV_LOG | (uint32_t)i, LOG_BYTES_PER_SEC,
             LOG_READ_COST + sizeof(c->logbuf)},
            {&c->ctrl_budget, c->ctrl_fd, EV_CTRL | (uint32_t)i, CTRL_MSGS_PER_SEC, 1},
        };
        for (int k = 0; k < 2; k++) {
            if (!w[k].b->paused)
                continue;
            if (w[k].fd < 0) {
                w[k].b->paused = false;
            } else if (budget_fill(w[k].b, w[k].rate) >= w[k].min) {
                w[k].b->paused = false;
                watch(s, w[k].fd, w[k].tag, EPOLLIN);
            } else {
                again = true;
            }
        }
    }
    if (again) {
        struct itimerspec its = {.it_value = {0, THROTTLE_TICK_MS * 1000000}};
        timerfd_settime(s->throttle_fd, 0, &its, NULL);
        s->throttle_armed = true;
    }
}

/* ---- component output -------------------------------------------------- */

static void emit_line(struct comp *c, const char *line, size_t len)
{
    uint64_t now = now_ns();
    if (now - c->log_window_ns > 1000000000ull) {
        if (c->log_dropped)
            printf("[%s] (%u lines suppressed: over %d lines/s)\n", c->def->name, c->log_dropped,
                   LOG_LINES_PER_SEC);
        c->log_window_ns = now;
        c->log_lines = c->log_dropped = 0;
    }
    if (++c->log_lines > LOG_LINES_PER_SEC) {
        c->log_dropped++;
        return;
    }
    /* A component's bytes must not forge supervisor lines or drive the
     * administrator's terminal: control characters become '?'. */
    char clean[sizeof(c->logbuf)];
    if (len > sizeof(clean))
        len = sizeof(clean);
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)line[i];
        clean[i] = (ch < 0x20 && ch != '\t') || ch == 0x7f ? '?' : (char)ch;
    }
    printf("[%s] %.*s\n", c->def->name, (int)len, clean);
    fflush(stdout);
}

/* Reads at most `rounds` chunks, so a component that writes without pause
 * cannot keep the supervisor in one event (epoll reports the rest again),
 * and, when budgeted, only what its log budget allows.  Returns false at
 * end of file. */
static bool read_log(struct sup *s, struct comp *c, unsigned rounds, bool budgeted)
{
    struct read_budget *b = &c->log_budget;
    if (budgeted)
        budget_fill(b, LOG_BYTES_PER_SEC);
    while (rounds--) {
        size_t want = sizeof(c->logbuf) - c->loglen;
        if (budgeted) {
            if (b->tokens <= LOG_READ_COST) {
                budget_pause(s, b, c->log_fd, EV_LOG | (uint32_t)c->idx);
                return true;
            }
            if (want > b->tokens - LOG_READ_COST)
                want = (size_t)(b->tokens - LOG_READ_COST);
        }
        ssize_t n = read(c->log_fd, c->logbuf + c->loglen, want);
        if (budgeted)
            budget_take(b, LOG_READ_COST + (n > 0 ? (uint64_t)n : 0));
        if (n <= 0)
            return n < 0;
        c->loglen += (size_t)n;
        char *start = c->logbuf, *nl;
        while ((nl = memchr(start, '\n', c->loglen - (size_t)(start - c->logbuf)))) {
            emit_line(c, start, (size_t)(nl - start));
            start = nl + 1;
        }
        c->loglen -= (size_t)(start - c->logbuf);
        memmove(c->logbuf, start, c->loglen);
        if (c->loglen == sizeof(c->logbuf)) { /* an overlong line: cut it */
            emit_line(c, c->logbuf, c->loglen);
            c->loglen = 0;
        }
    }
    return true;
}

/* ---- control messages from components ---------------------------------- */

static void tell_peers(struct sup *s, struct comp *c, uint32_t type, int sig, int status,
                       uint32_t flags)
{
    const struct sdf_system *sys = s->sys;
    for (size_t i = 0; i < sys->nchannels; i++)
        for (int e = 0; e < 2; e++) {
            if (sys->channels[i].end[e].comp != c->idx)
                continue;
            struct comp *peer = &s->comps[sys->channels[i].end[1 - e].comp];
            struct dmx_ctrl m = {.type = type,
                                 .ch = sys->channels[i].end[1 - e].id,
                                 .a = sig,
                                 .b = status,
                                 .flags = flags};
            sup_send_ctrl(peer, &m, -1);
        }
}

/* At most `rounds` messages, and when budgeted only as many as its control
 * budget allows, for the same reasons as read_log.  Returns false when the
 * component's end is closed. */
static bool read_ctrl(struct sup *s, struct comp *c, unsigned rounds, bool budgeted)
{
    struct dmx_ctrl m;
    ssize_t n = -1;
    struct read_budget *b = &c->ctrl_budget;
    if (budgeted)
        budget_fill(b, CTRL_MSGS_PER_SEC);
    while (rounds--) {
        if (budgeted && !b->tokens) {
            budget_pause(s, b, c->ctrl_fd, EV_CTRL | (uint32_t)c->idx);
            return true;
        }
        if ((n = recv(c->ctrl_fd, &m, sizeof(m), MSG_DONTWAIT)) <= 0)
            break;
        if (budgeted)
            budget_take(b, 1);
        if (n != sizeof(m))
            continue;
        if (m.type == DMX_CTRL_READY && c->state == COMP_STARTING) {
            c->state = COMP_RUNNING;
            tell_peers(s, c, DMX_CTRL_PEER_READY, 0, 0, 0);
        } else if (m.type == DMX_CTRL_SYSCALL) {
            c->syscall_nr = m.a;
        }
    }
    return n != 0;
}

/* ---- faults ------------------------------------------------------------ */

static void describe_exit(struct sup *s, struct comp *c, int status)
{
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        if (sig == SIGKILL && sup_limits_over_quota(s, c)) {
            /* its group's own OOM killer: the host's never chose it */
            snprintf(c->last_fault, sizeof(c->last_fault),
                     "killed by signal 9 (KILL): over its memory quota of %.1f MiB (%.1f MiB "
                     "private + %.1f MiB regions)",
                     (double)c->lim.quota / (1 << 20), (double)c->lim.eff.memory / (1 << 20),
                     (double)c->lim.regions / (1 << 20));
            return;
        }
        if (sig == SIGSYS && c->syscall_nr >= 0) {
            char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, c->syscall_nr);
            snprintf(c->last_fault, sizeof(c->last_fault),
                     "killed by the sandbox: forbidden system call %s (%d)", name ? name : "?",
                     c->syscall_nr);
            free(name);
        } else {
            snprintf(c->last_fault, sizeof(c->last_fault), "killed by signal %d (%s)", sig,
                     sigabbrev_np(sig) ? sigabbrev_np(sig) : "?");
        }
    } else {
        int code = WEXITSTATUS(status);
        snprintf(c->last_fault, sizeof(c->last_fault), "exited with status %d%s", code,
                 code == 120   ? " (runtime could not start it)"
                 : code == 127 ? " (could not be executed)"
                               : "");
    }
}

static void arm_timer(struct comp *c, uint64_t delay_ms)
{
    struct itimerspec its = {0};
    if (delay_ms == 0)
        delay_ms = 1;
    its.it_value.tv_sec = (time_t)(delay_ms / 1000);
    its.it_value.tv_nsec = (long)(delay_ms % 1000) * 1000000;
    timerfd_settime(c->timer_fd, 0, &its, NULL);
}

void sup_shutdown(struct sup *s, int code, const char *why)
{
    if (s->stopping)
        return;
    sup_log("shutting down: %s", why);
    s->stopping = true;
    s->exit_code = code;
    s->stop_deadline_ns = now_ns() + STOP_GRACE_NS;
    for (size_t i = 0; i < s->sys->ncomps; i++) {
        struct comp *c = &s->comps[i];
        if (c->pid > 0)
            kill(-c->pid, SIGTERM);
        else
            c->state = COMP_STOPPED;
    }
}

static void on_exit_status(struct sup *s, struct comp *c, int status)
{
    /* Whatever it said last still counts: drain output and control. */
    if (c->log_fd >= 0)
        read_log(s, c, UINT_MAX, false); /* it is dead: what is left is finite */
    if (c->loglen) {
        emit_line(c, c->logbuf, c->loglen);
        c->loglen = 0;
    }
    if (c->ctrl_fd >= 0)
        read_ctrl(s, c, UINT_MAX, false);
    close_fd(s, &c->log_fd);
    close_fd(s, &c->ctrl_fd);
    c->pid = 0;
    sup_machine_comp_exited(s, c);
    describe_exit(s, c, status);
    int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 0;

    if (s->stopping) {
        c->state = COMP_STOPPED;
        return;
    }
    sup_comp_log(c, "component '%s' %s", c->def->name, c->last_fault);
    if (c->restart_requested) {
        c->restart_requested = false;
        c->state = COMP_BACKOFF;
        tell_peers(s, c, DMX_CTRL_PEER_FAULT, sig, code, DMX_CTRL_F_RESTARTING);
        arm_timer(c, 0);
        return;
    }
    switch (c->def->fault) {
    case SDF_FAULT_RESTART: {
        if (now_ns() - c->started_ns > STABLE_NS)
            c->crash_streak = 0;
        unsigned shift = c->crash_streak < 20 ? c->crash_streak : 20;
        uint64_t delay = (uint64_t)c->def->backoff_min_ms << shift;
        if (delay > c->def->backoff_max_ms)
            delay = c->def->backoff_max_ms;
        c->crash_streak++;
        c->state = COMP_BACKOFF;
        tell_peers(s, c, DMX_CTRL_PEER_FAULT, sig, code, DMX_CTRL_F_RESTARTING);
        sup_comp_log(c, "fault policy of '%s': restart in %llu ms", c->def->name,
                     (unsigned long long)delay);
        arm_timer(c, delay);
        break;
    }
    case SDF_FAULT_HALT:
        c->state = COMP_HALTED;
        tell_peers(s, c, DMX_CTRL_PEER_FAULT, sig, code, 0);
        sup_log("fault policy of '%s': halt; the rest of the system keeps running", c->def->name);
        break;
    case SDF_FAULT_SHUTDOWN: {
        c->state = COMP_STOPPED;
        char why[320];
        snprintf(why, sizeof(why), "fault policy of '%s' is shutdown", c->def->name);
        sup_shutdown(s, 1, why);
        break;
    }
    }
}

static void reap(struct sup *s)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        if (sup_machine_reaped(s, pid, status))
            continue;
        for (size_t i = 0; i < s->sys->ncomps; i++)
            if (s->comps[i].pid == pid)
                on_exit_status(s, &s->comps[i], status);
    }
}

static int start(struct sup *s, struct comp *c)
{
    if (sup_spawn(s, c))
        return -1;
    budget_reset(&c->log_budget);
    budget_reset(&c->ctrl_budget);
    sup_epoll_add(s, c->log_fd, EV_LOG | (uint32_t)c->idx);
    sup_epoll_add(s, c->ctrl_fd, EV_CTRL | (uint32_t)c->idx);
    return 0;
}

int sup_restart(struct sup *s, struct comp *c, const char *why)
{
    if (s->stopping)
        return -1;
    sup_comp_log(c, "restarting '%s': %s", c->def->name, why);
    c->crash_streak = 0;
    if (c->pid > 0) {
        /* Killed on request: on_exit_status runs the restart policy as for
         * any fault, but without back-off, and peers are told. */
        c->restart_requested = true;
        kill(-c->pid, SIGKILL);
        return 0;
    }
    c->restarts++;
    struct itimerspec off = {0};
    timerfd_settime(c->timer_fd, 0, &off, NULL);
    return start(s, c);
}

static void on_timer(struct sup *s, struct comp *c)
{
    uint64_t x;
    if (read(c->timer_fd, &x, sizeof(x)) != sizeof(x) || c->state != COMP_BACKOFF || s->stopping ||
        c->pid > 0)
        return;
    c->restarts++;
    if (start(s, c))
        arm_timer(c, c->def->backoff_max_ms);
}

/* ---- setup and teardown ------------------------------------------------ */

static int setup(struct sup *s, const char *ctl_path)
{
    const struct sdf_system *sys = s->sys;
    const char *base = getenv("DEVMUX_UID_BASE");
    s->uid_base = 200000;
    if (base) {
        /* Component uids must never include root or a system account. */
        uint64_t v;
        if (!sdf_parse_size(base, &v) || v < 10000 || v + sys->ncomps > 0x7fffffffUL) {
            sup_log("DEVMUX_UID_BASE='%s' is not usable; expected a number from 10000 to %lu", base,
                    0x7fffffffUL - (unsigned long)sys->ncomps);
            return -1;
        }
        s->uid_base = (uid_t)v;
    }
    s->devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    s->sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (s->devnull < 0 || s->epfd < 0 || s->sigfd < 0) {
        sup_log("setup: %s", strerror(errno));
        return -1;
    }
    sup_epoll_add(s, s->sigfd, EV_SIGNAL);
    s->retry_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    if (s->retry_fd < 0) {
        sup_log("setup: %s", strerror(errno));
        return -1;
    }
    sup_epoll_add(s, s->retry_fd, EV_RETRY);
    s->throttle_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    if (s->throttle_fd < 0) {
        sup_log("setup: %s", strerror(errno));
        return -1;
    }
    sup_epoll_add(s, s->throttle_fd, EV_THROTTLE);

    s->comps = xcalloc(sys->ncomps, sizeof(*s->comps));
    for (size_t i = 0; i < sys->ncomps; i++) {
        struct comp *c = &s->comps[i];
        c->def = &sys->comps[i];
        c->idx = (int)i;
        c->log_fd = c->ctrl_fd = -1;
        for (size_t k = 0; k < SDF_MAX_DEVICES; k++)
            c->dev_fd[k] = -1;
        c->state = COMP_STOPPED;
        snprintf(c->last_fault, sizeof(c->last_fault), "-");
        c->stats_fd = memfd_create("devmux:stats", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        c->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
        /* Sealed: a component truncating its page would make our next read
         * of it a SIGBUS. */
        if (c->stats_fd < 0 || c->timer_fd < 0 || ftruncate(c->stats_fd, sizeof(*c->stats)) ||
            fcntl(c->stats_fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)) {
            sup_log("setup: %s", strerror(errno));
            return -1;
        }
        c->stats = mmap(NULL, sizeof(*c->stats), PROT_READ, MAP_SHARED, c->stats_fd, 0);
        if (c->stats == MAP_FAILED) {
            c->stats = NULL;
            sup_log("setup: mmap: %s", strerror(errno));
            return -1;
        }
        sup_epoll_add(s, c->timer_fd, EV_TIMER | (uint32_t)i);
    }
    /* Machine state first, then the regions (device-visible ones become
     * memory modules of their machine), then QEMU, before any component:
     * drivers find their devices assigned when they start. */
    if (sup_create_machines(s) || sup_create_resources(s) || sup_create_devices(s) ||
        sup_limits_setup(s) || sup_start_machines(s))
        return -1;
    if (ctl_open(s, ctl_path))
        return -1;
    sup_epoll_add(s, s->ctl_fd, EV_CTL);
    return 0;
}

static void teardown(struct sup *s)
{
    ctl_close(s);
    for (size_t i = 0; s->comps && i < s->sys->ncomps; i++) {
        struct comp *c = &s->comps[i];
        sup_comp_flush(c);
        close_fd(s, &c->log_fd);
        close_fd(s, &c->ctrl_fd);
        if (c->stats)
            munmap(c->stats, sizeof(*c->stats));
        if (c->stats_fd >= 0)
            close(c->stats_fd);
        if (c->timer_fd >= 0)
            close(c->timer_fd);
    }
    sup_free_machines(s);
    sup_limits_teardown(s); /* every process is gone: the groups are empty */
    sup_free_devices(s);
    sup_free_resources(s);
    free(s->comps);
    if (s->epfd >= 0)
        close(s->epfd);
    if (s->sigfd >= 0)
        close(s->sigfd);
    if (s->retry_fd >= 0)
        close(s->retry_fd);
    if (s->throttle_fd >= 0)
        close(s->throttle_fd);
    if (s->devnull >= 0)
        close(s->devnull);
}

static bool all_down(const struct sup *s)
{
    for (size_t i = 0; i < s->sys->ncomps; i++)
        if (s->comps[i].pid > 0)
            return false;
    return true;
}

static void on_signal(struct sup *s)
{
    struct signalfd_siginfo si;
    while (read(s->sigfd, &si, sizeof(si)) == sizeof(si)) {
        if (si.ssi_signo == SIGCHLD) {
            reap(s);
        } else {
            char why[64];
            snprintf(why, sizeof(why), "received %s", sigabbrev_np((int)si.ssi_signo));
            sup_shutdown(s, 0, why);
        }
    }
}

int devmux_run(const char *file, const char *ctl_path, const struct sdf_options *opt)
{
    struct sdf_errors errs = {0};
    struct sdf_system *sys = sdf_load(file, opt, &errs);
    if (!sys) {
        sdf_errors_print(&errs, file, stderr);
        sdf_errors_free(&errs);
        return 2;
    }
    struct sup s = {.sys = sys,
                    .epfd = -1,
                    .sigfd = -1,
                    .ctl_fd = -1,
                    .devnull = -1,
                    .retry_fd = -1,
                    .throttle_fd = -1};
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (setup(&s, ctl_path)) {
        teardown(&s);
        sdf_free(sys);
        return 1;
    }
    sup_log("system '%s': %zu components, %zu regions, %zu channels; control socket %s", sys->name,
            sys->ncomps, sys->nregions, sys->nchannels, s.ctl_path);
    for (size_t i = 0; i < sys->ncomps && !s.stopping; i++)
        if (start(&s, &s.comps[i]))
            sup_shutdown(&s, 1, "a component could not be started");

    struct epoll_event evs[32];
    for (;;) {
        if (s.stopping) {
            if (all_down(&s))
                break;
            if (now_ns() > s.stop_deadline_ns) {
                for (size_t i = 0; i < sys->ncomps; i++)
                    if (s.comps[i].pid > 0)
                        kill(-s.comps[i].pid, SIGKILL);
                s.stop_deadline_ns = UINT64_MAX;
            }
        }
        int n = epoll_wait(s.epfd, evs, 32, s.stopping ? 50 : -1);
        if (n < 0 && errno != EINTR) {
            sup_log("epoll_wait: %s", strerror(errno));
            break;
        }
        for (int i = 0; i < n; i++) {
            uint32_t kind = evs[i].data.u32 & EV_KIND, idx = evs[i].data.u32 & ~EV_KIND;
            struct comp *c = idx < sys->ncomps ? &s.comps[idx] : NULL;
            switch (kind) {
            case EV_SIGNAL:
                on_signal(&s);
                break;
            case EV_CTL:
                ctl_accept(&s);
                break;
            /* A hang-up (its end closed) is drained whole: what a pipe or a
             * socket buffer holds is finite, and budgets do not apply. */
            case EV_LOG:
                if (c && c->log_fd >= 0 &&
                    !read_log(&s, c, EVENT_READS, !(evs[i].events & (EPOLLHUP | EPOLLERR))))
                    close_fd(&s, &c->log_fd);
                break;
            case EV_CTRL:
                if (c && c->ctrl_fd >= 0 &&
                    !read_ctrl(&s, c, EVENT_READS, !(evs[i].events & (EPOLLHUP | EPOLLERR))))
                    close_fd(&s, &c->ctrl_fd);
                break;
            case EV_THROTTLE:
                on_throttle_timer(&s);
                break;
            case EV_TIMER:
                if (c)
                    on_timer(&s, c);
                break;
            case EV_QTEST:
            case EV_QMP:
            case EV_HW:
                sup_machine_event(&s, kind, idx);
                break;
            case EV_RETRY: {
                uint64_t x;
                if (read(s.retry_fd, &x, sizeof(x)) == sizeof(x))
                    sup_retry_deliveries(&s);
                break;
            }
            }
        }
    }
    int code = s.exit_code;
    teardown(&s);
    sdf_free(sys);
    sup_log("stopped");
    return code;
}
