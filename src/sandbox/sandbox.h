/*
 * Sandbox primitives shared by the two stages that confine a component:
 * stage 1 in the supervisor's child before exec (src/supervisor/spawn.c)
 * and stage 2 in the component's runtime before its code runs
 * (src/runtime/sandbox.c).
 */
#ifndef DEVMUX_SANDBOX_H
#define DEVMUX_SANDBOX_H

#include <seccomp.h>
#include <stddef.h>
#include <stdint.h>

/* Filesystem rights a grant may give (Landlock's bit values). */
#define SBX_EXECUTE   (1ull << 0)
#define SBX_READ_FILE (1ull << 2)
#define SBX_READ_DIR  (1ull << 3)

/* Access to one path, or to an open descriptor when fd >= 0. */
struct sbx_grant {
    const char *path;
    int fd;
    uint64_t access;
};

/* Restricts the calling process with a Landlock layer that handles every
 * right the running kernel knows (filesystem, TCP, signal and abstract
 * socket scopes) and allows only the grants.  Paths that do not exist are
 * skipped.  Returns the Landlock ABI version, or -errno. */
int sbx_landlock(const struct sbx_grant *grants, size_t n);

/* One seccomp rule: a system call, an action and up to three argument tests. */
struct sbx_rule {
    int nr;
    uint32_t action;
    unsigned ncmp;
    struct scmp_arg_cmp cmp[3];
};

/* Adds `action` for each call in calls[], then every rule.  Returns 0 or
 * -errno from libseccomp. */
int sbx_seccomp_add(scmp_filter_ctx f, uint32_t action, const int *calls, size_t ncalls,
                    const struct sbx_rule *rules, size_t nrules);

#endif
