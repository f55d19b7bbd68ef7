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
#define EV_SIGNAL 0x01000000u
#define EV_CTL    0x02000000u
#define EV_LOG    0x03000000u
#define EV_CTRL   0x04000000u
#define EV_TIMER  0x05000000u
#define EV_RETRY  0x06000000u
#define EV_QTEST  0x07000000u /* a machine's qtest socket: interrupts, EOF */
#define EV_QMP    0x08000000u /* a machine's QMP socket: events */
#define EV_HW     0x09000000u /* a driver's request socket: machine << 8 | device */
#define EV_KIND   0xff000000u

struct machine_rt;

struct sup {
    struct sdf_system *sys;
    struct machine_rt *machines;
    struct comp *comps;
    struct region_rt *regions;
    struct chan_rt *chans;
    int epfd, sigfd, ctl_fd;
    int retry_fd; /* timer: re-offer protected-call sockets a busy peer missed */
    char ctl_path[256];
    bool stopping;
    int exit_code;
    uint64_t stop_deadline_ns;
    uid_t uid_base;
    int devnull;
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

/* spawn.c */
int sup_spawn(struct sup *s, struct comp *c);

/* supervisor.c */
void sup_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
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
