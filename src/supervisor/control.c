/*
 * The control socket: whoever can connect to it administers the system, so
 * it is created mode 0600 in a 0700 directory and every peer's credentials
 * are checked as well.  One request line per connection; the reply ends
 * with a line "OK" or "ERROR: why".
 */
#include "supervisor/supervisor.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/util.h"
#include "supervisor/machine.h"

#define CTL_REQUEST_NS (500ull * 1000000ull)

const char *ctl_default_dir(void)
{
    static char dir[200];
    const char *env = getenv("DEVMUX_RUNDIR");
    if (env && *env)
        snprintf(dir, sizeof(dir), "%s", env);
    else if (geteuid() == 0)
        snprintf(dir, sizeof(dir), "/run/devmux");
    else if (getenv("XDG_RUNTIME_DIR"))
        snprintf(dir, sizeof(dir), "%s/devmux", getenv("XDG_RUNTIME_DIR"));
    else
        snprintf(dir, sizeof(dir), "/tmp/devmux-%u", (unsigned)geteuid());
    return dir;
}

int ctl_open(struct sup *s, const char *path)
{
    if (path) {
        snprintf(s->ctl_path, sizeof(s->ctl_path), "%s", path);
    } else {
        const char *dir = ctl_default_dir();
        if (mkdir(dir, 0700) && errno != EEXIST) {
            sup_log("cannot create %s: %s", dir, strerror(errno));
            return -1;
        }
        snprintf(s->ctl_path, sizeof(s->ctl_path), "%s/%s.sock", dir, s->sys->name);
    }
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(s->ctl_path) >= sizeof(sa.sun_path)) {
        sup_log("control socket path too long: %s", s->ctl_path);
        return -1;
    }
    strcpy(sa.sun_path, s->ctl_path);
    s->ctl_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (s->ctl_fd < 0)
        return -1;
    /* A socket left by a supervisor that died is stale; a live one means the
     * system already runs. */
    int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
        close(probe);
        sup_log("system '%s' already runs (control socket %s answers)", s->sys->name, s->ctl_path);
        close(s->ctl_fd);
        s->ctl_fd = -1;
        s->ctl_path[0] = 0;
        return -1;
    }
    if (probe >= 0)
        close(probe);
    /* Only a stale socket is replaced; any other file is left alone. */
    struct stat st;
    if (lstat(s->ctl_path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            sup_log("refusing to replace %s: it is not a socket; expected a free path or a "
                    "stale control socket",
                    s->ctl_path);
            close(s->ctl_fd);
            s->ctl_fd = -1;
            s->ctl_path[0] = 0;
            return -1;
        }
        unlink(s->ctl_path);
    }
    /* The umask makes bind create the socket 0600 at once; a chmod by path
     * afterwards could be redirected through a symlink. */
    mode_t old = umask(0177);
    int rc = bind(s->ctl_fd, (struct sockaddr *)&sa, sizeof(sa));
    umask(old);
    if (rc || listen(s->ctl_fd, 8)) {
        sup_log("control socket %s: %s", s->ctl_path, strerror(errno));
        close(s->ctl_fd);
        s->ctl_fd = -1;
        s->ctl_path[0] = 0;
        return -1;
    }
    return 0;
}

void ctl_close(struct sup *s)
{
    if (s->ctl_fd >= 0)
        close(s->ctl_fd);
    s->ctl_fd = -1;
    if (s->ctl_path[0])
        unlink(s->ctl_path);
    s->ctl_path[0] = 0;
}

struct out {
    char *buf;
    size_t len, cap;
};

static void out(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out(struct out *o, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < o->cap - o->len) {
            o->len += (size_t)n;
            return;
        }
        o->cap = o->cap * 2 + (size_t)(n > 0 ? n : 0) + 256;
        o->buf = xrealloc(o->buf, o->cap);
    }
}

static void cmd_status(struct sup *s, struct out *o)
{
    const struct sdf_system *sys = s->sys;
    uint64_t now = now_ns();
    out(o, "system %s\n", sys->name);
    out(o, "%-16s %-9s %8s %8s %9s  %s\n", "COMPONENT", "STATE", "PID", "RESTARTS", "UPTIME",
        "LAST FAULT");
    for (size_t i = 0; i < sys->ncomps; i++) {
        const struct comp *c = &s->comps[i];
        char up[32] = "-";
        if (c->pid > 0)
            snprintf(up, sizeof(up), "%.1fs", (double)(now - c->started_ns) / 1e9);
        out(o, "%-16s %-9s %8d %8u %9s  %s\n", c->def->name, comp_state_name(c->state),
            c->pid > 0 ? c->pid : 0, c->restarts, up, c->last_fault);
        /* Its own line: LAST FAULT above is free text to the end. */
        char lim[512];
        sup_limits_status(s, &s->comps[i], lim, sizeof(lim));
        out(o, "    %s  throttled log %u ctrl %u\n", lim, c->log_budget.throttled,
            c->ctrl_budget.throttled);
        for (size_t k = 0; k < sys->nchannels; k++)
            for (int e = 0; e < 2; e++) {
                const struct sdf_end *end = &sys->channels[k].end[e];
                if (end->comp != (int)i)
                    continue;
                const struct dmx_chan_stats *cs = &c->stats->ch[end->id];
                const char *pp = s->chans[k].caller == e   ? "calls"
                                 : s->chans[k].caller >= 0 ? "serves"
                                                           : "";
                out(o,
                    "    ch %-2u -> %-14s notify sent %llu recv %llu  ppc made %llu served %llu "
                    "faults %llu %s\n",
                    end->id, sys->channels[k].end[1 - e].component,
                    (unsigned long long)cs->notify_sent, (unsigned long long)cs->notify_recv,
                    (unsigned long long)cs->ppc_made, (unsigned long long)cs->ppc_served,
                    (unsigned long long)cs->ppc_faults, pp);
            }
    }
}

