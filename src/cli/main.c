/*
 * devmux: the command line.
 *   devmux run FILE [--ctl PATH]     start a system and supervise it
 *   devmux check FILE                validate a system description only
 *   devmux ctl [--ctl PATH|--system NAME] COMMAND [ARG]
 */
#include <dirent.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/util.h"
#include "sdf/sdf.h"
#include "supervisor/supervisor.h"

#ifndef DEVMUX_BUILD_PATH
#define DEVMUX_BUILD_PATH ""
#endif

static void usage(FILE *f)
{
    fputs("usage: devmux run SYSTEM.yaml [--ctl SOCKET]\n"
          "       devmux check SYSTEM.yaml\n"
          "       devmux ctl [--ctl SOCKET | --system NAME]\n"
          "                  status | net [NETWORK] | restart COMPONENT | shutdown\n"
          "                  | machine [NAME] | machine NAME add MODEL ID [KEY=VALUE ...]\n"
          "                  | machine NAME del ID\n"
          "Components named without a '/' are searched in $DEVMUX_PATH (colon-separated),\n"
          "then in the build and install directories.\n",
          f);
}

/* DEVMUX_PATH, then the build tree, then <prefix>/libexec/devmux. */
static void program_path(struct sdf_options *opt)
{
    static char *dirs[128];
    static char all[8192];
    size_t n = 0;
    char exe[PATH_MAX] = "";
    ssize_t l = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (l > 0)
        exe[l] = 0;
    snprintf(all, sizeof(all), "%s:%s:%s/../libexec/devmux", getenv("DEVMUX_PATH") ?: "",
             DEVMUX_BUILD_PATH, l > 0 ? dirname(exe) : ".");
    for (char *save, *tok = strtok_r(all, ":", &save); tok && n < 128;
         tok = strtok_r(NULL, ":", &save))
        dirs[n++] = tok;
    opt->program_path = (const char *const *)dirs;
    opt->nprogram_path = n;
}

static int cmd_check(const char *file, const struct sdf_options *opt)
{
    struct sdf_errors errs = {0};
    struct sdf_system *sys = sdf_load(file, opt, &errs);
    if (!sys) {
        sdf_errors_print(&errs, file, stderr);
        fprintf(stderr, "%s: %zu error%s\n", file, errs.n, errs.n == 1 ? "" : "s");
        sdf_errors_free(&errs);
        return 2;
    }
    printf("%s: system '%s' is valid: %zu components, %zu regions, %zu channels\n", file, sys->name,
           sys->ncomps, sys->nregions, sys->nchannels);
    sdf_free(sys);
    return 0;
}

static int find_socket(char *path, size_t len, const char *system)
{
    const char *dir = ctl_default_dir();
    if (system) {
        snprintf(path, len, "%s/%s.sock", dir, system);
        return 0;
    }
    DIR *d = opendir(dir);
    int found = 0;
    if (d) {
        for (struct dirent *e; (e = readdir(d));) {
            size_t nl = strlen(e->d_name);
            if (nl > 5 && !strcmp(e->d_name + nl - 5, ".sock")) {
                found++;
                snprintf(path, len, "%s/%s", dir, e->d_name);
            }
        }
        closedir(d);
    }
    if (found == 1)
        return 0;
    if (found)
        fprintf(stderr, "devmux ctl: %d systems run (sockets in %s); name one with --system NAME\n",
                found, dir);
    else
        fprintf(stderr, "devmux ctl: no running system found (no socket in %s)\n", dir);
    return -1;
}

static int cmd_ctl(int argc, char **argv)
{
    const char *sock = NULL, *system = NULL;
    int i = 0;
    for (; i < argc; i++) {
        if (!strcmp(argv[i], "--ctl") && i + 1 < argc)
            sock = argv[++i];
        else if (!strcmp(argv[i], "--system") && i + 1 < argc)
            system = argv[++i];
        else
            break;
    }
    if (i >= argc) {
        usage(stderr);
        return 2;
    }
    char path[256], req[256] = "";
    if (sock)
        snprintf(path, sizeof(path), "%s", sock);
    else if (find_socket(path, sizeof(path), system))
        return 1;
    for (; i < argc; i++)
        snprintf(req + strlen(req), sizeof(req) - strlen(req), "%s%s", argv[i],
                 i + 1 < argc ? " " : "\n");
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path)) {
        fprintf(stderr, "devmux ctl: socket path too long: %s\n", path);
        return 2;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
        fprintf(stderr, "devmux ctl: cannot connect to %s: %s\n", path, strerror(errno));
        return 1;
    }
    if (write_all(fd, req, strlen(req))) {
        fprintf(stderr, "devmux ctl: send: %s\n", strerror(errno));
        return 1;
    }
    size_t len = 0, cap = 4096;
    char *buf = xmalloc(cap);
    ssize_t n;
    while ((n = read(fd, buf + len, cap - len - 1)) > 0) {
        len += (size_t)n;
        if (cap - len < 1024)
            buf = xrealloc(buf, cap *= 2);
    }
    close(fd);
    buf[len] = 0;
    /* The last line is the verdict. */
    if (len && buf[len - 1] == '\n')
        buf[--len] = 0;
    char *last = strrchr(buf, '\n');
    char *verdict = last ? last + 1 : buf;
    if (last)
        *last = 0;
    int rc = 0;
    if (!strcmp(verdict, "OK")) {
        if (last)
            puts(buf);
    } else {
        if (last)
            puts(buf);
        fprintf(stderr, "devmux ctl: %s\n", verdict[0] ? verdict : "no reply");
        rc = 1;
    }
    free(buf);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    struct sdf_options opt;
    program_path(&opt);
    if (!strcmp(argv[1], "check") && argc == 3)
        return cmd_check(argv[2], &opt);
    if (!strcmp(argv[1], "run") && (argc == 3 || (argc == 5 && !strcmp(argv[3], "--ctl"))))
        return devmux_run(argv[2], argc == 5 ? argv[4] : NULL, &opt);
    if (!strcmp(argv[1], "ctl"))
        return cmd_ctl(argc - 2, argv + 2);
    usage(stderr);
    return 2;
}
