/*
 * net-tsc-hz: prints the TSC frequency in Hz, measured by comparing rdtsc
 * with CLOCK_MONOTONIC_RAW over 100 ms (best of three), so bench/net/run.sh
 * can turn CPU seconds into TSC cycles.  Not a component.
 */
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <x86intrin.h>

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int main(void)
{
    double best = 0;
    for (int round = 0; round < 3; round++) {
        uint64_t t0 = now_ns(), c0 = __rdtsc();
        struct timespec sl = {.tv_sec = 0, .tv_nsec = 100000000};
        nanosleep(&sl, NULL);
        uint64_t c1 = __rdtsc(), t1 = now_ns();
        double hz = (double)(c1 - c0) * 1e9 / (double)(t1 - t0);
        /* The rounds should agree; keep the one least disturbed (a
         * preemption between the reads of a pair inflates the time). */
        if (hz > best)
            best = hz;
    }
    printf("%.0f\n", best);
    return 0;
}
