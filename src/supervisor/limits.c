/*
 * A component's share of the machine: its CPU budget and weight, its memory
 * quota (the regions it maps plus a private allowance) and its bound on
 * tasks, applied before its program runs and read back for `ctl status`.
 *
 * Where the host has cgroups (v1 hierarchies, or the v2 unified one) every
 * component gets a group of its own under the supervisor's own group:
 * <own>/devmux-<system>-<pid>/<component>, kept across its restarts and
 * removed at shutdown.  The child places itself there between fork and exec,
 * while it is still root (src/supervisor/spawn.c), so not one instruction of
 * the program runs outside it.  Where a controller is missing or not
 * writable, rlimits and nice stand in for it, with what that cannot do said
 * once at start.
 */
#include "supervisor/supervisor.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"

/* Defaults for whatever neither the description nor the component's class
 * set.  No CPU cap: a driver or a stack that is not known to need less must
 * not be slowed, and under contention the weights keep shares fair; classes
 * cap their clients.  256 MiB private memory and 64 tasks are far above what
 * any component here needs and far below what would hurt the host. */
#define DEF_PERIOD_US 100000u
#define DEF_WEIGHT    100u
#define DEF_MEMORY    (256ull << 20)
#define DEF_THREADS   64u

/* An ASan component keeps shadow memory, a 256 MiB quarantine of freed
 * blocks and allocator metadata on top of what it uses itself. */
#define ASAN_MEM_FACTOR 4ull
#define ASAN_MEM_EXTRA  (256ull << 20)

#if defined(__SANITIZE_ADDRESS__)
#define ASAN_BUILD 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ASAN_BUILD 1
#endif
#endif
#ifndef ASAN_BUILD
#define ASAN_BUILD 0
#endif

static const char *const ctrl_name[LIM_NCTRL] = {"cpu", "cpuacct", "memory", "pids"};

const char *lim_mech_name(enum lim_mech m)
{
    switch (m) {
    case LIM_NONE:
        return "none";
    case LIM_RLIMIT:
        return "rlimit";
    case LIM_CGROUP1:
        return "cgroup-v1";
    case LIM_CGROUP2:
        return "cgroup-v2";
    }
    return "?";
}

/* ---- small file helpers --------------------------------------------------- */

static int write_file(const char *dir, const char *file, const char *val)
{
    char path[LIM_PATH + 64];
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = write(fd, val, strlen(val));
    int err = n < 0 ? -errno : 0;
    close(fd);
    return err;
}

static int read_file(const char *dir, const char *file, char *buf, size_t len)
{
    char path[LIM_PATH + 64];
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, buf, len - 1);
    int err = n < 0 ? -errno : 0;
    close(fd);
    buf[n > 0 ? n : 0] = 0;
    return err;
}

static bool read_u64(const char *dir, const char *file, uint64_t *v)
{
    char buf[64];
    if (!dir[0] || read_file(dir, file, buf, sizeof(buf)))
        return false;
    char *end;
    *v = strtoull(buf, &end, 10);
    return end != buf;
}

/* "key value" lines (memory.events, memory.oom_control, cpu.stat). */
static bool read_key(const char *dir, const char *file, const char *key, uint64_t *v)
{
    char buf[4096];
    if (!dir[0] || read_file(dir, file, buf, sizeof(buf)))
        return false;
    size_t kl = strlen(key);
    for (char *line = buf; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
        if (!strncmp(line, key, kl) && line[kl] == ' ') {
            *v = strtoull(line + kl + 1, NULL, 10);
            return true;
        }
    return false;
}

static bool has_word(const char *list, const char *word, const char *seps)
{
    size_t wl = strlen(word);
    for (const char *p = list; *p;) {
        size_t n = strcspn(p, seps);
        if (n == wl && !strncmp(p, word, wl))
            return true;
        p += n;
        p += strspn(p, seps);
    }
    return false;
}

/* ---- finding our own groups ------------------------------------------------ */

/* From /proc/self/cgroup: the path of our group in the v1 hierarchy holding
 * controller ctrl, or in the v2 hierarchy (ctrl NULL). */
static bool own_path(const char *ctrl, char *out, size_t len)
{
    FILE *f = fopen("/proc/self/cgroup", "re");
    char line[1024];
    bool found = false;
    while (f && !found && fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = 0;
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2)
            continue;
        *c2 = 0;
        const char *ctrls = c1 + 1;
        if (ctrl ? has_word(ctrls, ctrl, ",") : (!strcmp(line, "0") && !*ctrls)) {
            snprintf(out, len, "%s", c2 + 1);
            found = true;
        }
    }
    if (f)
        fclose(f);
    return found;
}

