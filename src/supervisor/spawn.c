/*
 * Starting one component process.  The parent prepares everything the
 * component is granted (boot information, descriptors); the child then
 * drops every privilege it can before exec, and the runtime inside the new
 * program closes the rest of the sandbox (src/runtime/sandbox.c) before the
 * component's own code runs.
 */
#include "supervisor/supervisor.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/stat.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/util.h"
#include "supervisor/machine.h"
#include "sandbox/sandbox.h"

#define MAX_GRANTS (DMX_MAX_REGIONS + 4 * MICROKIT_MAX_CHANNELS + 2 * DMX_MAX_DEVICES + 1)

struct grants {
    int src[MAX_GRANTS]; /* descriptors in the supervisor */
    int n;
};

static int grant(struct grants *g, int fd)
{
    g->src[g->n] = fd;
    return DMX_FD_FIRST + g->n++;
}

static void copy_name(char *dst, const char *src)
{
    snprintf(dst, DMX_NAME_LEN, "%s", src ? src : "");
}

/* Fills the boot information for c and collects the descriptors to pass.
 * owned[] gets the descriptors made just for this start (ppc sockets),
 * which the parent closes once the child has them. */
static void build_boot(struct sup *s, struct comp *c, struct dmx_boot *b, struct grants *g,
                       int *owned, int *nowned)
{
    const struct sdf_system *sys = s->sys;
    memset(b, 0, sizeof(*b));
    b->magic = DMX_BOOT_MAGIC;
    b->version = DMX_BOOT_VERSION;
    b->restarts = c->restarts;
    copy_name(b->name, c->def->name);
    for (size_t r = 0; r < sys->nregions; r++) {
        const struct sdf_region *reg = &sys->regions[r];
        for (size_t m = 0; m < reg->nmaps; m++) {
            const struct sdf_mapping *map = &reg->maps[m];
            if (map->comp != c->idx)
                continue;
            uint32_t ri = b->nregions++;
            struct dmx_boot_region *br = &b->regions[ri];
            copy_name(br->name, reg->name);
            copy_name(br->setvar, map->setvar);
            br->size = reg->size;
            br->vaddr = map->vaddr;
            br->writable = map->writable;
            br->fd = grant(g, map->writable ? s->regions[r].fd : s->regions[r].ro_fd);
            br->dma = reg->mach >= 0;
            br->dev = reg->dev_addr;
            for (size_t k = 0; k < reg->nitems && b->nitems < DMX_MAX_ITEMS; k++) {
                struct dmx_boot_item *bi = &b->items[b->nitems++];
                copy_name(bi->name, reg->items[k].name);
                bi->region = ri;
                bi->kind = reg->items[k].kind;
                bi->offset = reg->items[k].offset;
                bi->size = reg->items[k].size;
                bi->count = reg->items[k].count;
                bi->elem = reg->items[k].elem;
            }
        }
    }
    for (size_t i = 0; i < sys->nchannels; i++) {
        const struct sdf_channel *ch = &sys->channels[i];
        for (int e = 0; e < 2; e++) {
            if (ch->end[e].comp != c->idx)
                continue;
            struct dmx_boot_channel *bc = &b->channels[ch->end[e].id];
            bc->present = 1;
            copy_name(bc->peer, ch->end[1 - e].component);
            bc->recv_fd = grant(g, s->chans[i].efd[e]);
            bc->send_fd = grant(g, s->chans[i].efd[1 - e]);
            bc->call_fd = bc->serve_fd = -1;
            if (s->chans[i].caller >= 0) {
                int fd = sup_ppc_take(s, i, e);
                if (fd >= 0) {
                    owned[(*nowned)++] = fd;
                    if (s->chans[i].caller == e)
                        bc->call_fd = grant(g, fd);
                    else
                        bc->serve_fd = grant(g, fd);
                }
            }
        }
    }
    for (size_t k = 0; k < c->def->ndevices && k < DMX_MAX_DEVICES; k++) {
        struct dmx_boot_device *bd = &b->devices[b->ndevices++];
        bool own = false;
        copy_name(bd->name, c->def->devices[k].name);
        bd->kind = c->def->devices[k].kind;
        bd->irq = c->def->devices[k].irq;
        bd->fd = bd->irq_fd = bd->aux_fd = -1;
        if (bd->kind == SDF_DEV_PCI) {
            int fd, irq_fd;
            int rc = sup_machine_grant(s, c, k, bd, &fd, &irq_fd);
            if (rc < 0)
                continue; /* logged; the driver finds no device and says so */
            if (rc == 1)
                owned[(*nowned)++] = fd;
            bd->fd = grant(g, fd);
            bd->irq_fd = grant(g, irq_fd);
            continue;
        }
        int fd = sup_device_open(s, c, k, &own);
        if (fd < 0)
            continue; /* logged; the driver finds no device and says so */
        if (own)
            owned[(*nowned)++] = fd;
        bd->fd = grant(g, fd);
    }
    size_t len = 0;
    for (size_t k = 0; k < c->def->nconfig; k++) {
        size_t kl = strlen(c->def->config[k].key) + 1, vl = strlen(c->def->config[k].value) + 1;
        if (len + kl + vl > sizeof(b->config)) {
            sup_comp_log(c, "component '%s': config larger than %zu bytes, truncated", c->def->name,
                         sizeof(b->config));
            break;
        }
        memcpy(b->config + len, c->def->config[k].key, kl);
        memcpy(b->config + len + kl, c->def->config[k].value, vl);
        len += kl + vl;
    }
    b->config_len = (uint32_t)len;
}

