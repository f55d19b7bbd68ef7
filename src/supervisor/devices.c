/*
 * Device resources: what the system description grants a component beyond
 * memory and channels.  The supervisor opens each device with its own
 * privileges and hands over only the descriptor, so a driver never needs
 * the right to create sockets or network interfaces.
 *
 *   packet  an AF_PACKET socket bound to one host interface, promiscuous.
 *           Opened afresh for every start of the driver, so a restarted
 *           driver sets up new rings on a clean socket.
 *   tap     a TAP interface created inside a named network namespace.  It
 *           is opened once and kept across restarts of its frontend, so
 *           the client OS never sees its interface vanish.
 */
#include "supervisor/supervisor.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

/* Runs with the calling thread in network namespace netns (NULL: ours).
 * The supervisor is single-threaded, so switching and back is safe. */
static int enter_netns(const char *netns, int *saved)
{
    *saved = -1;
    if (!netns)
        return 0;
    char path[128];
    snprintf(path, sizeof(path), "/run/netns/%s", netns);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        sup_log("network namespace '%s' (%s): %s; expected one made by `ip netns add %s`", netns,
                path, strerror(err), netns);
        return -err;
    }
    *saved = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    if (*saved < 0 || setns(fd, CLONE_NEWNET)) {
        int err = errno;
        sup_log("cannot enter network namespace '%s': %s", netns, strerror(err));
        close(fd);
        if (*saved >= 0)
            close(*saved);
        *saved = -1;
        return -err;
    }
    close(fd);
    return 0;
}

static void leave_netns(int saved)
{
    if (saved < 0)
        return;
    if (setns(saved, CLONE_NEWNET))
        sup_log("cannot return to our network namespace: %s", strerror(errno));
    close(saved);
}

static int set_up(int sock, const char *ifname)
{
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, IFNAMSIZ, "%s", ifname);
    if (ioctl(sock, SIOCGIFFLAGS, &ifr))
        return -errno;
    if (ifr.ifr_flags & IFF_UP)
        return 0;
    ifr.ifr_flags |= IFF_UP;
    return ioctl(sock, SIOCSIFFLAGS, &ifr) ? -errno : 0;
}

static int open_packet(const char *cname, const struct sdf_device *d)
{
    int saved, err = enter_netns(d->netns, &saved);
    if (err)
        return err;
    int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ETH_P_ALL));
    const char *what = "socket(AF_PACKET)";
    unsigned idx = 0;
    if (fd >= 0) {
        what = "no such interface";
        idx = if_nametoindex(d->ifname);
        errno = ENODEV;
    }
    if (fd >= 0 && idx) {
        what = "bring the interface up";
        err = set_up(fd, d->ifname);
        errno = -err;
    }
    if (fd >= 0 && idx && !err) {
        struct sockaddr_ll sll = {
            .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL), .sll_ifindex = (int)idx};
        struct packet_mreq mr = {.mr_ifindex = (int)idx, .mr_type = PACKET_MR_PROMISC};
        what = "bind";
        if (!bind(fd, (struct sockaddr *)&sll, sizeof(sll))) {
            what = "promiscuous mode";
            if (!setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof(mr))) {
                leave_netns(saved);
                return fd;
            }
        }
    }
    err = errno ? -errno : -EIO;
    sup_log("component '%s': device '%s' (packet on interface '%s'%s%s): %s: %s; expected an "
            "existing interface this supervisor may open (see `ip link`)",
            cname, d->name, d->ifname, d->netns ? " in namespace " : "", d->netns ? d->netns : "",
            what, strerror(-err));
    if (fd >= 0)
        close(fd);
    leave_netns(saved);
    return err;
}

int sup_open_tap(const char *owner, const struct sdf_device *d)
{
    int saved, err = enter_netns(d->netns, &saved);
    if (err)
        return err;
    const char *what = "open /dev/net/tun";
    int sock = -1, fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        goto fail;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, IFNAMSIZ, "%s", d->ifname);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    what = "create the TAP interface (TUNSETIFF)";
    if (ioctl(fd, TUNSETIFF, &ifr))
        goto fail;
    what = "configure the interface";
    sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (sock < 0)
        goto fail;
    if (d->has_mac) {
        memset(&ifr, 0, sizeof(ifr));
        snprintf(ifr.ifr_name, IFNAMSIZ, "%s", d->ifname);
        ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
        memcpy(ifr.ifr_hwaddr.sa_data, d->mac, 6);
        what = "set the MAC address";
        if (ioctl(sock, SIOCSIFHWADDR, &ifr))
            goto fail;
    }
    what = "bring the interface up";
    err = set_up(sock, d->ifname);
    if (err) {
        errno = -err;
        goto fail;
    }
    close(sock);
    leave_netns(saved);
    return fd;
fail:
    err = errno ? -errno : -EIO;
    sup_log("%s: device '%s' (tap '%s' in namespace %s): %s: %s", owner, d->name, d->ifname,
            d->netns ? d->netns : "(ours)", what, strerror(-err));
    if (sock >= 0)
        close(sock);
    if (fd >= 0)
        close(fd);
    leave_netns(saved);
    return err;
}

int sup_create_devices(struct sup *s)
{
    for (size_t i = 0; i < s->sys->ncomps; i++) {
        struct comp *c = &s->comps[i];
        for (size_t k = 0; k < SDF_MAX_DEVICES; k++)
            c->dev_fd[k] = -1;
        for (size_t k = 0; k < c->def->ndevices && k < SDF_MAX_DEVICES; k++) {
            const struct sdf_device *d = &c->def->devices[k];
            int fd = -1;
            if (d->kind == SDF_DEV_PCI)
                continue; /* machines hand these out */
            if (d->kind == SDF_DEV_TAP) {
                char owner[SDF_NAME_MAX + 16];
                snprintf(owner, sizeof(owner), "component '%s'", c->def->name);
                fd = sup_open_tap(owner, d);
            } else {
                /* Opened per start; this one only proves the interface is
                 * there before anything runs. */
                fd = open_packet(c->def->name, d);
                if (fd >= 0) {
                    close(fd);
                    fd = -1;
                    continue;
                }
            }
            if (fd < 0)
                return fd;
            c->dev_fd[k] = fd;
        }
    }
    return 0;
}

int sup_device_open(struct sup *s, struct comp *c, size_t k, bool *owned)
{
    (void)s;
    const struct sdf_device *d = &c->def->devices[k];
    if (d->kind == SDF_DEV_TAP) {
        *owned = false;
        return c->dev_fd[k];
    }
    *owned = true;
    return open_packet(c->def->name, d);
}

void sup_free_devices(struct sup *s)
{
    for (size_t i = 0; s->comps && i < s->sys->ncomps; i++)
        for (size_t k = 0; k < SDF_MAX_DEVICES; k++)
            if (s->comps[i].dev_fd[k] >= 0) {
                close(s->comps[i].dev_fd[k]);
                s->comps[i].dev_fd[k] = -1;
            }
}
