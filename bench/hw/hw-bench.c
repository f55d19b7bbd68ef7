/*
 * hw-bench: the cost of the hardware layer's qemu backend, measured from a
 * driver component granted QEMU's `edu` device (bench/hw/run.sh writes the
 * system).  Every sample is TSC ticks around the real API call, so it
 * includes the component's send, the supervisor's check and qtest line,
 * QEMU's device model, and the way back:
 *
 *   read      hw_read32 of the ident register, one round trip
 *   write     a posted hw_write32 (liveness), time until the call returns
 *   pair      hw_write32 of the liveness register, then hw_read32 of it
 *   burst     `reads` posted writes back to back, then one read: per write
 *   irq       hw_write32 to 0x60 until notified(irq) runs
 *
 * config: tsc_hz (from net-tsc-hz), reads (20000), warm (2000), irqs (2000).
 * It logs one "RESULT" line per measurement and "hw-bench: DONE" at the end.
 */
#include <devmux/hw.h>
#include <devmux/microkit.h>
#include <stdlib.h>
#include <x86intrin.h>

#include "stats.h"

static struct hw_device *dev;
static microkit_channel irq;
static double tsc_hz;
static uint64_t nreads, nwarm, nirqs;
static uint64_t *samples;
static uint64_t irq_done, irq_t0;
static bool irq_phase;
static unsigned bad;

static void report(const char *name, uint64_t *s, size_t n)
{
    char line[400];
    bench_summary(line, sizeof(line), name, s, n, tsc_hz);
    devmux_log("%s", line);
}

static void check(bool ok)
{
    bad += !ok;
}

static void mmio_phases(void)
{
    /* Warm-up: QEMU's TCG and memory-region caches, the supervisor's and
     * our pages and branch predictors, before anything counts. */
    for (uint64_t i = 0; i < nwarm; i++)
        check(hw_read32(dev, 0, EDU_IDENT) == EDU_ID_VALUE);

    for (uint64_t i = 0; i < nreads; i++) {
        uint64_t t0 = __rdtsc();
        uint32_t v = hw_read32(dev, 0, EDU_IDENT);
        samples[i] = __rdtsc() - t0;
        check(v == EDU_ID_VALUE);
    }
    report("read", samples, nreads);

    /* A posted write alone returns after the send; it is paid later, by
     * whatever read comes next, which is why "pair" and "burst" exist. */
    for (uint64_t i = 0; i < nreads; i++) {
        uint64_t t0 = __rdtsc();
        hw_write32(dev, 0, EDU_LIVENESS, (uint32_t)i);
        samples[i] = __rdtsc() - t0;
        /* Drain after each so the socket never fills and the next write
         * does not wait for the supervisor to catch up. */
        check(hw_read32(dev, 0, EDU_LIVENESS) == ~(uint32_t)i);
    }
    report("write", samples, nreads);

    for (uint64_t i = 0; i < nreads; i++) {
        uint64_t t0 = __rdtsc();
        hw_write32(dev, 0, EDU_LIVENESS, (uint32_t)i);
        uint32_t v = hw_read32(dev, 0, EDU_LIVENESS);
        samples[i] = __rdtsc() - t0;
        check(v == ~(uint32_t)i);
    }
    report("pair", samples, nreads);

    /* Writes streamed without waiting: what a driver pays per register
     * write when it batches them (the socket buffer absorbs the burst). */
    uint64_t t0 = __rdtsc();
    for (uint64_t i = 0; i < nreads; i++)
        hw_write32(dev, 0, EDU_LIVENESS, (uint32_t)i);
    check(hw_read32(dev, 0, EDU_LIVENESS) == ~(uint32_t)(nreads - 1));
    uint64_t per = (__rdtsc() - t0) / nreads;
    samples[0] = per;
    report("burst", samples, 1);
}

static void irq_fire(void)
{
    irq_t0 = __rdtsc();
    hw_write32(dev, 0, EDU_IRQ_RAISE, 1);
}

static void irq_seen(void)
{
    uint64_t t1 = __rdtsc();
    samples[irq_done++] = t1 - irq_t0;
    /* Clear the cause in the device first, then acknowledge, as a driver
     * must (docs/hw.md); the status read orders the ack (and the line going
     * down) before the next raise, so each sample is one clean edge. */
    hw_write32(dev, 0, EDU_IRQ_ACK, 1);
    microkit_irq_ack(irq);
    check(hw_read32(dev, 0, EDU_IRQ_STAT) == 0);
    if (irq_done < nirqs) {
        irq_fire();
        return;
    }
    report("irq", samples, nirqs);
    check(hw_error(dev) == 0);
    const struct hw_stats *st = hw_stats(dev);
    devmux_log("hw-bench: DONE bad=%u reads=%" PRIu64 " writes=%" PRIu64 " irqs=%" PRIu64, bad,
               st->reads, st->writes, st->irqs);
}

void init(void)
{
    dev = hw_open("dev", &irq);
    tsc_hz = (double)devmux_config_u64("tsc_hz", 0);
    nreads = devmux_config_u64("reads", 20000);
    nwarm = devmux_config_u64("warm", 2000);
    nirqs = devmux_config_u64("irqs", 2000);
    uint64_t most = nreads > nirqs ? nreads : nirqs;
    samples = calloc(most ? most : 1, sizeof(*samples));
    if (!dev || tsc_hz <= 0 || !nreads || !nirqs || !samples) {
        devmux_log("hw-bench: DONE bad=1 (no device, tsc_hz or memory)");
        return;
    }
    uint32_t id = hw_read32(dev, 0, EDU_IDENT);
    if (id != EDU_ID_VALUE) {
        devmux_log("hw-bench: DONE bad=1 (ident %#x, not edu)", id);
        return;
    }
    /* Measure after init returns, so the supervisor has our READY and we
     * run in the ordinary event loop, as a driver does. */
    devmux_timeout(10000000);
}

void notified(microkit_channel ch)
{
    if (ch == DEVMUX_TIMER_CHANNEL && !irq_phase) {
        mmio_phases();
        irq_phase = true;
        irq_fire();
    } else if (ch == irq && irq_phase && irq_done < nirqs) {
        irq_seen();
    } else if (ch == irq) {
        microkit_irq_ack(irq);
    }
}
