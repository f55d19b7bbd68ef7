/*
 * libFuzzer harness for the system description parser and validator.
 * See README.md in this directory for how to build and run it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sdf/sdf.h"

#ifndef FUZZ_BUILD_DIR
#define FUZZ_BUILD_DIR "/work/main/build"
#endif

static const char *const dirs[] = {
    FUZZ_BUILD_DIR "/examples/ping-pong",
    FUZZ_BUILD_DIR "/tests/components",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("fuzz_sdf", 0);
        if (fd < 0)
            abort();
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) || pwrite(fd, data, size, 0) != (ssize_t)size)
        abort();

    struct sdf_options opt = {dirs, sizeof(dirs) / sizeof(dirs[0])};
    struct sdf_errors errs = {0};
    struct sdf_system *sys = sdf_load(path, &opt, &errs);
    if (sys) {
        if (errs.n) /* success must come with no errors */
            abort();
        sdf_free(sys);
    } else {
        if (!errs.n) /* failure must come with at least one error */
            abort();
        FILE *null = fopen("/dev/null", "w");
        sdf_errors_print(&errs, "fuzz.yaml", null);
        fclose(null);
        for (size_t i = 0; i < errs.n; i++) {
            /* every message must be non-empty */
            if (!errs.v[i].msg || !errs.v[i].msg[0])
                abort();
        }
    }
    sdf_errors_free(&errs);
    return 0;
}
