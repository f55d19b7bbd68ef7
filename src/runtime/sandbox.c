/*
 * Closing the sandbox from inside the component, after its regions are
 * mapped and before any component code runs.  The supervisor has already
 * switched the uid, dropped every capability and set no_new_privs before it
 * exec'd us (src/supervisor/spawn.c); this adds Landlock and seccomp.
 */
#include "runtime/runtime.h"

#include <errno.h>
#include <linux/landlock.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "runtime/abi.h"

/* Debian 12's kernel headers predate some Landlock ABI versions; the kernel
 * here is newer, so spell out the attribute with every field we use. */
struct ll_ruleset_attr {
    uint64_t handled_access_fs;
    uint64_t handled_access_net;
    uint64_t scoped;
};

static int landlock_no_access(void)
{
    long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
    if (abi < 0)
        return -errno;
    struct ll_ruleset_attr attr = {0};
    size_t size = sizeof(uint64_t);
    attr.handled_access_fs = (1ull << 13) - 1; /* ABI 1: execute .. make_sym */
    if (abi >= 2)
        attr.handled_access_fs |= 1ull << 13; /* refer */
    if (abi >= 3)
        attr.handled_access_fs |= 1ull << 14; /* truncate */
    if (abi >= 5)
        attr.handled_access_fs |= 1ull << 15; /* ioctl_dev */
    if (abi >= 4) {
        attr.handled_access_net = 3; /* bind_tcp | connect_tcp */
        size = 2 * sizeof(uint64_t);
    }
    if (abi >= 6) {
        attr.scoped = 3; /* abstract unix sockets | signals */
        size = sizeof(attr);
    }
    /* No rules at all: every handled access is denied. */
    int fd = (int)syscall(SYS_landlock_create_ruleset, &attr, size, 0);
    if (fd < 0)
        return -errno;
    int rc = (int)syscall(SYS_landlock_restrict_self, fd, 0);
    int err = errno;
    close(fd);
    return rc < 0 ? -err : (int)abi;
}

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

static int add(scmp_filter_ctx f, int nr)
{
    return seccomp_rule_add(f, SCMP_ACT_ALLOW, nr, 0);
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
    int rc = 0;
    for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]) && !rc; i++)
        rc = add(f, allowed[i]);
    pid_t self = getpid();
    /* fstatat on an open descriptor only (printf does this on stdout). */
    rc = rc
             ?: seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(newfstatat), 1,
                                 SCMP_A3(SCMP_CMP_MASKED_EQ, AT_EMPTY_PATH, AT_EMPTY_PATH));
    /* Signals: only to ourselves (abort, raise). */
    rc = rc
             ?: seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1,
                                 SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)self));
    rc = rc
             ?: seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(kill), 1,
                                 SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)self));
    rc = rc
             ?: seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(rt_sigaction), 1,
                                 SCMP_A0_32(SCMP_CMP_NE, SIGSYS));
    /* Descriptor flags only.  F_SETFL is out: an eventfd's file description
     * is shared with the peer, and making it blocking would let one side
     * hang the other's notify.  F_SETOWN/F_SETSIG would signal others. */
    rc = rc
             ?: seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(fcntl), 1,
                                 SCMP_A1_32(SCMP_CMP_EQ, F_GETFL));
    rc = rc
             ?: seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(fcntl), 1,
                                 SCMP_A1_32(SCMP_CMP_EQ, F_GETFD));
    rc = rc
             ?: seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(fcntl), 1,
                                 SCMP_A1_32(SCMP_CMP_EQ, F_SETFD));
    /* Threads yes (lwIP's tcpip thread), new processes no. */
    rc = rc
             ?: seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
                                 SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
    /* clone3 hides its flags behind a pointer; ENOSYS makes glibc use clone. */
    rc = rc ?: seccomp_rule_add(f, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
    /* Harmless probes answered with an error rather than death. */
    rc = rc ?: seccomp_rule_add(f, SCMP_ACT_ERRNO(ENOTTY), SCMP_SYS(ioctl), 0);
    rc = rc
             ?: seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1,
                                 SCMP_A0(SCMP_CMP_EQ, PR_SET_NAME));
    rc = rc
             ?: seccomp_rule_add(f, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(prctl), 1,
                                 SCMP_A0(SCMP_CMP_NE, PR_SET_NAME));
    rc = rc
             ?: seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(prlimit64), 2, SCMP_A0(SCMP_CMP_EQ, 0),
                                 SCMP_A2(SCMP_CMP_EQ, 0));
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
    int abi = landlock_no_access();
    if (abi < 0)
        dmx_die("Landlock unavailable (%s); refusing to run unsandboxed", strerror(-abi));
    int rc = seccomp_allow_list();
    if (rc)
        dmx_die("seccomp filter: %s", strerror(-rc));
    return 0;
}
