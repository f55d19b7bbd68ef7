/*
 * System description tests.  Every file in cases/ is a description with
 * mistakes; its .expected file lists, in order, the exact errors sdf_load
 * must report (line:column: error: message).  A valid description must load
 * into the model we expect, with its layout computed.
 *
 * Run from tests/sdf with the component build directory as argument.  The
 * programs a network expands into (net-packet, ...) are stand-in scripts in
 * a temporary directory at the end of the search path.
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
#include <sys/stat.h>
#include <unistd.h>

#include "devmux/net.h"
#include "devmux/queue.h"
#include "sdf/sdf.h"

static struct sdf_options opt;
static const char *dirs[9];
static char standin_dir[] = "/tmp/devmux-sdf-test.XXXXXX";
static const char *const standins[] = {"net-packet", "net-rxvirt", "net-txvirt", "net-copy",
                                       "net-tap"};

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

static const struct sdf_component *comp(const struct sdf_system *sys, const char *name)
{
    int i = sdf_component_index(sys, name);
    if (i < 0)
        fail_msg("no component '%s'", name);
    return &sys->comps[i];
}

static const char *cfg(const struct sdf_component *c, const char *key)
{
    for (size_t i = 0; i < c->nconfig; i++)
        if (!strcmp(c->config[i].key, key))
            return c->config[i].value;
    fail_msg("component '%s' has no config key '%s'", c->name, key);
    return NULL;
}

static const struct sdf_region *region(const struct sdf_system *sys, const char *name)
{
    int i = sdf_region_index(sys, name);
    if (i < 0)
        fail_msg("no region '%s'", name);
    return &sys->regions[i];
}

static const struct sdf_channel *channel(const struct sdf_system *sys, const char *name)
{
    for (size_t i = 0; i < sys->nchannels; i++)
        if (sys->channels[i].name && !strcmp(sys->channels[i].name, name))
            return &sys->channels[i];
    fail_msg("no channel '%s'", name);
    return NULL;
}

static bool maps(const struct sdf_region *r, const char *comp, bool writable)
{
    for (size_t i = 0; i < r->nmaps; i++)
        if (!strcmp(r->maps[i].component, comp))
            return r->maps[i].writable == writable;
    return false;
}

static uint64_t pages(uint64_t n)
{
    return (n + 4095) / 4096 * 4096;
}

static void check_channel(const struct sdf_system *sys, const char *name, const char *a,
                          uint32_t ida, const char *b, uint32_t idb)
{
    const struct sdf_channel *ch = channel(sys, name);
    assert_string_equal(ch->end[0].component, a);
    assert_int_equal(ch->end[0].id, ida);
    assert_string_equal(ch->end[1].component, b);
    assert_int_equal(ch->end[1].id, idb);
    assert_false(ch->end[0].pp || ch->end[1].pp);
}

/* The documented generator: 02 and the low 40 bits of FNV-1a-64, big-endian. */
static void expected_mac(const char *text, char out[18])
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (const char *p = text; *p; p++)
        h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
    snprintf(out, 18, "02:%02x:%02x:%02x:%02x:%02x", (unsigned)(h >> 32) & 0xff,
             (unsigned)(h >> 24) & 0xff, (unsigned)(h >> 16) & 0xff, (unsigned)(h >> 8) & 0xff,
             (unsigned)h & 0xff);
}