/* From /proc/self/mountinfo: where the hierarchy is mounted, and which of
 * its paths the mount shows at its root (not "/" when a container
 * bind-mounts its own subtree). */
static bool mount_of(const char *ctrl, char *mnt, size_t mlen, char *root, size_t rlen)
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    char line[2048];
    bool found = false;
    while (f && !found && fgets(line, sizeof(line), f)) {
        char r[1024], m[1024], type[64], opts[1024];
        char *dash = strstr(line, " - ");
        if (!dash || sscanf(line, "%*s %*s %*s %1023s %1023s", r, m) != 2 ||
            sscanf(dash + 3, "%63s %*s %1023s", type, opts) != 2)
            continue;
        if (ctrl ? strcmp(type, "cgroup") || !has_word(opts, ctrl, ",")
                 : strcmp(type, "cgroup2") != 0)
            continue;
        snprintf(mnt, mlen, "%s", m);
        snprintf(root, rlen, "%s", r);
        found = true;
    }
    if (f)
        fclose(f);
    return found;
}

/* The directory of our own group: mount point plus our path below the
 * mount's root. */
static bool own_dir(const char *ctrl, char *out, size_t len)
{
    char path[1024], mnt[1024], root[1024];
    if (!own_path(ctrl, path, sizeof(path)) ||
        !mount_of(ctrl, mnt, sizeof(mnt), root, sizeof(root)))
        return false;
    const char *rel = path;
    size_t rl = strlen(root);
    if (strcmp(root, "/") && !strncmp(path, root, rl) && (path[rl] == '/' || !path[rl]))
        rel = path + rl;
    if (!strcmp(rel, "/"))
        rel = "";
    return snprintf(out, len, "%s%s", mnt, rel) < (int)len;
}

/* ---- group directories ---------------------------------------------------- */

/* A group name from a component name: cgroup names are path components, so
 * anything but [A-Za-z0-9._-] (and a name of dots) becomes '_' plus the
 * index, which keeps names unique. */
static void group_name(const struct comp *c, char *out, size_t len)
{
    const char *n = c->def->name;
    size_t k = 0;
    bool changed = !*n || strspn(n, ".") == strlen(n);
    for (; *n && k + 1 < len; n++) {
        bool ok = (*n >= 'a' && *n <= 'z') || (*n >= 'A' && *n <= 'Z') ||
                  (*n >= '0' && *n <= '9') || *n == '.' || *n == '_' || *n == '-';
        out[k++] = ok && !(changed && *n == '.') ? *n : '_';
        changed |= !ok;
    }
    out[k] = 0;
    if (changed)
        snprintf(out + k, len - k, "-%d", c->idx);
}

static void comp_dir(const struct sup *s, const struct comp *c, int ctrl, char *out, size_t len)
{
    char name[128];
    out[0] = 0;
    if (!s->lim.dir[ctrl][0])
        return;
    group_name(c, name, sizeof(name));
    snprintf(out, len, "%s/%s", s->lim.dir[ctrl], name);
}

/* Removes a group and the groups in it (the component groups, or in v2
 * the supervisor's leaf).  Only empty groups can go; a process still in one
 * leaves it (and says so). */
static void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char sub[LIM_PATH + 300];
    while (d && (e = readdir(d)))
        if (e->d_type == DT_DIR && e->d_name[0] != '.') {
            snprintf(sub, sizeof(sub), "%s/%s", dir, e->d_name);
            if (rmdir(sub) && errno != ENOENT)
                sup_log("limits: cannot remove group %s: %s", sub, strerror(errno));
        }
    if (d)
        closedir(d);
    if (rmdir(dir) && errno != ENOENT)
        sup_log("limits: cannot remove group %s: %s", dir, strerror(errno));
}

/* Groups of an earlier supervisor of the same system that was killed
 * before it could remove them. */
