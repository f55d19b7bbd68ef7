/*
 * probe: a component that misbehaves on purpose, chosen by its config
 * `action`, so integration tests can check what the sandbox and the
 * supervisor do about it.  It also reports peer faults and restarts it sees.
 *
 *   open | socket | exec   make that forbidden system call in init
 *   pass-fd                try to send a descriptor with SCM_RIGHTS
 *   wild-write             store to an address no region covers
 *   ro-write               store into the region granted read-only (`ro`)
 *   abort                  abort() in init while restarts < `crash_until`
 *   escape                 log terminal escapes and a carriage return
 *   flood                  write log lines and control messages forever
 *   whoami                 log uid and gid
 *   call                   after `delay_ms`, ppcall channel 1 up to `tries` times
 *                          until it answers (label 2); probes serve calls
 *                          with label + 1, MR0 + 1
 *   hostile                stand in for ping against a real pong: write garbage
 *                          indices and descriptors into the queues, then check
 *                          that pong still serves honest traffic
 */
#include <devmux/microkit.h>
#include <devmux/queue.h>
#include <time.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "runtime/abi.h" /* the control socket, to flood it */

static const char *action;

static void pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* Honest traffic: send n counters, wait for them to come back + 1. */
static unsigned honest_round_trips(struct dmq_producer *act, struct dmq_consumer *fr, char *bufs,
                                   uint32_t buf_size, unsigned n)
{
    unsigned ok = 0;
    for (unsigned k = 0; k < n; k++) {
        uint32_t i = k % 8;
        *(volatile uint64_t *)(bufs + (size_t)i * buf_size) = 2 * k + 1;
        struct dmq_desc d = {.offset = (uint64_t)i * buf_size, .len = 8};
        if (dmq_enqueue(act, &d) < 0)
            break;
        microkit_notify(0);
        struct dmq_desc back = {.offset = ~0ull};
        for (int tries = 0; tries < 2000 && dmq_dequeue(fr, &back) < 0; tries++)
            pause_ms(1);
        if (back.offset == d.offset && *(volatile uint64_t *)(bufs + back.offset) == 2 * k + 2)
            ok++;
    }
    return ok;
}

static void hostile(void)
{
    const struct devmux_item *a = devmux_item("ring", "active");
    const struct devmux_item *f = devmux_item("ring", "free");
    const struct devmux_item *b = devmux_item("ring", "buffers");
    if (!a || !f || !b) {
        devmux_log("hostile: needs region ring with active, free, buffers");
        return;
    }
    struct dmq_producer act;
    struct dmq_consumer fr;
    dmq_producer_init(&act, a->addr, a->size, a->count, "active", false);
    dmq_consumer_init(&fr, f->addr, f->size, f->count, "free", false);
    unsigned before = honest_round_trips(&act, &fr, b->addr, b->elem, 20);
    devmux_log("hostile: %u honest round trips before garbage", before);

    /* 1. A tail far past anything the capacity allows, then one behind. */
    atomic_store(&act.q.ring->tail, act.tail + 100000);
    microkit_notify(0);
    pause_ms(100);
    atomic_store(&act.q.ring->tail, act.tail - 50);
    microkit_notify(0);
    pause_ms(100);
    atomic_store(&act.q.ring->tail, act.tail);
    /* 2. A head on the free ring that releases slots pong never filled. */
    atomic_store(&fr.q.ring->head, fr.head + 77777);
    microkit_notify(0);
    pause_ms(100);
    atomic_store(&fr.q.ring->head, fr.head);
    /* 3. Descriptors outside the buffer region and misaligned ones. */
    struct dmq_desc bad[] = {{.offset = 1ull << 40, .len = 8},
                             {.offset = b->size, .len = 8},
                             {.offset = 3, .len = 8},
                             {.offset = ~0ull, .len = ~0u}};
    for (unsigned k = 0; k < 4; k++)
        dmq_put(&act, &bad[k]);
    dmq_publish(&act);
    microkit_notify(0);
    pause_ms(100);
    unsigned after = honest_round_trips(&act, &fr, b->addr, b->elem, 200);
    devmux_log("hostile: %u of 200 honest round trips after garbage", after);
}