static void valid_network_expands(void **state)
{
    (void)state;
    struct sdf_errors errs = {0};
    struct sdf_system *sys = sdf_load("valid/network.yaml", &opt, &errs);
    if (!sys) {
        sdf_errors_print(&errs, "valid/network.yaml", stderr);
        fail();
    }
    /* Devices written by hand. */
    const struct sdf_component *d = comp(sys, "drv2");
    assert_int_equal(d->ndevices, 2);
    assert_int_equal(d->devices[0].kind, SDF_DEV_PACKET);
    assert_string_equal(d->devices[0].ifname, "veth0");
    assert_null(d->devices[0].netns);
    assert_false(d->devices[0].has_mac);
    assert_int_equal(d->devices[0].irq, 2);
    assert_int_equal(d->devices[1].kind, SDF_DEV_TAP);
    assert_string_equal(d->devices[1].name, "tap");
    assert_string_equal(d->devices[1].netns, "a");
    assert_true(d->devices[1].has_mac);
    assert_memory_equal(d->devices[1].mac, "\x02\0\0\0\0\x0a", 6);

    /* Components, in order: the user's, then driver, virtualisers, copiers, clients. */
    static const char *const names[] = {"drv2",        "other",       "lan0.driver",
                                        "lan0.rxvirt", "lan0.txvirt", "lan0.copy.a",
                                        "lan0.copy.b", "a",           "b"};
    static const char *const programs[] = {"probe",      "probe",      "net-packet",
                                           "net-rxvirt", "net-txvirt", "net-copy",
                                           "net-copy",   "net-tap",    "probe"};
    assert_int_equal(sys->ncomps, 9);
    for (size_t i = 0; i < 9; i++) {
        assert_string_equal(sys->comps[i].name, names[i]);
        assert_string_equal(sys->comps[i].program, programs[i]);
        assert_non_null(sys->comps[i].program_path);
    }
    const struct sdf_component *drv = comp(sys, "lan0.driver"), *rxv = comp(sys, "lan0.rxvirt"),
                               *txv = comp(sys, "lan0.txvirt"), *a = comp(sys, "a"),
                               *b = comp(sys, "b");
    assert_int_equal(drv->fault, SDF_FAULT_RESTART);
    assert_int_equal(drv->backoff_min_ms, 50);
    assert_int_equal(drv->backoff_max_ms, 1000);
    assert_int_equal(rxv->fault, SDF_FAULT_SHUTDOWN);
    assert_int_equal(comp(sys, "lan0.copy.b")->fault, SDF_FAULT_RESTART);
    assert_int_equal(a->fault, SDF_FAULT_RESTART);
    assert_int_equal(b->fault, SDF_FAULT_HALT);
    assert_string_equal(cfg(drv, "net"), "lan0");
    assert_int_equal(drv->ndevices, 1);
    assert_string_equal(drv->devices[0].name, "nic");
    assert_int_equal(drv->devices[0].kind, SDF_DEV_PACKET);
    assert_string_equal(drv->devices[0].ifname, "veth-dm");
    assert_string_equal(drv->devices[0].netns, "host");
    assert_int_equal(drv->devices[0].irq, 2);

    /* The client table, the same for both virtualisers. */
    char mac_a[18];
    expected_mac("netdemo/lan0/a", mac_a);
    for (const struct sdf_component *v = rxv; v; v = v == rxv ? txv : NULL) {
        assert_string_equal(cfg(v, "net"), "lan0");
        assert_string_equal(cfg(v, "clients"), "2");
        assert_string_equal(cfg(v, "client.0.name"), "a");
        assert_string_equal(cfg(v, "client.0.mac"), mac_a);
        assert_string_equal(cfg(v, "client.0.broadcast"), "1");
        assert_string_equal(cfg(v, "client.0.multicast"), "1");
        assert_string_equal(cfg(v, "client.0.peers"), "1");
        assert_string_equal(cfg(v, "client.0.rate"), "50000000");
        assert_string_equal(cfg(v, "client.0.burst"), "65536");
        assert_string_equal(cfg(v, "client.0.quota"), "256");
        assert_string_equal(cfg(v, "client.1.name"), "b");
        assert_string_equal(cfg(v, "client.1.mac"), "02:00:00:00:00:0b");
        assert_string_equal(cfg(v, "client.1.broadcast"), "0");
        assert_string_equal(cfg(v, "client.1.peers"), "");
        assert_string_equal(cfg(v, "client.1.rate"), "0");
        assert_string_equal(cfg(v, "client.1.burst"), "0");
        assert_string_equal(cfg(v, "client.1.quota"), "200");
        /* Isolation: bound addresses with their prefixes, DHCP, shares
         * (the default keeps half the pool for the driver), rx_rate. */
        assert_string_equal(cfg(v, "client.0.ipv4"), "10.0.0.10/32,10.0.1.0/24");
        assert_string_equal(cfg(v, "client.0.ipv6"), "fd00::a/128,fd01::/64");
        assert_string_equal(cfg(v, "client.0.dhcp"), "0");
        assert_string_equal(cfg(v, "client.0.rx_share"), "100");
        assert_string_equal(cfg(v, "client.0.rx_rate"), "20000000");
        assert_string_equal(cfg(v, "client.0.rx_burst"), "32768");
        assert_string_equal(cfg(v, "client.1.ipv4"), "");
        assert_string_equal(cfg(v, "client.1.dhcp"), "1");
        assert_string_equal(cfg(v, "client.1.rx_share"), "50");
        assert_string_equal(cfg(v, "client.1.rx_rate"), "0");
    }
    /* Limits: the trusted core at ten times a client's weight; a client's
     * own limits over the network's client defaults over the class's. */
    assert_true(rxv->limits.has_weight && rxv->limits.weight == 1000);
    assert_true(drv->limits.has_weight && drv->limits.weight == 1000);
    assert_int_equal(comp(sys, "lan0.copy.a")->limits.weight, 1000);
    assert_false(rxv->limits.has_memory);
    assert_true(a->limits.has_weight && a->limits.weight == 1000); /* a TAP frontend */
    assert_true(b->limits.has_weight && b->limits.weight == 100);  /* a program of its own */
    assert_true(a->limits.has_threads && a->limits.threads == 16);
    assert_true(a->limits.has_memory && a->limits.memory == 64u << 20);
    assert_true(a->limits.has_cpu && a->limits.cpu_budget_us == 10000 &&
                a->limits.cpu_period_us == 10000);
    assert_true(b->limits.has_memory && b->limits.memory == 32u << 20);
    assert_true(b->limits.has_cpu && b->limits.cpu_budget_us == 2500 &&
                b->limits.cpu_period_us == 10000);
    assert_true(b->limits.has_threads && b->limits.threads == 16);
    assert_string_equal(cfg(comp(sys, "lan0.copy.b"), "client"), "b");
    assert_string_equal(cfg(comp(sys, "lan0.copy.b"), "index"), "1");
    assert_string_equal(cfg(b, "ip"), "10.0.0.30/24");
    assert_string_equal(cfg(b, "net"), "lan0");
    assert_string_equal(cfg(b, "client"), "b");
    assert_string_equal(cfg(b, "mac"), "02:00:00:00:00:0b");
    assert_int_equal(b->ndevices, 0);
    /* A generated MAC: locally administered unicast, lower-case, as documented. */
    assert_string_equal(cfg(a, "mac"), mac_a);
    assert_int_equal(strlen(mac_a), 17);
    assert_int_equal(a->ndevices, 1);
    assert_int_equal(a->devices[0].kind, SDF_DEV_TAP);
    assert_string_equal(a->devices[0].ifname, "eth0");
    assert_string_equal(a->devices[0].netns, "a");
    assert_int_equal(a->devices[0].irq, 2);
    assert_true(a->devices[0].has_mac);
    char got[18];
    snprintf(got, sizeof(got), "%02x:%02x:%02x:%02x:%02x:%02x", a->devices[0].mac[0],
             a->devices[0].mac[1], a->devices[0].mac[2], a->devices[0].mac[3], a->devices[0].mac[4],
             a->devices[0].mac[5]);
    assert_string_equal(got, mac_a);

    /* Regions: sizes from the layout, in pages; items in the documented order. */
    const struct sdf_region *r = region(sys, "lan0.rx_dma");
    assert_int_equal(r->size, pages(400 * 2048));
    assert_string_equal(r->items[0].name, "buffers");
    assert_int_equal(r->items[0].count, 400);
    assert_int_equal(r->items[0].elem, 2048);
    assert_true(maps(r, "lan0.driver", true));
    assert_true(maps(r, "lan0.rxvirt", false));
    assert_true(maps(r, "lan0.copy.a", false));
    assert_true(maps(r, "lan0.copy.b", false));
    assert_false(maps(r, "lan0.txvirt", false));
    r = region(sys, "lan0.tx_dma");
    assert_true(maps(r, "lan0.txvirt", true));
    assert_true(maps(r, "lan0.driver", false));
    assert_int_equal(r->nmaps, 5);
    r = region(sys, "lan0.drv_rx");
    assert_int_equal(r->nitems, 4);
    assert_string_equal(r->items[0].name, "free");
    assert_int_equal(r->items[0].count, 512);
    assert_string_equal(r->items[1].name, "active");
    assert_int_equal(r->items[1].offset, DMQ_RING_BYTES(512));
    assert_string_equal(r->items[2].name, "sync");
    assert_int_equal(r->items[2].size, NET_SYNC_BYTES);
    assert_string_equal(r->items[3].name, "stats");
    assert_int_equal(r->items[3].size, 512);
    assert_int_equal(r->size, pages(2 * DMQ_RING_BYTES(512) + NET_SYNC_BYTES + 512));
    assert_true(maps(r, "lan0.driver", true) && maps(r, "lan0.rxvirt", true));
    r = region(sys, "lan0.drv_tx");
    assert_string_equal(r->items[0].name, "active");
    assert_string_equal(r->items[1].name, "free");
    assert_int_equal(r->nitems, 3);
    r = region(sys, "lan0.local");
    assert_int_equal(r->nitems, 2);
    assert_true(maps(r, "lan0.txvirt", true) && maps(r, "lan0.rxvirt", true));
    assert_int_equal(region(sys, "lan0.rx_stats")->size, 65536);
    assert_int_equal(region(sys, "lan0.tx_stats")->nmaps, 1);
    r = region(sys, "lan0.b.copy");
    assert_int_equal(r->items[0].count, 256);
    assert_int_equal(r->items[2].size, 256);
    assert_string_equal(r->items[3].name, "sync");
    assert_true(maps(r, "lan0.rxvirt", true) && maps(r, "lan0.copy.b", true));
    r = region(sys, "lan0.b.rx");
    assert_int_equal(r->nitems, 4);
    assert_string_equal(r->items[3].name, "buffers");
    assert_int_equal(r->items[3].count, 200);
    assert_int_equal(r->items[3].offset, 2 * DMQ_RING_BYTES(256) + NET_SYNC_BYTES);
    assert_int_equal(r->size, pages(2 * DMQ_RING_BYTES(256) + NET_SYNC_BYTES + 200 * 2048));
    assert_true(maps(r, "b", true) && maps(r, "lan0.copy.b", true));
    r = region(sys, "lan0.a.tx");
    assert_int_equal(r->items[3].count, 256);
    assert_true(maps(r, "a", true) && maps(r, "lan0.txvirt", true));
    r = region(sys, "lan0.bind");
    assert_true(maps(r, "lan0.rxvirt", true) && maps(r, "lan0.txvirt", false));
    assert_int_equal(r->nmaps, 2);
    assert_int_equal(sys->nregions, 1 + 8 + 2 * 3);

    /* Channels with the ids of devmux/net.h. */
    check_channel(sys, "lan0.drv_rx", "lan0.driver", 0, "lan0.rxvirt", 0);
    check_channel(sys, "lan0.drv_tx", "lan0.driver", 1, "lan0.txvirt", 0);
    check_channel(sys, "lan0.local", "lan0.rxvirt", 1, "lan0.txvirt", 1);
    check_channel(sys, "lan0.a.copy", "lan0.rxvirt", 2, "lan0.copy.a", 0);
    check_channel(sys, "lan0.b.copy", "lan0.rxvirt", 3, "lan0.copy.b", 0);
    check_channel(sys, "lan0.b.rx", "lan0.copy.b", 1, "b", 0);
    check_channel(sys, "lan0.b.tx", "lan0.txvirt", 3, "b", 1);
    assert_int_equal(sys->nchannels, 1 + 3 + 2 * 3);

    /* What `ctl net` reads. */
    assert_int_equal(sys->nnetworks, 1);
    assert_string_equal(sys->networks[0].name, "lan0");
    assert_int_equal(sys->networks[0].nclients, 2);
    assert_string_equal(sys->networks[0].clients[0].name, "a");
    assert_memory_equal(sys->networks[0].clients[0].mac, a->devices[0].mac, 6);
    assert_memory_equal(sys->networks[0].clients[1].mac, "\x02\0\0\0\0\x0b", 6);
    sdf_free(sys);

    /* Generated addresses depend on the names only. */
    sys = sdf_load("valid/network.yaml", &opt, &errs);
    assert_non_null(sys);
    assert_string_equal(cfg(comp(sys, "a"), "mac"), mac_a);
    sdf_free(sys);
}