static int make_boot_fd(const struct dmx_boot *b)
{
    int fd = memfd_create("devmux:boot", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return -1;
    if (write_all(fd, b, sizeof(*b)) ||
        fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)) {
        close(fd);
        return -1;
    }
    return fd;
}

static void child_fail(const char *what) __attribute__((noreturn));

/* ---- stage 1 of the sandbox, applied before exec ------------------------
 *
 * The runtime closes the full sandbox before the component's own code runs,
 * but a program can run code even earlier (preinit hooks, IFUNC resolvers,
 * constructors of the libraries it links).  So the child is confined before
 * exec as tightly as loading a program allows: Landlock lets it read the
 * system library directories and execute only its own program and the ELF
 * interpreter, and write nothing (src/sandbox/); seccomp forbids sockets, new processes,
 * exec of anything but the program descriptor, and touching other processes.
 */

static void stage1_landlock(int exe)
{
    const struct sbx_grant grants[] = {
        {"/usr/lib", -1, SBX_READ_FILE | SBX_READ_DIR},
        {"/usr/lib64", -1, SBX_READ_FILE | SBX_READ_DIR},
        {"/lib", -1, SBX_READ_FILE | SBX_READ_DIR},
        {"/lib64", -1, SBX_READ_FILE | SBX_READ_DIR},
        {"/usr/local/lib", -1, SBX_READ_FILE | SBX_READ_DIR},
        {"/etc/ld.so.cache", -1, SBX_READ_FILE},
        {"/proc", -1, SBX_READ_FILE | SBX_READ_DIR}, /* sanitizer runtimes read /proc/self */
        {NULL, exe, SBX_EXECUTE | SBX_READ_FILE},
        {"/lib64/ld-linux-x86-64.so.2", -1, SBX_EXECUTE | SBX_READ_FILE},
    };
    int rc = sbx_landlock(grants, sizeof(grants) / sizeof(grants[0]));
    if (rc < 0) {
        errno = -rc;
        child_fail("stage-1 Landlock");
    }
}