static void remove_stale(const char *own, const char *system)
{
    char prefix[128];
    snprintf(prefix, sizeof(prefix), "devmux-%s-", system);
    DIR *d = opendir(own);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (strncmp(e->d_name, prefix, strlen(prefix)))
            continue;
        char *end;
        long pid = strtol(e->d_name + strlen(prefix), &end, 10);
        if (*end || pid <= 0 || pid == getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        char dir[LIM_PATH];
        if (snprintf(dir, sizeof(dir), "%s/%s", own, e->d_name) < (int)sizeof(dir))
            remove_tree(dir);
    }
    if (d)
        closedir(d);
}

/* ---- effective limits ------------------------------------------------------ */

static void effective(const struct sup *s, struct comp *c)
{
    struct sdf_limits e = c->def->limits;
    if (!e.has_cpu) {
        e.cpu_budget_us = 0;
        e.cpu_period_us = DEF_PERIOD_US;
    }
    if (!e.cpu_period_us)
        e.cpu_period_us = DEF_PERIOD_US;
    if (!e.has_weight || !e.weight)
        e.weight = DEF_WEIGHT;
    if (!e.has_memory)
        e.memory = DEF_MEMORY;
    if (!e.has_threads || !e.threads)
        e.threads = DEF_THREADS;
    if (ASAN_BUILD)
        e.memory = e.memory * ASAN_MEM_FACTOR + ASAN_MEM_EXTRA;
    c->lim.eff = e;
    c->lim.sample_wall = now_ns();
    c->lim.use_pct = -1;
    /* Each region the component maps counts once: the pages it touches are
     * charged to whoever touched them first, so this is an upper bound. */
    uint64_t regions = 0;
    for (size_t r = 0; r < s->sys->nregions; r++)
        for (size_t m = 0; m < s->sys->regions[r].nmaps; m++)
            if (s->sys->regions[r].maps[m].comp == c->idx) {
                regions += s->sys->regions[r].size;
                break;
            }
    c->lim.regions = regions;
    c->lim.quota = regions + e.memory;
}

/* nice for a weight, as CFS weighs nice levels: each step is 1.25x. */
static int nice_of(uint32_t weight)
{
    int nice = 0;
    for (uint64_t w = 100 * 1000; weight * 1000ull >= w * 5 / 4 && nice > -20; w = w * 5 / 4)
        nice--;
    for (uint64_t w = 100 * 1000; weight * 1000ull <= w * 4 / 5 && nice < 19; w = w * 4 / 5)
        nice++;
    return nice;
}

/* ---- applying ---------------------------------------------------------------- */

