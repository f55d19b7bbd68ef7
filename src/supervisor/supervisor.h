/*
 * The supervisor: owns every resource of a running system (regions,
 * channels, the control socket), spawns one sandboxed process per
 * component, watches them and applies their fault policies.
 */
#ifndef DEVMUX_SUPERVISOR_H
#define DEVMUX_SUPERVISOR_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "runtime/abi.h"
#include "sdf/sdf.h"

enum comp_state {
    COMP_STARTING, /* spawned, init() not yet returned */
    COMP_RUNNING,
    COMP_BACKOFF, /* faulted; waiting to restart */
    COMP_HALTED,  /* faulted; policy says stay down */
    COMP_STOPPED, /* system shutting down */
};

struct read_budget {
    uint64_t tokens, last_ns;
    bool paused;        /* not watched until refilled */
    unsigned throttled; /* times it ran dry */
};

/* limits.c: how a component is held to its share of the machine. */
enum lim_mech { LIM_NONE, LIM_RLIMIT, LIM_CGROUP1, LIM_CGROUP2 };
enum lim_res { LIM_RES_CPU, LIM_RES_MEMORY, LIM_RES_THREADS, LIM_RES_N };
enum lim_ctrl { LIM_CPU, LIM_CPUACCT, LIM_MEMORY, LIM_PIDS, LIM_NCTRL }; /* cgroup controllers */
#define LIM_PATH 512

struct limits_host {
    int version; /* cgroup version in use: 0 (none), 1 or 2 */
    enum lim_mech mech[LIM_RES_N];
    char dir[LIM_NCTRL][LIM_PATH]; /* devmux-<system>-<pid> per controller, or "" */
    char sup_leaf[LIM_PATH];       /* v2: the leaf the supervisor moved into, or "" */
    char sup_home[LIM_PATH];       /* v2: the group it came from */
    char sup_enabled[64];          /* v2: controllers it enabled there */
};

struct comp_limits {
    struct sdf_limits eff;            /* after class and supervisor defaults (and ASan scaling) */
    uint64_t regions;                 /* bytes of the regions it maps */
    uint64_t quota;                   /* memory quota: regions + private allowance */
    uint64_t oom_base;                /* its group's OOM kills when this run started */
    uint64_t sample_wall, sample_cpu; /* last CPU sample for status */
    pid_t sample_pid;
    double use_pct, window_s;
};

/* What the child needs to enter its limits between fork and exec. */
struct lim_start {
    int procs_fd[LIM_NCTRL];    /* cgroup.procs of its groups, or -1 */
    uint64_t rl_data, rl_nproc; /* rlimits to set, 0: none */
    bool use_nice;
    int nice;
};

struct comp {
    const struct sdf_component *def;
    int idx;
    pid_t pid;
    enum comp_state state;
    unsigned restarts, crash_streak;
    uint64_t started_ns;
    int log_fd, ctrl_fd, stats_fd, timer_fd;
    int dev_fd[SDF_MAX_DEVICES]; /* devices kept across restarts (TAP), or -1 */
    struct dmx_stats *stats;
    int syscall_nr; /* forbidden syscall reported before death, or -1 */
    bool restart_requested;
    char last_fault[256];
    /* log line assembly and rate limiting */
    char logbuf[1024];
    size_t loglen;
    uint64_t log_window_ns;
    unsigned log_lines, log_dropped;
    /* What reading its pipe and socket may cost the supervisor: budgets
     * refilled over time; an empty one stops watching until the throttle
     * timer finds it refilled. */
    struct read_budget log_budget, ctrl_budget;
    /* the supervisor's own lines about it, rate-limited the same way */
    uint64_t sup_window_ns;
    unsigned sup_lines, sup_dropped;
    struct comp_limits lim;
};

struct region_rt {
    int fd, ro_fd;
};

struct chan_rt {
    int efd[2];  /* eventfd that end e reads its notifications from */
    int pend[2]; /* protected-call socket waiting for end e's next start */
    int caller;  /* end with pp: true, or -1 */
};

/* epoll tags: kind in the top byte, an index below. */
#define EV_SIGNAL   0x01000000u
#define EV_CTL      0x02000000u
#define EV_LOG      0x03000000u
#define EV_CTRL     0x04000000u
#define EV_TIMER    0x05000000u
#define EV_RETRY    0x06000000u
#define EV_QTEST    0x07000000u /* a machine's qtest socket: interrupts, EOF */
#define EV_QMP      0x08000000u /* a machine's QMP socket: events */
#define EV_HW       0x09000000u /* a driver's request socket: machine << 8 | device */
#define EV_THROTTLE 0x0a000000u /* re-watch component descriptors whose budget refilled */
#define EV_KIND     0xff000000u

struct machine_rt;

struct sup {
    struct sdf_system *sys;
    struct machine_rt *machines;
    struct comp *comps;
    struct region_rt *regions;
    struct chan_rt *chans;
    int epfd, sigfd, ctl_fd;
    int retry_fd;    /* timer: re-offer protected-call sockets a busy peer missed */
    int throttle_fd; /* timer: resume reading from components whose budget refilled */
    bool throttle_armed;
    char ctl_path[256];
    bool stopping;
    int exit_code;
    uint64_t stop_deadline_ns;
    uid_t uid_base;
    int devnull;
    struct limits_host lim;
};

/* resources.c */
int sup_create_resources(struct sup *s);
void sup_free_resources(struct sup *s);
int sup_ppc_take(struct sup *s, size_t ch, int end);

/* devices.c */
int sup_create_devices(struct sup *s);
int sup_device_open(struct sup *s, struct comp *c, size_t k, bool *owned);
/* Creates (or opens) the TAP interface d describes; owner names who wants
 * it in errors.  Returns the descriptor or -errno. */
int sup_open_tap(const char *owner, const struct sdf_device *d);
void sup_free_devices(struct sup *s);

/* netstat.c: writes `ctl net` for one network (or all: which == NULL);
 * returns how many matched. */
int sup_net_report(struct sup *s, const char *which, FILE *f);

/* limits.c */
int sup_limits_setup(struct sup *s);     /* detect, create groups, set values; logs one line */
void sup_limits_teardown(struct sup *s); /* after every component is gone */
int sup_limits_prepare(struct sup *s, struct comp *c, struct lim_start *st); /* before fork */
void sup_limits_release(struct lim_start *st);                               /* after fork */
int sup_limits_enter(const struct lim_start *st);          /* in the child, still root */
bool sup_limits_over_quota(struct sup *s, struct comp *c); /* its last run met an OOM kill */
void sup_limits_status(struct sup *s, struct comp *c, char *buf, size_t len);
const char *lim_mech_name(enum lim_mech m);

/* spawn.c */
int sup_spawn(struct sup *s, struct comp *c);

/* supervisor.c */
void sup_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A supervisor line about component c: rate-limited per component, so a
 * crash loop cannot flood the log. */
void sup_comp_log(struct comp *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sup_epoll_add(struct sup *s, int fd, uint32_t tag);
void sup_shutdown(struct sup *s, int code, const char *why);
int sup_send_ctrl(struct comp *c, const struct dmx_ctrl *m, int fd);
void sup_arm_retry(struct sup *s);
void sup_retry_deliveries(struct sup *s);
int sup_restart(struct sup *s, struct comp *c, const char *why);
const char *comp_state_name(enum comp_state st);

/* control.c */
int ctl_open(struct sup *s, const char *path);
void ctl_accept(struct sup *s);
void ctl_close(struct sup *s);
const char *ctl_default_dir(void);

int devmux_run(const char *file, const char *ctl_path, const struct sdf_options *opt);

#endif