static void stage1_seccomp(int exe)
{
    /* TRAP, not KILL: with no handler it kills just the same, and once the
     * runtime's handler is in place the supervisor learns which call. */
    scmp_filter_ctx f = seccomp_init(SCMP_ACT_ALLOW);
    if (!f)
        child_fail("seccomp_init");
    static const int deny[] = {SCMP_SYS(socket),
                               SCMP_SYS(socketpair),
                               SCMP_SYS(connect),
                               SCMP_SYS(bind),
                               SCMP_SYS(listen),
                               SCMP_SYS(accept),
                               SCMP_SYS(accept4),
                               SCMP_SYS(sendmsg),
                               SCMP_SYS(fork),
                               SCMP_SYS(vfork),
                               SCMP_SYS(execve),
                               SCMP_SYS(ptrace),
                               SCMP_SYS(process_vm_readv),
                               SCMP_SYS(process_vm_writev),
                               SCMP_SYS(mount),
                               SCMP_SYS(umount2),
                               SCMP_SYS(pivot_root),
                               SCMP_SYS(chroot),
                               SCMP_SYS(unshare),
                               SCMP_SYS(setns),
                               SCMP_SYS(bpf),
                               SCMP_SYS(perf_event_open),
                               SCMP_SYS(keyctl),
                               SCMP_SYS(add_key),
                               SCMP_SYS(request_key),
                               SCMP_SYS(userfaultfd),
                               SCMP_SYS(io_uring_setup),
                               SCMP_SYS(pidfd_open),
                               SCMP_SYS(pidfd_send_signal),
                               SCMP_SYS(pidfd_getfd),
                               SCMP_SYS(kcmp),
                               SCMP_SYS(fanotify_init),
                               SCMP_SYS(open_by_handle_at),
                               SCMP_SYS(ioperm),
                               SCMP_SYS(iopl),
                               SCMP_SYS(tkill),
                               SCMP_SYS(rt_sigqueueinfo),
                               SCMP_SYS(rt_tgsigqueueinfo)};
    scmp_datum_t self = (scmp_datum_t)getpid();
    const struct sbx_rule rules[] = {
        {SCMP_SYS(clone), SCMP_ACT_TRAP, 1, {SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, 0)}},
        {SCMP_SYS(clone3), SCMP_ACT_ERRNO(ENOSYS), 0, {{0}}},
        {SCMP_SYS(kill), SCMP_ACT_TRAP, 1, {SCMP_A0_32(SCMP_CMP_NE, self)}},
        {SCMP_SYS(tgkill), SCMP_ACT_TRAP, 1, {SCMP_A0_32(SCMP_CMP_NE, self)}},
        /* The one exec allowed is ours: the program descriptor, empty path. */
        {SCMP_SYS(execveat), SCMP_ACT_TRAP, 1, {SCMP_A0_32(SCMP_CMP_NE, (scmp_datum_t)exe)}},
        {SCMP_SYS(execveat), SCMP_ACT_TRAP, 1, {SCMP_A4_32(SCMP_CMP_NE, AT_EMPTY_PATH)}},
    };
    int rc = sbx_seccomp_add(f, SCMP_ACT_TRAP, deny, sizeof(deny) / sizeof(deny[0]), rules,
                             sizeof(rules) / sizeof(rules[0]));
    rc = rc ?: seccomp_load(f);
    seccomp_release(f);
    if (rc) {
        errno = -rc;
        child_fail("stage-1 seccomp filter");
    }
}

static void child_fail(const char *what)
{
    char buf[256];
    int n = snprintf(buf, sizeof(buf), "devmux: cannot start component: %s: %s\n", what,
                     strerror(errno));
    (void)!write(2, buf, (size_t)n);
    _exit(127);
}

/* Runs in the child between fork and exec: only async-signal-safe calls. */
static void child(struct sup *s, struct comp *c, const struct grants *g, int boot_fd, int ctrl_fd,
                  int log_fd, int prog_fd, char *const envp[], const struct lim_start *ls)
{
    setpgid(0, 0); /* the terminal's Ctrl-C goes to the supervisor only */
    /* Into its groups and under its rlimits first, while still root (a
     * component uid cannot write cgroup files): nothing it runs, not even
     * the dynamic loader, is outside its quota. */
    if (sup_limits_enter(ls))
        child_fail("entering its CPU, memory and thread limits");
    /* The supervisor blocks the signals it takes through signalfd; a
     * component starts with none blocked and default dispositions. */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    /* Move every grant out of the way, then down to its fixed number. */
    int high[MAX_GRANTS + 4];
    int fixed_src[4] = {boot_fd, ctrl_fd, c->stats_fd, prog_fd};
    for (int i = 0; i < g->n; i++)
        if ((high[i] = fcntl(g->src[i], F_DUPFD_CLOEXEC, 1024)) < 0)
            child_fail("fcntl");
    for (int i = 0; i < 4; i++)
        if ((high[g->n + i] = fcntl(fixed_src[i], F_DUPFD_CLOEXEC, 1024)) < 0)
            child_fail("fcntl");
    if (dup2(s->devnull, 0) < 0 || dup2(log_fd, 1) < 0 || dup2(log_fd, 2) < 0)
        child_fail("dup2");
    if (dup2(high[g->n], DMX_FD_BOOT) < 0 || dup2(high[g->n + 1], DMX_FD_CTRL) < 0 ||
        dup2(high[g->n + 2], DMX_FD_STATS) < 0)
        child_fail("dup2");
    for (int i = 0; i < g->n; i++)
        if (dup2(high[i], DMX_FD_FIRST + i) < 0)
            child_fail("dup2");
    int exe = DMX_FD_FIRST + g->n;
    if (dup3(high[g->n + 3], exe, O_CLOEXEC) < 0)
        child_fail("dup3");
    syscall(SYS_close_range, exe + 1, ~0u, 0);

    struct rlimit nocore = {0, 0};
    setrlimit(RLIMIT_CORE, &nocore);
    if (geteuid() == 0) {
        /* Root starts components under a uid of their own with no
         * capabilities: empty the bounding and ambient sets first, since the
         * uid change only clears the permitted and effective ones. */
        for (int cap = 0; cap <= 63; cap++)
            if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) && errno == EINVAL)
                break;
        prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
        uid_t uid = s->uid_base + (uid_t)c->idx;
        if (setgroups(0, NULL) || setresgid(uid, uid, uid) || setresuid(uid, uid, uid))
            child_fail("dropping root");
    }
    /* Set after the uid change, which clears it. */
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
        child_fail("no_new_privs");
    stage1_landlock(exe);
    stage1_seccomp(exe);
    char *argv[] = {(char *)c->def->name, NULL};
    syscall(SYS_execveat, exe, "", argv, envp, AT_EMPTY_PATH);
    child_fail(c->def->program_path);
}

