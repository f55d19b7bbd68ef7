/*
 * System description tests.  Every file in cases/ is a description with
 * mistakes; its .expected file lists, in order, the exact errors sdf_load
 * must report (line:column: error: message).  A valid description must load
 * into the model we expect, with its layout computed.
 *
 * Run from tests/sdf with the component build directory as argument.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devmux/queue.h"
#include "sdf/sdf.h"

static struct sdf_options opt;
static const char *dirs[8];

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    int c;
    while ((c = fgetc(f)) != EOF)
        fputc(c, m);
    fclose(m);
    fclose(f);
    return buf;
}

static void check_case(void **state)
{
    const char *name = *state;
    char yaml[512], expected_path[512];
    snprintf(yaml, sizeof(yaml), "cases/%s.yaml", name);
    snprintf(expected_path, sizeof(expected_path), "cases/%s.expected", name);
    char *expected = slurp(expected_path);
    assert_non_null(expected);
    assert_true(strlen(expected) > 0);

    struct sdf_errors errs = {0};
    struct sdf_system *sys = sdf_load(yaml, &opt, &errs);
    assert_null(sys);
    assert_true(errs.n > 0);

    char *got = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&got, &len);
    sdf_errors_print(&errs, "", m);
    fclose(m);
    /* Drop the empty file name: each line starts ":LINE:COL". */
    char *out = calloc(1, len + 1), *o = out;
    for (char *line = strtok(got, "\n"); line; line = strtok(NULL, "\n"))
        o += sprintf(o, "%s\n", line + 1);
    if (strcmp(out, expected))
        fail_msg("case %s\n--- expected\n%s--- got\n%s", name, expected, out);
    free(out);
    free(got);
    free(expected);
    sdf_errors_free(&errs);
}

static void valid_example_loads(void **state)
{
    (void)state;
    struct sdf_errors errs = {0};
    struct sdf_system *sys = sdf_load("../../examples/ping-pong.yaml", &opt, &errs);
    if (!sys) {
        sdf_errors_print(&errs, "ping-pong.yaml", stderr);
        fail();
    }
    assert_string_equal(sys->name, "ping-pong");
    assert_int_equal(sys->ncomps, 2);
    assert_int_equal(sys->comps[1].fault, SDF_FAULT_RESTART);
    assert_int_equal(sys->comps[1].backoff_min_ms, 50);
    assert_int_equal(sys->comps[1].backoff_max_ms, 2000);
    assert_string_equal(sys->comps[0].config[0].key, "report_ms");
    assert_string_equal(sys->comps[0].config[0].value, "1000");
    assert_non_null(sys->comps[0].program_path);
    assert_int_equal(sys->nregions, 1);
    const struct sdf_region *r = &sys->regions[0];
    assert_int_equal(r->size, 65536);
    assert_int_equal(r->nitems, 3);
    /* Items are laid out in order, each on a cache line. */
    assert_int_equal(r->items[0].offset, 0);
    assert_int_equal(r->items[0].size, DMQ_RING_BYTES(256));
    assert_int_equal(r->items[1].offset, DMQ_RING_BYTES(256));
    assert_int_equal(r->items[2].offset, 2 * DMQ_RING_BYTES(256));
    assert_int_equal(r->items[2].size, 256 * 64);
    assert_int_equal(r->nmaps, 2);
    assert_string_equal(r->maps[0].setvar, "ring_vaddr");
    assert_true(r->maps[1].writable);
    assert_int_equal(sys->nchannels, 2);
    assert_true(sys->channels[1].end[0].pp);
    assert_false(sys->channels[1].end[1].pp);
    assert_int_equal(sys->channels[1].end[1].comp, 1);
    sdf_free(sys);
}

static void sizes_parse(void **state)
{
    (void)state;
    uint64_t v;
    assert_true(sdf_parse_size("4096", &v));
    assert_int_equal(v, 4096);
    assert_true(sdf_parse_size("64K", &v));
    assert_int_equal(v, 65536);
    assert_true(sdf_parse_size("2MiB", &v));
    assert_int_equal(v, 2 << 20);
    assert_true(sdf_parse_size("0x1000", &v));
    assert_int_equal(v, 4096);
    assert_false(sdf_parse_size("-1", &v));
    assert_false(sdf_parse_size("", &v));
    assert_false(sdf_parse_size("12Q", &v));
    assert_false(sdf_parse_size("99999999999999999999", &v));
    assert_false(sdf_parse_size("17179869184G", &v)); /* overflows 64 bits */
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s COMPONENT_DIR... (run from tests/sdf)\n", argv[0]);
        return 2;
    }
    for (int i = 1; i < argc && i <= 8; i++)
        dirs[opt.nprogram_path++] = argv[i];
    opt.program_path = dirs;

    struct CMUnitTest tests[128];
    size_t n = 0;
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(valid_example_loads);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(sizes_parse);
    DIR *d = opendir("cases");
    if (!d) {
        perror("cases");
        return 2;
    }
    for (struct dirent *e; (e = readdir(d)) && n < 128;) {
        size_t l = strlen(e->d_name);
        if (l < 6 || strcmp(e->d_name + l - 5, ".yaml"))
            continue;
        char *name = strndup(e->d_name, l - 5);
        tests[n] = (struct CMUnitTest)cmocka_unit_test_prestate(check_case, name);
        tests[n].name = name;
        n++;
    }
    closedir(d);
    int failed = _cmocka_run_group_tests("sdf", tests, n, NULL, NULL);
    for (size_t i = 2; i < n; i++)
        free((void *)tests[i].initial_state);
    return failed;
}
