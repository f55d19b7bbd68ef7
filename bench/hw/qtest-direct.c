/*
 * hw-qtest-direct: the baseline for hw-bench.  The same edu registers, the
 * same measurements, but this process owns QEMU's qtest socket itself
 * (src/hw/qemu/machine.c starts the same guest-less q35), with no devmux
 * component, supervisor or check in between.  The difference between the
 * two is what the supervisor hop costs.  Not a component.
 *
 *   hw-qtest-direct TSC_HZ [READS [WARM [IRQS]]]
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <x86intrin.h>

#include <stdlib.h>

#include "hw/qemu/machine.h"
#include "stats.h"

#define SLOT 5
#define BAR0 0xc0000000u /* where the supervisor would put the first BAR too */

static uint64_t irq_t1;
static bool irq_up;

static void on_irq(void *ctx, unsigned line, bool raised)
{
    (void)ctx;
    (void)line;
    /* QEMU sends "IRQ raise" before the OK of the write that caused it,
     * so this runs inside qtest_write: the time of the edge as we see it. */
    if (raised && !irq_up)
        irq_t1 = __rdtsc();
    irq_up = raised;
}

static int cfg(struct qtest *q, unsigned reg, uint32_t v)
{
    int err = qtest_out(q, 4, 0xcf8, 0x80000000u | SLOT << 11 | reg);
    return err ? err : qtest_out(q, 4, 0xcfc, v);
}

static void print(const char *name, uint64_t *s, size_t n, double hz)
{
    char line[400];
    bench_summary(line, sizeof(line), name, s, n, hz);
    printf("%s\n", line);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: hw-qtest-direct TSC_HZ [READS [WARM [IRQS]]]\n");
        return 2;
    }
    double hz = strtod(argv[1], NULL);
    size_t nreads = argc > 2 ? strtoul(argv[2], NULL, 0) : 20000;
    size_t nwarm = argc > 3 ? strtoul(argv[3], NULL, 0) : 2000;
    size_t nirqs = argc > 4 ? strtoul(argv[4], NULL, 0) : 2000;
    uint64_t *s = calloc((nreads > nirqs ? nreads : nirqs) + 1, sizeof(*s));
    if (hz <= 0 || !nreads || !nirqs || !s)
        return 2;

    static const char *const devices[] = {"-device", "edu,addr=05.0,id=edu0", NULL};
    static struct qemu_machine m;
    struct qemu_machine_opts o = {
        .ram_size = 64u << 20, .ram_fd = -1, .extra = devices, .err_fd = -1, .on_irq = on_irq};
    int err = qemu_machine_start(&m, &o);
    if (err) {
        fprintf(stderr, "hw-qtest-direct: cannot start QEMU: %s\n", strerror(-err));
        return 1;
    }
    struct qtest *q = &m.qt;
    /* What the supervisor does for a granted device, minus the checks:
     * place BAR0, turn memory decoding on, watch the IOAPIC's inputs. */
    uint64_t v = 0;
    unsigned bad = 0;
    if ((err = cfg(q, 0x10, BAR0)) || (err = cfg(q, 0x04, 0x2)) ||
        (err = qtest_intercept_irqs(q)) || (err = qtest_read(q, 4, BAR0 + EDU_IDENT, &v)) ||
        v != EDU_ID_VALUE) {
        fprintf(stderr, "hw-qtest-direct: edu not reachable (err %d, ident %#llx)\n", err,
                (unsigned long long)v);
        qemu_machine_stop(&m);
        return 1;
    }

    for (size_t i = 0; i < nwarm; i++)
        bad += qtest_read(q, 4, BAR0 + EDU_IDENT, &v) || v != EDU_ID_VALUE;
    for (size_t i = 0; i < nreads; i++) {
        uint64_t t0 = __rdtsc();
        int e = qtest_read(q, 4, BAR0 + EDU_IDENT, &v);
        s[i] = __rdtsc() - t0;
        bad += e || v != EDU_ID_VALUE;
    }
    print("read", s, nreads, hz);

    /* qtest has no posted writes: each waits for QEMU's OK, as the
     * supervisor's own write does. */
    for (size_t i = 0; i < nreads; i++) {
        uint64_t t0 = __rdtsc();
        int e = qtest_write(q, 4, BAR0 + EDU_LIVENESS, (uint32_t)i);
        s[i] = __rdtsc() - t0;
        bad += e != 0;
    }
    print("write", s, nreads, hz);

    for (size_t i = 0; i < nreads; i++) {
        uint64_t t0 = __rdtsc();
        int e = qtest_write(q, 4, BAR0 + EDU_LIVENESS, (uint32_t)i);
        e = e ? e : qtest_read(q, 4, BAR0 + EDU_LIVENESS, &v);
        s[i] = __rdtsc() - t0;
        bad += e || (uint32_t)v != ~(uint32_t)i;
    }
    print("pair", s, nreads, hz);

    uint64_t t0 = __rdtsc();
    for (size_t i = 0; i < nreads; i++)
        bad += qtest_write(q, 4, BAR0 + EDU_LIVENESS, (uint32_t)i) != 0;
    bad += qtest_read(q, 4, BAR0 + EDU_LIVENESS, &v) || (uint32_t)v != ~(uint32_t)(nreads - 1);
    s[0] = (__rdtsc() - t0) / nreads;
    print("burst", s, 1, hz);

    for (size_t i = 0; i < nirqs; i++) {
        irq_t1 = 0;
        t0 = __rdtsc();
        int e = qtest_write(q, 4, BAR0 + EDU_IRQ_RAISE, 1);
        bad += e || !irq_t1;
        s[i] = irq_t1 ? irq_t1 - t0 : 0;
        bad += qtest_write(q, 4, BAR0 + EDU_IRQ_ACK, 1) != 0 || irq_up;
    }
    print("irq", s, nirqs, hz);
    printf("hw-qtest-direct: DONE bad=%u\n", bad);
    qemu_machine_stop(&m);
    free(s);
    return bad != 0;
}