static void handle(struct sup *s, int fd)
{
    struct ucred cred;
    socklen_t cl = sizeof(cred);
    struct out o = {0};
    char req[256];
    size_t len = 0;

    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) ||
        (cred.uid != 0 && cred.uid != geteuid())) {
        out(&o, "ERROR: permission denied\n");
        goto reply;
    }
    /* The administrator's tool sends one short line at once.  The whole
     * request gets one deadline: the supervisor must not be held up by a
     * client that trickles bytes while components need restarting. */
    uint64_t deadline = now_ns() + CTL_REQUEST_NS;
    bool complete = false;
    while (len < sizeof(req) - 1 && !complete) {
        uint64_t now = now_ns();
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (now >= deadline || poll(&pfd, 1, (int)((deadline - now) / 1000000 + 1)) <= 0)
            break;
        ssize_t n = recv(fd, req + len, sizeof(req) - 1 - len, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
        complete = memchr(req, '\n', len) != NULL;
    }
    req[len] = 0;
    if (!complete && len < sizeof(req) - 1) {
        out(&o,
            "ERROR: no complete request line within %llu ms; expected one line such as "
            "'status'\n",
            (unsigned long long)(CTL_REQUEST_NS / 1000000));
        goto reply;
    }
    req[strcspn(req, "\r\n")] = 0;
    char *arg = strchr(req, ' ');
    if (arg)
        *arg++ = 0;

    if (!strcmp(req, "status")) {
        cmd_status(s, &o);
        out(&o, "OK\n");
    } else if (!strcmp(req, "restart")) {
        int idx = arg ? sdf_component_index(s->sys, arg) : -1;
        if (idx < 0)
            out(&o,
                "ERROR: no component named '%s'; expected one of the names in "
                "`devmux ctl status`\n",
                arg ? arg : "");
        else if (sup_restart(s, &s->comps[idx], "requested on the control socket"))
            out(&o, "ERROR: cannot restart '%s' now (the system is stopping)\n", arg);
        else
            out(&o, "restarting %s\nOK\n", arg);
    } else if (!strcmp(req, "net")) {
        char *buf = NULL;
        size_t blen = 0;
        FILE *m = open_memstream(&buf, &blen);
        int found = m ? sup_net_report(s, arg, m) : -1;
        if (m)
            fclose(m);
        if (found > 0)
            out(&o, "%sOK\n", buf);
        else if (arg)
            out(&o, "ERROR: no network named '%s'; expected one of the system's networks\n", arg);
        else
            out(&o, "ERROR: this system has no networks\n");
        free(buf);
    } else if (!strcmp(req, "machine")) {
        /* `machine [NAME]` reports; `machine NAME add|del ...` hot-plugs. */
        char *buf = NULL;
        size_t blen = 0;
        FILE *m = open_memstream(&buf, &blen);
        if (!m) {
            out(&o, "ERROR: out of memory\n");
        } else if (arg && strchr(arg, ' ')) {
            int rc = sup_machine_hotplug(s, arg, m);
            fclose(m);
            out(&o, "%s%s", buf, rc ? "" : "OK\n");
            m = NULL;
        } else {
            int found = sup_machine_report(s, arg, m);
            fclose(m);
            m = NULL;
            if (found > 0)
                out(&o, "%sOK\n", buf);
            else if (arg)
                out(&o, "ERROR: no machine named '%s'; expected one of the system's machines\n",
                    arg);
            else
                out(&o, "ERROR: this system has no machines\n");
        }
        free(buf);
    } else if (!strcmp(req, "shutdown")) {
        out(&o, "shutting down\nOK\n");
        kill(getpid(), SIGTERM);
    } else {
        out(&o,
            "ERROR: unknown command '%s'; expected status, net [NETWORK], machine [NAME], "
            "machine NAME add|del ..., restart COMPONENT or shutdown\n",
            req);
    }
reply:
    write_all(fd, o.buf, o.len);
    free(o.buf);
}

void ctl_accept(struct sup *s)
{
    int fd;
    while ((fd = accept4(s->ctl_fd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
        handle(s, fd);
        close(fd);
    }
}
