/*
 * The qemu backend against a real QEMU: a guest-less q35 machine comes up,
 * its PCI bus enumerates through qtest port I/O, a BAR sizes and maps, the
 * guest RAM we map is the memory the machine sees, requests no protocol
 * line may carry are refused before they are sent, and a dead QEMU turns
 * into -EPIPE, never a hang.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <stdio.h>
#include <cmocka.h>

#include "hw/qemu/machine.h"
#include "machine_fixture.h"

static const char *const devices[] = {"-device",
                                      "virtio-net-pci,netdev=n0,disable-legacy=on,addr=01.0",
                                      "-netdev", "user,id=n0,restrict=on", NULL};

static uint32_t cfg_addr(unsigned dev, unsigned reg)
{
    return 0x80000000u | dev << 11 | (reg & 0xfc);
}

static uint32_t cfg_read(struct qtest *q, unsigned dev, unsigned reg)
{
    uint32_t v = 0;
    assert_int_equal(qtest_out(q, 4, 0xcf8, cfg_addr(dev, reg)), 0);
    assert_int_equal(qtest_in(q, 4, 0xcfc, &v), 0);
    return v;
}

static void cfg_write(struct qtest *q, unsigned dev, unsigned reg, uint32_t v)
{
    assert_int_equal(qtest_out(q, 4, 0xcf8, cfg_addr(dev, reg)), 0);
    assert_int_equal(qtest_out(q, 4, 0xcfc, v), 0);
}

static int setup(void **state)
{
    return machine_fixture_start(state, devices);
}

static int teardown(void **state)
{
    return machine_fixture_stop(state);
}

static void pci_bus_enumerates(void **state)
{
    struct qemu_machine *m = *state;
    unsigned found = 0;
    bool virtio = false;
    for (unsigned dev = 0; dev < 32; dev++) {
        uint32_t id = cfg_read(&m->qt, dev, 0);
        if ((id & 0xffff) == 0xffff)
            continue;
        found++;
        if (dev == 1) {
            assert_int_equal(id, 0x10411af4);                          /* virtio-net, modern only */
            assert_int_equal(cfg_read(&m->qt, dev, 8) >> 8, 0x020000); /* Ethernet */
            virtio = true;
        }
    }
    assert_int_equal(cfg_read(&m->qt, 0, 0), 0x29c08086); /* q35 host bridge */
    assert_true(virtio);
    assert_true(found >= 3 && found <= 8);
}

static void bar_sizes_and_maps(void **state)
{
    struct qemu_machine *m = *state;
    /* BAR4 of virtio-net: 64-bit memory, 16 KiB. */
    uint32_t orig = cfg_read(&m->qt, 1, 0x20);
    assert_int_equal(orig & 0x6, 0x4); /* 64-bit */
    cfg_write(&m->qt, 1, 0x20, 0xffffffffu);
    uint32_t mask = cfg_read(&m->qt, 1, 0x20) & ~0xfu;
    assert_int_equal(~mask + 1, 16384);
    cfg_write(&m->qt, 1, 0x20, 0xfe000000u);
    cfg_write(&m->qt, 1, 0x24, 0);
    cfg_write(&m->qt, 1, 0x04, cfg_read(&m->qt, 1, 0x04) | 0x6); /* memory, bus master */
    /* Walk the capabilities to the virtio common config (cfg_type 1). */
    unsigned cap = cfg_read(&m->qt, 1, 0x34) & 0xfc, hops = 0;
    uint64_t common = 0;
    while (cap && hops++ < 48) {
        uint32_t w0 = cfg_read(&m->qt, 1, cap);
        if ((w0 & 0xff) == 0x09 && (w0 >> 24 & 0xff) == 1) {
            assert_int_equal(cfg_read(&m->qt, 1, cap + 4) & 0xff, 4); /* in BAR4 */
            common = 0xfe000000u + cfg_read(&m->qt, 1, cap + 8);
        }
        cap = w0 >> 8 & 0xfc;
    }
    assert_int_not_equal(common, 0);
    uint64_t nq = 0;
    assert_int_equal(qtest_read(&m->qt, 2, common + 0x12, &nq), 0); /* num_queues */
    assert_true(nq >= 2);
}

static void guest_ram_is_ours(void **state)
{
    struct qemu_machine *m = *state;
    volatile uint32_t *word = (uint32_t *)((uint8_t *)m->ram + 0x100000);
    assert_int_equal(qtest_write(&m->qt, 4, 0x100000, 0x5eed1234), 0);
    assert_int_equal(*word, 0x5eed1234);
    *word = 0xfeedc0de;
    uint64_t v = 0;
    assert_int_equal(qtest_read(&m->qt, 4, 0x100000, &v), 0);
    assert_int_equal(v, 0xfeedc0de);
}

static void bad_requests_never_sent(void **state)
{
    struct qemu_machine *m = *state;
    uint64_t v;
    uint32_t p;
    uint64_t before = m->qt.requests;
    assert_int_equal(qtest_read(&m->qt, 3, 0x100000, &v), -EINVAL);
    assert_int_equal(qtest_read(&m->qt, 4, 0x100002, &v), -EINVAL);
    assert_int_equal(qtest_write(&m->qt, 2, 0x100000, 0x10000), -EINVAL);
    assert_int_equal(qtest_out(&m->qt, 1, 0x80, 0x100), -EINVAL);
    assert_int_equal(qtest_in(&m->qt, 8, 0x80, &p), -EINVAL);
    assert_int_equal(m->qt.requests, before);
    assert_int_equal(qtest_in(&m->qt, 4, 0xcfc, &p), 0); /* still alive */
    assert_int_equal(qtest_intercept_irqs(&m->qt), 0);
    assert_int_equal(qtest_poll(&m->qt), 0);
}

static void dead_machine_is_an_error(void **state)
{
    struct qemu_machine *m = *state;
    kill(m->pid, SIGKILL);
    waitpid(m->pid, NULL, 0);
    m->pid = -1;
    uint64_t v;
    assert_int_equal(qtest_read(&m->qt, 4, 0x100000, &v), -EPIPE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pci_bus_enumerates),       cmocka_unit_test(bar_sizes_and_maps),
        cmocka_unit_test(guest_ram_is_ours),        cmocka_unit_test(bad_requests_never_sent),
        cmocka_unit_test(dead_machine_is_an_error),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
