/*
 * ping: sends counters to pong through a free/active queue pair and checks
 * every one that comes back incremented.  Every
 * `report_ms` it asks pong over a protected call how many it has seen.
 */
#include <devmux/microkit.h>
#include <devmux/queue.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "protocol.h"

static struct dmq_producer active;
static struct dmq_consumer freeq;
static struct dmq_pool pool; /* tracks which buffers pong holds */
static uint64_t *bufs;
static uint32_t nbufs, buf_size;
static uint64_t *sent; /* value each buffer carries, 0 = unknown */
static uint64_t next_value = 1, round_trips, mismatches, report_ms, last_report_ns, last_trips;

uintptr_t ring_vaddr; /* set by the system description (setvar_vaddr) */

static void on_fault(void *ctx, enum dmq_fault f, const char *q, uint64_t a, uint64_t b)
{
    (void)ctx;
    devmux_log("peer misbehaved on queue %s: fault %d (%#" PRIx64 ", %#" PRIx64 ")", q, f, a, b);
}

static void send_one(uint32_t i)
{
    uint64_t *slot = (uint64_t *)((char *)bufs + (size_t)i * buf_size);
    *slot = next_value;
    sent[i] = next_value;
    next_value += 2;
    struct dmq_desc d = {.offset = (uint64_t)i * buf_size, .len = sizeof(uint64_t)};
    dmq_pool_give(&pool, i);
    dmq_put(&active, &d);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void report(void)
{
    double secs = (double)(now_ns() - last_report_ns) / 1e9;
    microkit_msginfo r = microkit_ppcall(PP_CH_CALL, microkit_msginfo_new(PP_LABEL_STATS, 0));
    if (microkit_msginfo_get_label(r) == DEVMUX_PPC_FAULT) {
        devmux_log("%" PRIu64 " round trips; pong unreachable for stats (it faulted)", round_trips);
        return;
    }
    devmux_log("%" PRIu64 " round trips (%.1f M/s), %" PRIu64 " mismatches; pong has seen %" PRIu64
               " counters, last %" PRIu64,
               round_trips, (double)(round_trips - last_trips) / secs / 1e6, mismatches,
               microkit_mr_get(0), microkit_mr_get(1));
}

/* Returned buffers: check, then send them straight out again. */
static void pump(void)
{
    struct dmq_desc d;
    bool sent_any = false;
    for (;;) {
        while (dmq_avail(&freeq) > 0) {
            dmq_take(&freeq, &d);
            uint32_t i;
            if (!dmq_pool_accept(&pool, &freeq.q, &d, &i))
                continue;
            uint64_t got = *(volatile uint64_t *)((char *)bufs + (size_t)i * buf_size);
            if (sent[i] && got != sent[i] + 1) {
                mismatches++;
                devmux_log("buffer %u came back with %" PRIu64 ", expected %" PRIu64, i, got,
                           sent[i] + 1);
            }
            round_trips++;
            if (dmq_space(&active) > 0) {
                send_one(i);
                sent_any = true;
            }
        }
        if (dmq_release(&freeq))
            microkit_notify(PP_CH_DATA);
        if (!dmq_consumer_sleep(&freeq))
            break;
    }
    if (sent_any && dmq_publish(&active))
        microkit_notify(PP_CH_DATA);
    if (report_ms && now_ns() - last_report_ns >= report_ms * 1000000) {
        report();
        last_report_ns = now_ns();
        last_trips = round_trips;
    }
}

void init(void)
{
    const struct devmux_item *a = devmux_item(PP_REGION, PP_ACTIVE);
    const struct devmux_item *f = devmux_item(PP_REGION, PP_FREE);
    const struct devmux_item *b = devmux_item(PP_REGION, PP_BUFFERS);
    if (!a || !f || !b || !ring_vaddr) {
        devmux_log("the system description must give region '%s' with items '%s', '%s', '%s'",
                   PP_REGION, PP_ACTIVE, PP_FREE, PP_BUFFERS);
        abort();
    }
    report_ms = devmux_config_u64("report_ms", 1000);
    last_report_ns = now_ns();
    bufs = b->addr;
    nbufs = b->count;
    buf_size = b->elem;
    sent = calloc(nbufs, sizeof(*sent));
    /* Regions start zeroed, which is a valid empty ring, so both sides
     * attach without resetting anything: after a restart they resume. */
    dmq_producer_init(&active, a->addr, a->size, a->count, PP_ACTIVE, false);
    dmq_consumer_init(&freeq, f->addr, f->size, f->count, PP_FREE, false);
    dmq_set_fault_handler(&active.q, on_fault, NULL);
    dmq_set_fault_handler(&freeq.q, on_fault, NULL);
    dmq_pool_init(&pool, b->size, buf_size, nbufs, false);

    /* After a restart, buffers still in either ring are pong's or on their
     * way back; the rest are ours to send. */
    bool *in_flight = calloc(nbufs, sizeof(bool));
    uint32_t head = atomic_load(&active.q.ring->head);
    for (uint32_t k = head; k != active.tail; k++) {
        uint32_t idx = (uint32_t)(active.q.ring->slots[(k & active.q.mask) * 2] / buf_size);
        if (idx < nbufs)
            in_flight[idx] = true;
    }
    uint32_t tail = freeq.tail_seen;
    for (uint32_t k = freeq.head; k != tail; k++) {
        uint32_t idx = (uint32_t)(freeq.q.ring->slots[(k & freeq.q.mask) * 2] / buf_size);
        if (idx < nbufs)
            in_flight[idx] = true;
    }
    for (uint32_t i = 0; i < nbufs; i++)
        if (in_flight[i])
            dmq_pool_give(&pool, i);
    if (devmux_restarts())
        next_value = 1000000001; /* a fresh odd range; old values are unknown */
    uint32_t n = 0;
    for (uint32_t i = 0; i < nbufs && dmq_space(&active) > 0; i++)
        if (!in_flight[i]) {
            send_one(i);
            n++;
        }
    free(in_flight);
    devmux_log("ping: %u buffers of %u bytes, %u sent, restart %u", nbufs, buf_size, n,
               devmux_restarts());
    /* Notify unconditionally: after a restart, pong may be asleep waiting
     * for a notify our previous incarnation never sent. */
    dmq_publish(&active);
    microkit_notify(PP_CH_DATA);
    /* Buffers may already be back; pump() also arms the wake-up flag and
     * re-checks, so nothing that arrived meanwhile is left waiting. */
    pump();
}

void notified(microkit_channel ch)
{
    if (ch == PP_CH_DATA)
        pump();
}

void peer_fault(microkit_channel ch, const struct devmux_fault_info *info)
{
    devmux_log("pong faulted on channel %u (signal %d, status %d)%s", ch, info->signal,
               info->exit_status, info->restarting ? "; it is being restarted" : "");
}

void peer_ready(microkit_channel ch)
{
    if (ch != PP_CH_DATA)
        return;
    devmux_log("pong is back; resuming");
    microkit_notify(PP_CH_DATA);
    pump();
}
