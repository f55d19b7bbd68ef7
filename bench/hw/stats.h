/*
 * Shared by hw-bench (through devmux) and hw-qtest-direct (without it), so
 * that both print the same statistics in the same line format and
 * bench/hw/run.sh can put them side by side.
 */
#ifndef DEVMUX_BENCH_HW_STATS_H
#define DEVMUX_BENCH_HW_STATS_H

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>

/* The edu device's registers (QEMU hw/misc/edu.c), all in BAR0. */
#define EDU_IDENT     0x00 /* reads 0x010000ed */
#define EDU_LIVENESS  0x04 /* reads back the complement of what was written */
#define EDU_IRQ_STAT  0x24
#define EDU_IRQ_RAISE 0x60 /* status |= value, line up */
#define EDU_IRQ_ACK   0x64 /* status &= ~value, line down when 0 */
#define EDU_ID_VALUE  0x010000edu

/* Heapsort, not qsort: glibc's qsort asks sysinfo(2) how much memory the
 * machine has before it picks a merge buffer, and a component's seccomp
 * filter kills it for that system call. */
static inline void bench_sift(uint64_t *s, size_t root, size_t n)
{
    for (size_t c; (c = 2 * root + 1) < n; root = c) {
        if (c + 1 < n && s[c + 1] > s[c])
            c++;
        if (s[root] >= s[c])
            return;
        uint64_t t = s[root];
        s[root] = s[c];
        s[c] = t;
    }
}

static inline void bench_sort(uint64_t *s, size_t n)
{
    for (size_t i = n / 2; i-- > 0;)
        bench_sift(s, i, n);
    for (size_t end = n; end-- > 1;) {
        uint64_t t = s[0];
        s[0] = s[end];
        s[end] = t;
        bench_sift(s, 0, end);
    }
}

/* Nearest-rank percentile of a sorted array. */
static inline uint64_t bench_pct(const uint64_t *s, size_t n, unsigned pct)
{
    size_t i = (n * pct + 99) / 100;
    return s[i ? i - 1 : 0];
}

/* Sorts the samples (TSC ticks) and formats one result line into buf:
 * "RESULT NAME n=N median_us= p10_us= p90_us= p99_us= median_cyc= ...". */
static inline void bench_summary(char *buf, size_t len, const char *name, uint64_t *s, size_t n,
                                 double tsc_hz)
{
    if (!n) {
        snprintf(buf, len, "RESULT %s n=0", name);
        return;
    }
    bench_sort(s, n);
    uint64_t p50 = bench_pct(s, n, 50), p10 = bench_pct(s, n, 10), p90 = bench_pct(s, n, 90),
             p99 = bench_pct(s, n, 99);
    double us = 1e6 / tsc_hz;
    snprintf(
        buf, len,
        "RESULT %s n=%zu median_us=%.2f p10_us=%.2f p90_us=%.2f p99_us=%.2f median_cyc=%" PRIu64
        " p10_cyc=%" PRIu64 " p90_cyc=%" PRIu64 " p99_cyc=%" PRIu64,
        name, n, (double)p50 * us, (double)p10 * us, (double)p90 * us, (double)p99 * us, p50, p10,
        p90, p99);
}

#endif
