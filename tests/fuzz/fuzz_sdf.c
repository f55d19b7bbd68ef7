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

/* What a successful load promises the supervisor and the runtime. */
static void check_model(const struct sdf_system *sys)
{
    for (size_t i = 0; i < sys->ncomps; i++)
        if (!sys->comps[i].name || !sys->comps[i].program_path)
            abort();
    for (size_t i = 0; i < sys->nregions; i++) {
        const struct sdf_region *r = &sys->regions[i];
        if (!r->name || r->size == 0 || r->size % SDF_PAGE)
            abort();
        for (size_t k = 0; k < r->nitems; k++) {
            const struct sdf_item *it = &r->items[k];
            /* every item lies inside its region: no wrap-around */
            if (it->offset > r->size || it->size > r->size - it->offset)
                abort();
        }
        for (size_t k = 0; k < r->nmaps; k++)
            if (r->maps[k].comp < 0 || (size_t)r->maps[k].comp >= sys->ncomps)
                abort();
    }
    for (size_t i = 0; i < sys->nchannels; i++)
        for (int e = 0; e < 2; e++)
            if (sys->channels[i].end[e].comp < 0 ||
                (size_t)sys->channels[i].end[e].comp >= sys->ncomps ||
                sys->channels[i].end[e].id > SDF_MAX_CHANNEL)
                abort();
}

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
        check_model(sys);
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