void init(void)
{
    action = devmux_config_str("action", "none");
    devmux_log("probe: action %s, restart %u", action, devmux_restarts());
    if (!strcmp(action, "open")) {
        int fd = open("/etc/passwd", O_RDONLY);
        devmux_log("open returned %d: the sandbox did not stop it", fd);
    } else if (!strcmp(action, "socket")) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        devmux_log("socket returned %d: the sandbox did not stop it", fd);
    } else if (!strcmp(action, "exec")) {
        char *argv[] = {"/bin/true", NULL};
        execve("/bin/true", argv, NULL);
        devmux_log("execve returned: the sandbox did not stop it");
    } else if (!strcmp(action, "pass-fd")) {
        /* Try to hand our control socket to the supervisor with SCM_RIGHTS:
         * capabilities must not move outside the system description. */
        int fd = DMX_FD_CTRL;
        union {
            char buf[CMSG_SPACE(sizeof(int))];
            struct cmsghdr align;
        } u;
        char byte = 0;
        struct iovec iov = {&byte, 1};
        struct msghdr mh = {.msg_iov = &iov,
                            .msg_iovlen = 1,
                            .msg_control = u.buf,
                            .msg_controllen = sizeof(u.buf)};
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &fd, sizeof(int));
        long n = sendmsg(fd, &mh, 0);
        devmux_log("sendmsg returned %ld: the sandbox did not stop it", n);
    } else if (!strcmp(action, "wild-write")) {
        /* Page zero and the first megabyte are never mapped on Linux. */
        *(volatile uint64_t *)(uintptr_t)0x10000 = 1;
        devmux_log("wild write survived");
    } else if (!strcmp(action, "ro-write")) {
        size_t size;
        volatile uint64_t *ro = devmux_region("ro", &size);
        devmux_log("ro region at %p, %zu bytes, first word %llu", (void *)ro, size,
                   ro ? (unsigned long long)ro[0] : 0ull);
        if (ro)
            ro[0] = 42;
        devmux_log("read-only write survived");
    } else if (!strcmp(action, "abort")) {
        if (devmux_restarts() < devmux_config_u64("crash_until", ~0ull)) {
            devmux_log("crashing on purpose");
            abort();
        }
        devmux_log("running normally now");
    } else if (!strcmp(action, "flood")) {
        /* Never return: write log lines and control messages without pause. */
        struct dmx_ctrl ready = {.type = DMX_CTRL_READY};
        for (unsigned long k = 0;; k++) {
            devmux_log("flood line %lu", k);
            send(DMX_FD_CTRL, &ready, sizeof(ready), MSG_DONTWAIT | MSG_NOSIGNAL);
        }
    } else if (!strcmp(action, "escape")) {
        /* Terminal escapes and a carriage return that would overwrite the
         * line with a forged supervisor message. */
        devmux_log("\x1b[31mred\x1b[0m\rdevmux: forged%c", 0x7f);
    } else if (!strcmp(action, "whoami")) {
        devmux_log("uid %u gid %u", (unsigned)getuid(), (unsigned)getgid());
    } else if (!strcmp(action, "hostile")) {
        hostile();
    } else if (!strcmp(action, "call")) {
        /* Optionally stay busy first (not reading control messages), then
         * call until the callee answers, at most `tries` times. */
        pause_ms((long)devmux_config_u64("delay_ms", 0));
        uint64_t tries = devmux_config_u64("tries", 1), k;
        for (k = 1; k <= tries; k++) {
            microkit_mr_set(0, 41);
            microkit_msginfo r = microkit_ppcall(1, microkit_msginfo_new(1, 1));
            devmux_log("ppcall %llu: label %llu mr0 %llu", (unsigned long long)k,
                       (unsigned long long)microkit_msginfo_get_label(r),
                       (unsigned long long)microkit_mr_get(0));
            if (microkit_msginfo_get_label(r) == 2)
                break;
            pause_ms(100);
        }
    }
}

void notified(microkit_channel ch)
{
    devmux_log("notified on %u", ch);
}

void peer_fault(microkit_channel ch, const struct devmux_fault_info *info)
{
    devmux_log("peer_fault ch %u signal %d status %d restarting %d", ch, info->signal,
               info->exit_status, info->restarting);
}

void peer_ready(microkit_channel ch)
{
    devmux_log("peer_ready ch %u", ch);
}

/* Serves calls on any channel: label + 1, MR0 + 1. */
microkit_msginfo protected(microkit_channel ch, microkit_msginfo msginfo)
{
    microkit_mr_set(0, microkit_mr_get(0) + 1);
    return microkit_msginfo_new(microkit_msginfo_get_label(msginfo) + 1, 1);
}
