/*
 * The system's resources, created once at start and kept across component
 * restarts: regions are sealed memfds, notifications are eventfds, and
 * protected calls run over socket pairs that are renewed whenever either
 * end restarts (so no stale request or reply survives a fault).
 */
#include "supervisor/supervisor.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/util.h"

static int make_region(const struct sdf_region *r, struct region_rt *rt)
{
    char name[80];
    snprintf(name, sizeof(name), "devmux:%s", r->name);
    rt->fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (rt->fd < 0)
        return -errno;
    if (ftruncate(rt->fd, (off_t)r->size))
        return -errno;
    /* Nobody may resize a region under a peer's mapping (that would turn its
     * next access into SIGBUS). */
    if (fcntl(rt->fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL))
        return -errno;
    /* A read-only grant needs a read-only file description: a mapping from
     * a writable one could be mprotect()ed back to writable. */
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", rt->fd);
    rt->ro_fd = open(path, O_RDONLY | O_CLOEXEC);
    return rt->ro_fd < 0 ? -errno : 0;
}

int sup_create_resources(struct sup *s)
{
    const struct sdf_system *sys = s->sys;
    s->regions = xcalloc(sys->nregions, sizeof(*s->regions));
    for (size_t i = 0; i < sys->nregions; i++) {
        s->regions[i].fd = s->regions[i].ro_fd = -1;
        const struct sdf_region *r = &sys->regions[i];
        int err = make_region(r, &s->regions[i]);
        if (err) {
            sup_log("cannot create region '%s': %s", sys->regions[i].name, strerror(-err));
            return err;
        }
    }
    s->chans = xcalloc(sys->nchannels, sizeof(*s->chans));
    for (size_t i = 0; i < sys->nchannels; i++) {
        struct chan_rt *ch = &s->chans[i];
        const struct sdf_channel *d = &sys->channels[i];
        ch->pend[0] = ch->pend[1] = -1;
        ch->caller = d->end[0].pp ? 0 : d->end[1].pp ? 1 : -1;
        for (int e = 0; e < 2; e++) {
            ch->efd[e] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
            if (ch->efd[e] < 0) {
                sup_log("cannot create a notification channel: %s", strerror(errno));
                return -errno;
            }
        }
    }
    return 0;
}

void sup_free_resources(struct sup *s)
{
    for (size_t i = 0; s->regions && i < s->sys->nregions; i++) {
        if (s->regions[i].fd >= 0)
            close(s->regions[i].fd);
        if (s->regions[i].ro_fd >= 0)
            close(s->regions[i].ro_fd);
    }
    for (size_t i = 0; s->chans && i < s->sys->nchannels; i++)
        for (int e = 0; e < 2; e++) {
            if (s->chans[i].efd[e] >= 0)
                close(s->chans[i].efd[e]);
            if (s->chans[i].pend[e] >= 0)
                close(s->chans[i].pend[e]);
        }
    free(s->regions);
    free(s->chans);
    s->regions = NULL;
    s->chans = NULL;
}

static bool alive(const struct comp *c)
{
    return c->pid > 0 && c->ctrl_fd >= 0;
}

static void deliver(struct sup *s, size_t ch, int end);

/* The protected-call socket for end `end` of channel ch, for a component
 * that is starting now.  If the socket pair prepared for it is gone, a new
 * pair is made and the other end goes to the peer: at once if it runs, or at
 * its next start.  Returns a descriptor the caller must close after fork. */
int sup_ppc_take(struct sup *s, size_t ch, int end)
{
    struct chan_rt *c = &s->chans[ch];
    if (c->pend[end] >= 0) {
        int fd = c->pend[end];
        c->pend[end] = -1;
        return fd;
    }
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
        return -1;
    int other = 1 - end;
    struct comp *peer = &s->comps[s->sys->channels[ch].end[other].comp];
    /* Whatever the peer holds is stale now; the new end replaces any socket
     * still waiting for it. */
    if (c->pend[other] >= 0)
        close(c->pend[other]);
    c->pend[other] = sv[1];
    if (alive(peer))
        deliver(s, ch, other);
    return sv[0];
}

/* Hands the waiting socket of end `end` to its running component.  A peer
 * that is busy and not reading its control socket may have a full buffer:
 * then the socket stays waiting and the retry timer offers it again, so a
 * healthy callee never stays unreachable. */
static void deliver(struct sup *s, size_t ch, int end)
{
    struct chan_rt *c = &s->chans[ch];
    struct comp *comp = &s->comps[s->sys->channels[ch].end[end].comp];
    struct dmx_ctrl m = {.type = end == c->caller ? DMX_CTRL_CALL_FD : DMX_CTRL_SERVE_FD,
                         .ch = s->sys->channels[ch].end[end].id};
    if (c->pend[end] < 0 || !alive(comp))
        return;
    if (sup_send_ctrl(comp, &m, c->pend[end])) {
        sup_arm_retry(s);
        return;
    }
    close(c->pend[end]);
    c->pend[end] = -1;
}

void sup_retry_deliveries(struct sup *s)
{
    for (size_t i = 0; i < s->sys->nchannels; i++)
        for (int e = 0; e < 2; e++)
            if (s->chans[i].caller >= 0 && s->chans[i].pend[e] >= 0)
                deliver(s, i, e);
}
