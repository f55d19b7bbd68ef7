/*
 * Stage 2 of the sandbox: closed from inside the component, after its
 * regions are mapped and before any component code runs.  The supervisor has
 * already switched the uid, dropped every capability, set no_new_privs and
 * applied stage 1 before it exec'd us (src/supervisor/spawn.c); this adds a
 * Landlock layer with no access at all and the seccomp allow-list.
 */
#include "runtime/runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <linux/if_packet.h>
#include <linux/vfio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "runtime/abi.h"
#include "sandbox/sandbox.h"
#include "sdf/sdf.h"

/* A forbidden system call arrives here (SECCOMP_RET_TRAP) instead of simply
 * killing the process, so the supervisor can name the call.  The handler is
 * one-shot (SA_RESETHAND) and re-raises, so the process still dies by SIGSYS;
 * the filter stops the component from replacing this handler. */
static void on_sigsys(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    struct dmx_ctrl m = {.type = DMX_CTRL_SYSCALL, .a = si->si_syscall};
    send(DMX_FD_CTRL, &m, sizeof(m), MSG_NOSIGNAL | MSG_DONTWAIT);
    raise(sig);
}

static int seccomp_allow_list(void)
{
    scmp_filter_ctx f = seccomp_init(SCMP_ACT_TRAP);
    if (!f)
        return -ENOMEM;
    static const int allowed[] = {
        SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(readv), SCMP_SYS(writev), SCMP_SYS(close),
        SCMP_SYS(fstat), SCMP_SYS(lseek),
        /* memory: only anonymous memory can be new; region fds are closed */
        SCMP_SYS(mmap), SCMP_SYS(munmap), SCMP_SYS(mprotect), SCMP_SYS(mremap), SCMP_SYS(madvise),
        SCMP_SYS(brk),
        /* signals to ourselves, threads and futexes */
        SCMP_SYS(rt_sigprocmask), SCMP_SYS(rt_sigreturn), SCMP_SYS(sigaltstack), SCMP_SYS(futex),
        SCMP_SYS(set_robust_list), SCMP_SYS(rseq), SCMP_SYS(membarrier), SCMP_SYS(sched_yield),
        SCMP_SYS(sched_getaffinity), SCMP_SYS(sched_setaffinity), SCMP_SYS(getcpu),
        SCMP_SYS(restart_syscall),
        /* identity and time */
        SCMP_SYS(getpid), SCMP_SYS(gettid), SCMP_SYS(getuid), SCMP_SYS(geteuid), SCMP_SYS(getgid),
        SCMP_SYS(getegid), SCMP_SYS(uname), SCMP_SYS(clock_gettime), SCMP_SYS(clock_getres),
        SCMP_SYS(clock_nanosleep), SCMP_SYS(nanosleep), SCMP_SYS(gettimeofday), SCMP_SYS(getrandom),
        /* the event loop, on descriptors the supervisor handed us */
        SCMP_SYS(epoll_wait), SCMP_SYS(epoll_pwait), SCMP_SYS(epoll_ctl), SCMP_SYS(epoll_create1),
        SCMP_SYS(eventfd2), SCMP_SYS(timerfd_create), SCMP_SYS(timerfd_settime),
        SCMP_SYS(timerfd_gettime), SCMP_SYS(poll), SCMP_SYS(ppoll),
        /* recvmsg takes descriptors the supervisor hands over; there is no
         * sendmsg, because SCM_RIGHTS would let components trade
         * capabilities outside the system description. */
        SCMP_SYS(recvfrom), SCMP_SYS(recvmsg), SCMP_SYS(sendto), SCMP_SYS(exit),
        SCMP_SYS(exit_group)};
    scmp_datum_t self = (scmp_datum_t)getpid();
    const struct sbx_rule rules[] = {
        /* fstatat on an open descriptor only (printf does this on stdout) */
        {SCMP_SYS(newfstatat),
         SCMP_ACT_ALLOW,
         1,
         {SCMP_A3(SCMP_CMP_MASKED_EQ, AT_EMPTY_PATH, AT_EMPTY_PATH)}},
        /* signals: only to ourselves (abort, raise), and SIGSYS stays ours */
        {SCMP_SYS(tgkill), SCMP_ACT_ALLOW, 1, {SCMP_A0(SCMP_CMP_EQ, self)}},
        {SCMP_SYS(kill), SCMP_ACT_ALLOW, 1, {SCMP_A0(SCMP_CMP_EQ, self)}},
        {SCMP_SYS(rt_sigaction), SCMP_ACT_ALLOW, 1, {SCMP_A0_32(SCMP_CMP_NE, SIGSYS)}},
        /* Descriptor flags only.  F_SETFL is out: an eventfd's file
         * description is shared with the peer, and making it blocking would
         * let one side hang the other's notify.  F_SETOWN/F_SETSIG would
         * signal others. */
        {SCMP_SYS(fcntl), SCMP_ACT_ALLOW, 1, {SCMP_A1_32(SCMP_CMP_EQ, F_GETFL)}},
        {SCMP_SYS(fcntl), SCMP_ACT_ALLOW, 1, {SCMP_A1_32(SCMP_CMP_EQ, F_GETFD)}},
        {SCMP_SYS(fcntl), SCMP_ACT_ALLOW, 1, {SCMP_A1_32(SCMP_CMP_EQ, F_SETFD)}},
        /* threads yes (lwIP's tcpip thread), new processes no */
        {SCMP_SYS(clone),
         SCMP_ACT_ALLOW,
         1,
         {SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD)}},
        /* clone3 hides its flags behind a pointer; ENOSYS makes glibc use clone */
        {SCMP_SYS(clone3), SCMP_ACT_ERRNO(ENOSYS), 0, {{0}}},
        /* harmless probes answered with an error rather than death */
        /* glibc's qsort asks how much memory the machine has; "no such
         * call" makes it pick its in-place sort instead of killing us. */
        {SCMP_SYS(sysinfo), SCMP_ACT_ERRNO(ENOSYS), 0, {{0}}},
        {SCMP_SYS(prctl), SCMP_ACT_ALLOW, 1, {SCMP_A0(SCMP_CMP_EQ, PR_SET_NAME)}},
        {SCMP_SYS(prctl), SCMP_ACT_ERRNO(EPERM), 1, {SCMP_A0(SCMP_CMP_NE, PR_SET_NAME)}},
        {SCMP_SYS(prlimit64),
         SCMP_ACT_ALLOW,
         2,
         {SCMP_A0(SCMP_CMP_EQ, 0), SCMP_A2(SCMP_CMP_EQ, 0)}},
    };
    int rc = sbx_seccomp_add(f, SCMP_ACT_ALLOW, allowed, sizeof(allowed) / sizeof(allowed[0]),
                             rules, sizeof(rules) / sizeof(rules[0]));
    /* A packet socket the supervisor opened for us: the driver sets up its
     * rings on that descriptor only, with the few options ring setup needs.
     * Not SO_BINDTODEVICE, not PACKET_FANOUT (which could join another
     * socket's group and steal its frames), not filters. */
    for (uint32_t i = 0; !rc && i < dmx_boot->ndevices && i < DMX_MAX_DEVICES; i++) {
        const struct dmx_boot_device *d = &dmx_boot->devices[i];
        if (d->kind != SDF_DEV_PACKET || d->fd < 0)
            continue;
        scmp_datum_t fd = (scmp_datum_t)d->fd;
#define PKT_SET(opt)                                                                               \
    {                                                                                              \
        SCMP_SYS(setsockopt), SCMP_ACT_ALLOW, 3,                                                   \
        {                                                                                          \
            SCMP_A0(SCMP_CMP_EQ, fd), SCMP_A1_32(SCMP_CMP_EQ, SOL_PACKET),                         \
                SCMP_A2_32(SCMP_CMP_EQ, opt)                                                       \
        }                                                                                          \
    }
        const struct sbx_rule dev[] = {
            PKT_SET(PACKET_VERSION),
            PKT_SET(PACKET_RX_RING),
            PKT_SET(PACKET_TX_RING),
            PKT_SET(PACKET_IGNORE_OUTGOING),
            PKT_SET(PACKET_LOSS),
            {SCMP_SYS(getsockopt), SCMP_ACT_ALLOW, 1, {SCMP_A0(SCMP_CMP_EQ, fd)}},
            {SCMP_SYS(getsockname), SCMP_ACT_ALLOW, 1, {SCMP_A0(SCMP_CMP_EQ, fd)}},
        };
#undef PKT_SET
        rc = sbx_seccomp_add(f, SCMP_ACT_ALLOW, NULL, 0, dev, sizeof(dev) / sizeof(dev[0]));
    }
    /* A VFIO device: the few device ioctls its backend uses, and config and
     * region access by offset, on that descriptor only.  Never the
     * container's ioctls: a driver must not change its own DMA window. */
    int vfio_fd = -1;
    for (uint32_t i = 0; !rc && i < dmx_boot->ndevices && i < DMX_MAX_DEVICES; i++) {
        const struct dmx_boot_device *d = &dmx_boot->devices[i];
        if (d->kind != SDF_DEV_PCI || d->backend != SDF_BACKEND_VFIO || d->fd < 0)
            continue;
        scmp_datum_t fd = (scmp_datum_t)d->fd;
        vfio_fd = d->fd;
#define VFIO_IOCTL(req)                                                                            \
    {                                                                                              \
        SCMP_SYS(ioctl), SCMP_ACT_ALLOW, 2,                                                        \
        {                                                                                          \
            SCMP_A0(SCMP_CMP_EQ, fd), SCMP_A1(SCMP_CMP_EQ, req)                                    \
        }                                                                                          \
    }
        const struct sbx_rule dev[] = {
            VFIO_IOCTL(VFIO_DEVICE_GET_INFO),
            VFIO_IOCTL(VFIO_DEVICE_GET_REGION_INFO),
            VFIO_IOCTL(VFIO_DEVICE_GET_IRQ_INFO),
            VFIO_IOCTL(VFIO_DEVICE_SET_IRQS),
            VFIO_IOCTL(VFIO_DEVICE_RESET),
            {SCMP_SYS(pread64), SCMP_ACT_ALLOW, 1, {SCMP_A0(SCMP_CMP_EQ, fd)}},
            {SCMP_SYS(pwrite64), SCMP_ACT_ALLOW, 1, {SCMP_A0(SCMP_CMP_EQ, fd)}},
            {SCMP_SYS(ioctl), SCMP_ACT_ERRNO(ENOTTY), 1, {SCMP_A0(SCMP_CMP_NE, fd)}},
        };
#undef VFIO_IOCTL
        rc = sbx_seccomp_add(f, SCMP_ACT_ALLOW, NULL, 0, dev, sizeof(dev) / sizeof(dev[0]));
        break; /* a driver has one device */
    }
    /* Anything else asking about a terminal gets "not a terminal". */
    if (!rc && vfio_fd < 0) {
        const struct sbx_rule notty[] = {{SCMP_SYS(ioctl), SCMP_ACT_ERRNO(ENOTTY), 0, {{0}}}};
        rc = sbx_seccomp_add(f, SCMP_ACT_ALLOW, NULL, 0, notty, 1);
    }
    rc = rc ?: seccomp_load(f);
    seccomp_release(f);
    return rc;
}

int dmx_sandbox_close(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_sigsys;
    sa.sa_flags = SA_SIGINFO | SA_RESETHAND | SA_NODEFER;
    sigaction(SIGSYS, &sa, NULL);

    /* Not dumpable: peers running under other uids could not ptrace us
     * anyway, but this also hides /proc/<pid> from them. */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    if (!prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) {
        dmx_die("no_new_privs: %s", strerror(errno));
    }
    /* No grants: every handled access is denied from here on. */
    int abi = sbx_landlock(NULL, 0);
    if (abi < 0)
        dmx_die("Landlock unavailable (%s); refusing to run unsandboxed", strerror(-abi));
    int rc = seccomp_allow_list();
    if (rc)
        dmx_die("seccomp filter: %s", strerror(-rc));
    return 0;
}
