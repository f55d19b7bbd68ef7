/*
 * benchpd: the benchmark protection domain.  Its `role` config picks what
 * it measures with its peer, always through the real devmux runtime:
 *
 *   producer / consumer   queue throughput: `items` descriptors in batches
 *                         of up to `batch`, event-driven (each side polls
 *                         `spin` times, then sleeps through the wake-up flags)
 *   pinger / ponger       notification round trips, `rounds` of them
 *   caller / callee       protected-call round trips, `rounds` of them
 *
 * `cpu` pins the component to one core.  The measuring side logs one line
 * starting with "RESULT" that bench/run.sh collects.
 */
#include <devmux/microkit.h>
#include <devmux/queue.h>
#include <inttypes.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <x86intrin.h>

#define CH 0

static const char *role;
static struct dmq_producer prod;
static struct dmq_consumer cons;
static uint64_t items, batch, done, sum, rounds, spin, t0, c0;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void result(const char *what, uint64_t n, const char *unit)
{
    uint64_t ns = now_ns() - t0, cycles = __rdtsc() - c0;
    devmux_log("RESULT %s n=%" PRIu64 " ns=%" PRIu64 " rate=%.0f/s per=%.1fns tsc_per=%.1f %s",
               what, n, ns, (double)n * 1e9 / (double)ns, (double)ns / (double)n,
               (double)cycles / (double)n, unit);
}

static void produce(void)
{
    for (;;) {
        uint32_t room = dmq_space(&prod);
        /* Poll a while before paying for a sleep and a wake-up. */
        for (uint64_t s = 0; room == 0 && s < spin; s++) {
            __builtin_ia32_pause();
            room = dmq_space(&prod);
        }
        while (room == 0) {
            if (!dmq_producer_sleep(&prod))
                return; /* the consumer notifies us when it frees space */
            room = dmq_space(&prod);
        }
        uint64_t n = room < batch ? room : batch;
        if (n > items - done)
            n = items - done;
        for (uint64_t k = 0; k < n; k++) {
            struct dmq_desc d = {.offset = done + k, .len = 64};
            dmq_put(&prod, &d);
        }
        done += n;
        if (dmq_publish(&prod))
            microkit_notify(CH);
        if (done == items) {
            devmux_log("producer: all %" PRIu64 " items queued", items);
            return;
        }
    }
}

static void consume(void)
{
    struct dmq_desc d;
    for (;;) {
        uint32_t n = dmq_avail(&cons);
        for (uint64_t s = 0; n == 0 && s < spin; s++) {
            __builtin_ia32_pause();
            n = dmq_avail(&cons);
        }
        if (n == 0) {
            if (!dmq_consumer_sleep(&cons))
                return;
            continue;
        }
        if (done == 0) {
            t0 = now_ns();
            c0 = __rdtsc();
        }
        for (uint32_t k = 0; k < n; k++) {
            dmq_take(&cons, &d);
            if (d.offset != done)
                devmux_log("out of order: got %" PRIu64 ", expected %" PRIu64, d.offset, done);
            sum += d.offset;
            done++;
        }
        if (dmq_release(&cons))
            microkit_notify(CH);
        if (done == items) {
            uint64_t want = items * (items - 1) / 2;
            result("queue", items, sum == want ? "checksum-ok" : "CHECKSUM-BAD");
            return;
        }
    }
}

void init(void)
{
    role = devmux_config_str("role", "");
    items = devmux_config_u64("items", 100000000);
    batch = devmux_config_u64("batch", 64);
    rounds = devmux_config_u64("rounds", 100000);
    spin = devmux_config_u64("spin", 0);
    long cpu = (long)devmux_config_u64("cpu", 999);
    if (cpu != 999) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        sched_setaffinity(0, sizeof(set), &set);
    }
    const struct devmux_item *q = devmux_item("ring", "q");
    if (!strcmp(role, "producer")) {
        dmq_producer_init(&prod, q->addr, q->size, q->count, "q", false);
        produce();
    } else if (!strcmp(role, "consumer")) {
        dmq_consumer_init(&cons, q->addr, q->size, q->count, "q", false);
        consume();
    } else if (!strcmp(role, "pinger")) {
        t0 = now_ns();
        c0 = __rdtsc();
        microkit_notify(CH);
    } else if (!strcmp(role, "caller")) {
        t0 = now_ns();
        c0 = __rdtsc();
        for (uint64_t i = 0; i < rounds; i++) {
            microkit_mr_set(0, i);
            microkit_msginfo r = microkit_ppcall(1, microkit_msginfo_new(7, 1));
            if (microkit_msginfo_get_label(r) != 8 || microkit_mr_get(0) != i + 1) {
                devmux_log("ppcall %" PRIu64 " failed", i);
                return;
            }
        }
        result("ppcall", rounds, "round-trip");
    }
}

void notified(microkit_channel ch)
{
    if (!strcmp(role, "producer")) {
        if (done < items)
            produce();
    } else if (!strcmp(role, "consumer")) {
        if (done < items)
            consume();
    } else if (!strcmp(role, "pinger")) {
        if (++done == rounds)
            result("notify", rounds, "round-trip");
        else if (done < rounds)
            microkit_notify(CH);
    } else if (!strcmp(role, "ponger")) {
        microkit_notify(CH);
    }
}

microkit_msginfo protected(microkit_channel ch, microkit_msginfo msginfo)
{
    microkit_mr_set(0, microkit_mr_get(0) + 1);
    return microkit_msginfo_new(microkit_msginfo_get_label(msginfo) + 1, 1);
}