/* Sanitizer runtimes in a component must not try to open files, fork a
 * symbolizer or ptrace at exit: the sandbox would kill them for it. */
static void build_env(char **envp, char *asan, size_t asan_len, char *ubsan, size_t ubsan_len)
{
    const char *a = getenv("ASAN_OPTIONS"), *u = getenv("UBSAN_OPTIONS");
    snprintf(asan, asan_len,
             "ASAN_OPTIONS=%s%sdetect_leaks=0:handle_segv=0:handle_sigbus=0:"
             "handle_abort=0:symbolize=0",
             a ? a : "", a && *a ? ":" : "");
    snprintf(ubsan, ubsan_len, "UBSAN_OPTIONS=%s%ssymbolize=0", u ? u : "", u && *u ? ":" : "");
    envp[0] = "PATH=/usr/bin:/bin";
    envp[1] = asan;
    envp[2] = ubsan;
    envp[3] = NULL;
}

int sup_spawn(struct sup *s, struct comp *c)
{
    struct dmx_boot *b = xmalloc(sizeof(*b));
    struct grants g = {.n = 0};
    int owned[MICROKIT_MAX_CHANNELS + DMX_MAX_DEVICES], nowned = 0;
    int sv[2] = {-1, -1}, lp[2] = {-1, -1}, boot_fd = -1, prog_fd = -1;
    int rc = -1;

    build_boot(s, c, b, &g, owned, &nowned);
    boot_fd = make_boot_fd(b);
    prog_fd = open(c->def->program_path, O_PATH | O_CLOEXEC);
    if (boot_fd < 0 || prog_fd < 0 || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) ||
        pipe2(lp, O_CLOEXEC)) {
        sup_comp_log(c, "cannot start '%s': %s", c->def->name, strerror(errno));
        goto out;
    }
    char asan[512], ubsan[512], *envp[4];
    build_env(envp, asan, sizeof(asan), ubsan, sizeof(ubsan));
    struct lim_start ls;
    if (sup_limits_prepare(s, c, &ls))
        goto out;

    pid_t pid = fork();
    if (pid == 0)
        child(s, c, &g, boot_fd, sv[1], lp[1], prog_fd, envp, &ls);
    sup_limits_release(&ls);
    if (pid < 0) {
        sup_comp_log(c, "cannot start '%s': fork: %s", c->def->name, strerror(errno));
        goto out;
    }

    /* Both sides set the group, so a kill(-pid) can never miss the child. */
    setpgid(pid, pid);
    c->pid = pid;
    c->state = COMP_STARTING;
    c->started_ns = now_ns();
    c->syscall_nr = -1;
    c->ctrl_fd = sv[0];
    c->log_fd = lp[0];
    c->loglen = 0;
    sv[0] = lp[0] = -1;
    fcntl(c->log_fd, F_SETFL, O_NONBLOCK);
    fcntl(c->ctrl_fd, F_SETFL, O_NONBLOCK);
    sup_comp_log(c, "started '%s' (pid %d%s)", c->def->name, pid, c->restarts ? ", restarted" : "");
    rc = 0;
out:
    for (int i = 0; i < nowned; i++)
        close(owned[i]);
    for (int i = 0; i < 2; i++) {
        if (sv[i] >= 0)
            close(sv[i]);
        if (lp[i] >= 0)
            close(lp[i]);
    }
    if (boot_fd >= 0)
        close(boot_fd);
    if (prog_fd >= 0)
        close(prog_fd);
    free(b);
    return rc;
}