static void make_standins(void)
{
    if (!mkdtemp(standin_dir)) {
        perror("mkdtemp");
        exit(2);
    }
    for (size_t i = 0; i < sizeof(standins) / sizeof(*standins); i++) {
        char path[256];
        snprintf(path, sizeof(path), "%s/%s", standin_dir, standins[i]);
        FILE *f = fopen(path, "w");
        if (!f || fputs("#!/bin/sh\nexit 0\n", f) < 0 || fclose(f) || chmod(path, 0755)) {
            perror(path);
            exit(2);
        }
    }
}

static void remove_standins(void)
{
    for (size_t i = 0; i < sizeof(standins) / sizeof(*standins); i++) {
        char path[256];
        snprintf(path, sizeof(path), "%s/%s", standin_dir, standins[i]);
        unlink(path);
    }
    rmdir(standin_dir);
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
    make_standins();
    dirs[opt.nprogram_path++] = standin_dir;
    opt.program_path = dirs;

    struct CMUnitTest tests[128];
    size_t n = 0;
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(valid_example_loads);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(sizes_parse);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(valid_network_expands);
    DIR *d = opendir("cases");
    if (!d) {
        perror("cases");
        remove_standins();
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
    remove_standins();
    for (size_t i = 3; i < n; i++)
        free((void *)tests[i].initial_state);
    return failed;
}