static int set(const struct comp *c, const char *dir, const char *file, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int set(const struct comp *c, const char *dir, const char *file, const char *fmt, ...)
{
    char val[64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(val, sizeof(val), fmt, ap);
    va_end(ap);
    int err = write_file(dir, file, val);
    if (err)
        sup_log("component '%s': cannot set %s to %s in %s: %s", c->def->name, file, val, dir,
                strerror(-err));
    return err;
}

static int apply_groups(struct sup *s, struct comp *c)
{
    const struct sdf_limits *e = &c->lim.eff;
    bool v2 = s->lim.version == 2;
    char dir[LIM_PATH + 200];
    int err = 0;
    for (int k = 0; k < LIM_NCTRL; k++) {
        comp_dir(s, c, k, dir, sizeof(dir));
        if (dir[0] && mkdir(dir, 0755) && errno != EEXIST) {
            sup_log("component '%s': cannot create group %s: %s", c->def->name, dir,
                    strerror(errno));
            return -1;
        }
    }
    if (s->lim.mech[LIM_RES_CPU] >= LIM_CGROUP1) {
        comp_dir(s, c, LIM_CPU, dir, sizeof(dir));
        if (v2) {
            err = err
                      ?: e->cpu_budget_us
                         ? set(c, dir, "cpu.max", "%u %u", e->cpu_budget_us, e->cpu_period_us)
                         : set(c, dir, "cpu.max", "max %u", e->cpu_period_us);
            err = err ?: set(c, dir, "cpu.weight", "%u", e->weight);
        } else {
            err = err ?: set(c, dir, "cpu.cfs_period_us", "%u", e->cpu_period_us);
            err = err
                      ?: e->cpu_budget_us ? set(c, dir, "cpu.cfs_quota_us", "%u", e->cpu_budget_us)
                                          : set(c, dir, "cpu.cfs_quota_us", "-1");
            /* v1 shares: 1024 is normal (our weight 100), 2..262144 */
            uint64_t shares = (uint64_t)e->weight * 1024 / 100;
            err = err
                      ?: set(c, dir, "cpu.shares", "%" PRIu64,
                             shares < 2        ? 2
                             : shares > 262144 ? 262144
                                               : shares);
        }
    }
    if (s->lim.mech[LIM_RES_MEMORY] >= LIM_CGROUP1) {
        comp_dir(s, c, LIM_MEMORY, dir, sizeof(dir));
        if (v2) {
            err = err ?: set(c, dir, "memory.max", "%" PRIu64, c->lim.quota);
            /* Over quota must mean an OOM kill in this group, not swapping
             * (absent without swap accounting: then there is none to use). */
            write_file(dir, "memory.swap.max", "0");
        } else {
            err = err ?: set(c, dir, "memory.limit_in_bytes", "%" PRIu64, c->lim.quota);
            write_file(dir, "memory.swappiness", "0");
            /* With swap accounting, swap counts too (absent otherwise). */
            char q[32];
            snprintf(q, sizeof(q), "%" PRIu64, c->lim.quota);
            write_file(dir, "memory.memsw.limit_in_bytes", q);
        }
    }
    if (s->lim.mech[LIM_RES_THREADS] >= LIM_CGROUP1) {
        comp_dir(s, c, LIM_PIDS, dir, sizeof(dir));
        err = err ?: set(c, dir, "pids.max", "%u", e->threads);
    }
    return err ? -1 : 0;
}

/* v1: one group per hierarchy we use, each under our own group there. */
static void detect_v1(struct sup *s, char *why, size_t wlen)
{
    for (int k = 0; k < LIM_NCTRL; k++) {
        char own[LIM_PATH - 64], dir[LIM_PATH];
        if (!own_dir(ctrl_name[k], own, sizeof(own)))
            continue;
        remove_stale(own, s->sys->name);
        snprintf(dir, sizeof(dir), "%s/devmux-%s-%d", own, s->sys->name, (int)getpid());
        /* cpu and cpuacct may share a hierarchy: then one group serves. */
        bool same = false;
        for (int j = 0; j < k; j++)
            same |= !strcmp(s->lim.dir[j], dir);
        if (!same && mkdir(dir, 0755) && errno != EEXIST) {
            size_t l = strlen(why);
            snprintf(why + l, wlen - l, "%s%s: %s", l ? "; " : "", dir, strerror(errno));
            continue;
        }
        snprintf(s->lim.dir[k], sizeof(s->lim.dir[k]), "%s", dir);
    }
    if (s->lim.dir[LIM_CPU][0] || s->lim.dir[LIM_MEMORY][0] || s->lim.dir[LIM_PIDS][0])
        s->lim.version = 1;
}

/* v2: cpu, memory and pids must be enabled for our group's children and for
 * the children of devmux-<system>-<pid>.  A group with processes cannot
 * enable controllers for children ("no internal processes"), so if ours
 * refuses, the supervisor moves into a leaf of its own and tries again. */
static void detect_v2(struct sup *s, char *why, size_t wlen)
{
    char own[LIM_PATH - 64], ctrls[256], sub[256], dir[LIM_PATH - 16];
    if (!own_dir(NULL, own, sizeof(own)) ||
        read_file(own, "cgroup.controllers", ctrls, sizeof(ctrls)))
        return;
    const char *want[] = {"cpu", "memory", "pids"};
    char enable[64] = "";
    for (int i = 0; i < 3; i++)
        if (has_word(ctrls, want[i], " \n"))
            snprintf(enable + strlen(enable), sizeof(enable) - strlen(enable), "%s+%s",
                     enable[0] ? " " : "", want[i]);
    if (!enable[0]) {
        snprintf(why, wlen, "%s/cgroup.controllers offers none of cpu, memory, pids", own);
        return;
    }
    remove_stale(own, s->sys->name);
    snprintf(dir, sizeof(dir), "%s/devmux-%s-%d", own, s->sys->name, (int)getpid());
    if (mkdir(dir, 0755) && errno != EEXIST) {
        snprintf(why, wlen, "%s: %s", dir, strerror(errno));
        return;
    }
    int err = 0;
    bool already = !read_file(own, "cgroup.subtree_control", sub, sizeof(sub));
    for (int i = 0; i < 3; i++)
        if (has_word(enable, want[i], " +"))
            already &= has_word(sub, want[i], " \n");
    if (!already && (err = write_file(own, "cgroup.subtree_control", enable)) == -EBUSY) {
        snprintf(s->lim.sup_leaf, sizeof(s->lim.sup_leaf), "%s/supervisor", dir);
        snprintf(s->lim.sup_home, sizeof(s->lim.sup_home), "%s", own);
        if ((mkdir(s->lim.sup_leaf, 0755) && errno != EEXIST) ||
            (err = write_file(s->lim.sup_leaf, "cgroup.procs", "0")) ||
            (err = write_file(own, "cgroup.subtree_control", enable))) {
            if (!err)
                err = -errno;
            write_file(own, "cgroup.procs", "0");
            s->lim.sup_leaf[0] = 0;
        } else {
            /* What we enabled is taken back at shutdown so we can return. */
            snprintf(s->lim.sup_enabled, sizeof(s->lim.sup_enabled), "%s", enable);
        }
    }
    if (!err)
        err = write_file(dir, "cgroup.subtree_control", enable);
    if (err) {
        snprintf(why, wlen, "enabling %s under %s: %s", enable, own, strerror(-err));
        remove_tree(dir);
        return;
    }
    s->lim.version = 2;
    snprintf(s->lim.dir[LIM_CPU], LIM_PATH, "%s", strstr(enable, "cpu") ? dir : "");
    snprintf(s->lim.dir[LIM_CPUACCT], LIM_PATH, "%s", strstr(enable, "cpu") ? dir : "");
    snprintf(s->lim.dir[LIM_MEMORY], LIM_PATH, "%s", strstr(enable, "memory") ? dir : "");
    snprintf(s->lim.dir[LIM_PIDS], LIM_PATH, "%s", strstr(enable, "pids") ? dir : "");
}

int sup_limits_setup(struct sup *s)
{
    char why[1024] = "";
    const char *force = getenv("DEVMUX_LIMITS");
    bool rlimits_only = force && !strcmp(force, "rlimit");
    if (force && *force && !rlimits_only && strcmp(force, "auto")) {
        sup_log("DEVMUX_LIMITS='%s' is not understood; expected 'auto' or 'rlimit'", force);
        return -1;
    }
    if (rlimits_only) {
        snprintf(why, sizeof(why), "DEVMUX_LIMITS=rlimit");
    } else if (geteuid() != 0) {
        snprintf(why, sizeof(why), "not root");
    } else {
        /* A hierarchy of v1 for memory means this host splits its
         * controllers the old way; otherwise the unified one. */
        char probe[LIM_PATH];
        if (own_dir("memory", probe, sizeof(probe)) || own_dir("cpu", probe, sizeof(probe)))
            detect_v1(s, why, sizeof(why));
        else
            detect_v2(s, why, sizeof(why));
    }
    enum lim_mech cg = s->lim.version == 2 ? LIM_CGROUP2 : LIM_CGROUP1;
    s->lim.mech[LIM_RES_CPU] = s->lim.dir[LIM_CPU][0] ? cg : LIM_RLIMIT;
    s->lim.mech[LIM_RES_MEMORY] = s->lim.dir[LIM_MEMORY][0] ? cg
                                  : ASAN_BUILD              ? LIM_NONE
                                                            : LIM_RLIMIT;
    s->lim.mech[LIM_RES_THREADS] = s->lim.dir[LIM_PIDS][0] ? cg
                                   : geteuid() == 0        ? LIM_RLIMIT
                                                           : LIM_NONE;
    static const char *const what[LIM_RES_N][4] = {
        {"cpu: no budget, no weight", "cpu: nice from the weight, budget not enforced",
         "cpu: cgroup v1 (cpu.cfs_quota_us, cpu.shares)", "cpu: cgroup v2 (cpu.max, cpu.weight)"},
        {"memory: not enforced (ASan reserves more address space than any rlimit allows)",
         "memory: RLIMIT_DATA (private writable mappings; regions not counted)",
         "memory: cgroup v1 (memory.limit_in_bytes)", "memory: cgroup v2 (memory.max)"},
        {"threads: not enforced (not root: components share our uid)",
         "threads: RLIMIT_NPROC (one uid per component)", "threads: cgroup v1 (pids.max)",
         "threads: cgroup v2 (pids.max)"},
    };
    char base[LIM_PATH + 8] = "";
    for (int k = 0; k < LIM_NCTRL && !base[0]; k++)
        if (s->lim.dir[k][0])
            snprintf(base, sizeof(base), " under %s", s->lim.dir[k]);
    sup_log("limits: %s; %s; %s%s%s%s%s%s", what[0][s->lim.mech[0]], what[1][s->lim.mech[1]],
            what[2][s->lim.mech[2]], base,
            s->lim.sup_leaf[0] ? " (supervisor moved to its own leaf)" : "",
            why[0] ? "; cgroups not used: " : "", why,
            ASAN_BUILD ? "; ASan build: memory allowances x4 + 256 MiB" : "");
    uint64_t weights = 0;
    for (size_t i = 0; i < s->sys->ncomps; i++) {
        struct comp *c = &s->comps[i];
        effective(s, c);
        weights += c->lim.eff.weight;
        if (s->lim.version && apply_groups(s, c))
            return -1;
    }
    /* The system's own group weighs what its components would weigh as
     * separate processes; left at the default, the whole system would get
     * one process's share of a busy host. */
    if (s->lim.mech[LIM_RES_CPU] >= LIM_CGROUP1) {
        char val[32];
        uint64_t shares = weights * 1024 / 100;
        if (s->lim.version == 2)
            snprintf(val, sizeof(val), "%" PRIu64, weights > 10000 ? 10000 : weights);
        else
            snprintf(val, sizeof(val), "%" PRIu64, shares > 262144 ? 262144 : shares);
        int err =
            write_file(s->lim.dir[LIM_CPU], s->lim.version == 2 ? "cpu.weight" : "cpu.shares", val);
        if (err)
            sup_log("limits: cannot set the weight of %s to %s: %s", s->lim.dir[LIM_CPU], val,
                    strerror(-err));
    }
    return 0;
}

void sup_limits_teardown(struct sup *s)
{
    for (int k = 0; k < LIM_NCTRL; k++) {
        bool same = false;
        for (int j = 0; j < k; j++)
            same |= !strcmp(s->lim.dir[j], s->lim.dir[k]);
        if (!s->lim.dir[k][0] || same)
            continue;
        if (k == LIM_CPU && s->lim.sup_leaf[0]) {
            /* v2: back to where we came from, which must first stop
             * enabling controllers for its children to take a process. */
            char off[64] = "";
            for (const char *p = s->lim.sup_enabled; *p; p++)
                snprintf(off + strlen(off), sizeof(off) - strlen(off), "%c", *p == '+' ? '-' : *p);
            write_file(s->lim.sup_home, "cgroup.subtree_control", off);
            if (write_file(s->lim.sup_home, "cgroup.procs", "0"))
                sup_log("limits: cannot return to %s; %s stays until the next start",
                        s->lim.sup_home, s->lim.dir[k]);
        }
        remove_tree(s->lim.dir[k]);
    }
    memset(s->lim.dir, 0, sizeof(s->lim.dir));
}

/* ---- one start of a component ----------------------------------------------- */

static const char *oom_file(const struct sup *s)
{
    return s->lim.version == 2 ? "memory.events" : "memory.oom_control";
}

int sup_limits_prepare(struct sup *s, struct comp *c, struct lim_start *st)
{
    char dir[LIM_PATH + 200];
    for (int k = 0; k < LIM_NCTRL; k++)
        st->procs_fd[k] = -1;
    st->nice = nice_of(c->lim.eff.weight);
    st->rl_data = s->lim.mech[LIM_RES_MEMORY] == LIM_RLIMIT ? c->lim.eff.memory : 0;
    st->rl_nproc = s->lim.mech[LIM_RES_THREADS] == LIM_RLIMIT ? c->lim.eff.threads : 0;
    st->use_nice = s->lim.mech[LIM_RES_CPU] == LIM_RLIMIT && geteuid() == 0;
    for (int k = 0; k < LIM_NCTRL; k++) {
        bool same = false;
        for (int j = 0; j < k; j++)
            same |= !strcmp(s->lim.dir[j], s->lim.dir[k]);
        comp_dir(s, c, k, dir, sizeof(dir));
        if (!dir[0] || same)
            continue;
        char path[LIM_PATH + 240];
        snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
        st->procs_fd[k] = open(path, O_WRONLY | O_CLOEXEC);
        if (st->procs_fd[k] < 0) {
            sup_comp_log(c, "cannot start '%s': opening %s: %s", c->def->name, path,
                         strerror(errno));
            sup_limits_release(st);
            return -1;
        }
    }
    comp_dir(s, c, LIM_MEMORY, dir, sizeof(dir));
    c->lim.oom_base = 0;
    if (dir[0])
        read_key(dir, oom_file(s), "oom_kill", &c->lim.oom_base);
    return 0;
}

void sup_limits_release(struct lim_start *st)
{
    for (int k = 0; k < LIM_NCTRL; k++)
        if (st->procs_fd[k] >= 0) {
            close(st->procs_fd[k]);
            st->procs_fd[k] = -1;
        }
}

/* In the child, between fork and exec, while still root: async-signal-safe
 * calls only.  Writing "0" to cgroup.procs moves the writer itself. */
int sup_limits_enter(const struct lim_start *st)
{
    for (int k = 0; k < LIM_NCTRL; k++)
        if (st->procs_fd[k] >= 0 && write(st->procs_fd[k], "0", 1) != 1)
            return -1;
    if (st->rl_data) {
        struct rlimit r = {st->rl_data, st->rl_data};
        if (setrlimit(RLIMIT_DATA, &r))
            return -1;
    }
    if (st->rl_nproc) {
        struct rlimit r = {st->rl_nproc, st->rl_nproc};
        if (setrlimit(RLIMIT_NPROC, &r))
            return -1;
    }
    if (st->use_nice && setpriority(PRIO_PROCESS, 0, st->nice))
        return -1;
    return 0;
}

bool sup_limits_over_quota(struct sup *s, struct comp *c)
{
    char dir[LIM_PATH + 200];
    uint64_t n;
    comp_dir(s, c, LIM_MEMORY, dir, sizeof(dir));
    return dir[0] && read_key(dir, oom_file(s), "oom_kill", &n) && n > c->lim.oom_base;
}

/* ---- reading use ----------------------------------------------------------- */

/* utime + stime of a live process, in ns. */
static bool proc_cpu_ns(pid_t pid, uint64_t *ns)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d", (int)pid);
    if (pid <= 0 || read_file(path, "stat", buf, sizeof(buf)))
        return false;
    char *p = strrchr(buf, ')');
    unsigned long long ut, st;
    /* after the name: state ppid pgrp session tty tpgid flags minflt
     * cminflt majflt cmajflt utime stime */
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return false;
    *ns = (ut + st) * (1000000000ull / (uint64_t)sysconf(_SC_CLK_TCK));
    return true;
}

static bool proc_status(pid_t pid, const char *key, uint64_t *v)
{
    char path[64], buf[4096];
    snprintf(path, sizeof(path), "/proc/%d", (int)pid);
    if (pid <= 0 || read_file(path, "status", buf, sizeof(buf)))
        return false;
    char *p = strstr(buf, key);
    return p && sscanf(p + strlen(key), ": %" SCNu64, v) == 1;
}

/* CPU time of the component so far, in ns: its group's (all its runs) or
 * its live process's. */
static bool cpu_ns(const struct sup *s, const struct comp *c, uint64_t *ns)
{
    char dir[LIM_PATH + 200];
    comp_dir(s, c, LIM_CPUACCT, dir, sizeof(dir));
    if (s->lim.version == 1 && dir[0])
        return read_u64(dir, "cpuacct.usage", ns);
    if (s->lim.version == 2 && dir[0] && read_key(dir, "cpu.stat", "usage_usec", ns)) {
        *ns *= 1000;
        return true;
    }
    return proc_cpu_ns(c->pid, ns);
}

#define CPU_WINDOW_NS 1000000000ull

/* CPU use as % of one CPU, over the time since the last sample at least a
 * second old: status asked twice in a row shows the same figure rather than
 * noise over a few milliseconds. */
static double cpu_use(const struct sup *s, struct comp *c, double *window_s)
{
    uint64_t now = now_ns(), ns;
    struct comp_limits *l = &c->lim;
    bool proc = !(s->lim.version && s->lim.dir[LIM_CPUACCT][0]);
    if (!cpu_ns(s, c, &ns)) {
        *window_s = 0;
        return -1;
    }
    /* A group's count goes on across restarts, from zero when it was made
     * (sup_limits_setup); a restarted process starts at zero. */
    if (ns < l->sample_cpu || (proc && l->sample_pid != c->pid)) {
        l->sample_wall = c->started_ns;
        l->sample_cpu = 0;
        l->sample_pid = c->pid;
        l->use_pct = -1;
    }
    if (now - l->sample_wall >= CPU_WINDOW_NS || l->use_pct < 0) {
        l->use_pct = now > l->sample_wall
                         ? 100.0 * (double)(ns - l->sample_cpu) / (double)(now - l->sample_wall)
                         : 0;
        l->window_s = (double)(now - l->sample_wall) / 1e9;
        l->sample_wall = now;
        l->sample_cpu = ns;
    }
    *window_s = l->window_s;
    return l->use_pct;
}

static void fmt_bytes(char *buf, size_t len, uint64_t b)
{
    snprintf(buf, len, "%.1f MiB", (double)b / (1 << 20));
}

static void fmt_us(char *buf, size_t len, uint32_t us)
{
    if (us % 1000 == 0)
        snprintf(buf, len, "%ums", us / 1000);
    else
        snprintf(buf, len, "%uus", us);
}

void sup_limits_status(struct sup *s, struct comp *c, char *buf, size_t len)
{
    const struct sdf_limits *e = &c->lim.eff;
    char dir[LIM_PATH + 200], cpu[48] = "-", cap[64], b[16], p[16];
    char memu[32] = "-", quota[32], tasks[24] = "-";
    double window;
    double pct = cpu_use(s, c, &window);
    if (pct >= 0)
        snprintf(cpu, sizeof(cpu), "%.1f%% (over %.1fs)", pct, window);
    fmt_us(b, sizeof(b), e->cpu_budget_us);
    fmt_us(p, sizeof(p), e->cpu_period_us);
    if (!e->cpu_budget_us)
        snprintf(cap, sizeof(cap), "no cap");
    else
        snprintf(cap, sizeof(cap), "%.0f%% (%s/%s)%s", 100.0 * e->cpu_budget_us / e->cpu_period_us,
                 b, p, s->lim.mech[LIM_RES_CPU] >= LIM_CGROUP1 ? "" : " not enforced");

    uint64_t mem = 0, n = 0;
    comp_dir(s, c, LIM_MEMORY, dir, sizeof(dir));
    bool have_mem = s->lim.version == 1   ? read_u64(dir, "memory.usage_in_bytes", &mem)
                    : s->lim.version == 2 ? read_u64(dir, "memory.current", &mem)
                                          : false;
    if (!have_mem && proc_status(c->pid, "VmRSS", &mem)) {
        mem <<= 10;
        have_mem = true;
    }
    if (have_mem)
        fmt_bytes(memu, sizeof(memu), mem);
    fmt_bytes(quota, sizeof(quota), c->lim.quota);

    comp_dir(s, c, LIM_PIDS, dir, sizeof(dir));
    if ((dir[0] && read_u64(dir, "pids.current", &n)) || proc_status(c->pid, "Threads", &n))
        snprintf(tasks, sizeof(tasks), "%" PRIu64, n);

    snprintf(buf, len,
             "limits cpu %s of %s weight %u  memory %s of %s  tasks %s of %u  via %s/%s/%s", cpu,
             cap, e->weight, memu, quota, tasks, e->threads,
             lim_mech_name(s->lim.mech[LIM_RES_CPU]), lim_mech_name(s->lim.mech[LIM_RES_MEMORY]),
             lim_mech_name(s->lim.mech[LIM_RES_THREADS]));
}
