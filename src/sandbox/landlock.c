/* Landlock through raw system calls: Debian 12's headers predate the ABI
 * versions the kernel here speaks, so the attribute is spelled out. */
#include "sandbox/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

struct ruleset_attr {
    uint64_t handled_access_fs;
    uint64_t handled_access_net;
    uint64_t scoped;
};

struct path_beneath {
    uint64_t allowed_access;
    int32_t parent_fd;
} __attribute__((packed));

static void add_grant(int ruleset, const struct sbx_grant *g)
{
    int fd = g->fd, own = -1;
    if (fd < 0)
        fd = own = open(g->path, O_PATH | O_CLOEXEC);
    if (fd < 0)
        return; /* a directory this system does not have */
    struct stat st;
    uint64_t access = g->access;
    if (fstat(fd, &st) == 0 && !S_ISDIR(st.st_mode))
        access &= SBX_EXECUTE | SBX_READ_FILE; /* directory rights do not apply */
    struct path_beneath pb = {.allowed_access = access, .parent_fd = fd};
    syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &pb, 0);
    if (own >= 0)
        close(own);
}

int sbx_landlock(const struct sbx_grant *grants, size_t n)
{
    long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
    if (abi < 1)
        return abi < 0 ? -errno : -ENOSYS;
    struct ruleset_attr attr = {0};
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
    int rs = (int)syscall(SYS_landlock_create_ruleset, &attr, size, 0);
    if (rs < 0)
        return -errno;
    for (size_t i = 0; i < n; i++)
        add_grant(rs, &grants[i]);
    int rc = (int)syscall(SYS_landlock_restrict_self, rs, 0);
    int err = errno;
    close(rs);
    return rc < 0 ? -err : (int)abi;
}
