/* Two-process stress test of the devmux queue.
 *
 *   queue_stress [items [spin]]
 *
 * A memfd mapping shared by a producer (the parent) and a consumer (a forked
 * child) holds a pair of rings and a data region cut into buffers, as in real
 * buffer passing:
 *   - free ring (consumer -> producer): empty buffers;
 *   - active ring (producer -> consumer): filled buffers.
 * The consumer first hands every buffer to the producer.  For each item the
 * producer takes a free buffer, writes a payload word derived from the
 * sequence number into it, and sends it with the sequence number in the
 * descriptor's meta field.  The consumer checks the order, the length and the
 * payload, folds everything into a checksum, and returns the buffer.  Both
 * sides run every descriptor they receive through dmq_pool_accept().
 *
 * Waiting is a bounded spin followed by the sleep/notify protocol over one
 * eventfd per side, so the wake-up path runs all the time.  A wait that times
 * out while its condition is already true is a lost wake-up and fails the
 * test.  Exit status 0 only if the consumer saw every item exactly once and in
 * order, both checksums agree and no side reported a fault.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "devmux/queue.h"

#ifndef ACTIVE_CAP
#define ACTIVE_CAP 64u /* smaller than the pool: the producer does hit "full" */
#endif
#ifndef NBUF
#define NBUF 256u /* buffers; the free ring holds all of them */
#endif
#define FREE_CAP        NBUF
#define BUF_SIZE        64u
#define PAYLOAD_LEN     8u
#define DEFAULT_ITEMS   10000000ull
#define DEFAULT_SPIN    100u
#define WAIT_TIMEOUT_MS 5000

/* Results the consumer leaves for the producer, in the shared mapping. */
struct results {
    uint64_t received;
    uint64_t checksum;
    uint64_t errors;
    uint64_t lost_wakeups;
    uint64_t sleeps_empty;
    uint64_t sleeps_full;
    uint64_t notifies;
    uint64_t faults;
    uint64_t first_bad_seq;
};

struct side {
    const char *who;
    int my_efd;   /* the peer notifies us here */
    int peer_efd; /* we notify the peer here */
    pid_t peer;   /* child pid (producer only), for liveness checks */
    unsigned spin;
    uint64_t sleeps_empty; /* waits for a ring to fill */
    uint64_t sleeps_full;  /* waits for a ring to drain */
    uint64_t notifies, lost_wakeups;
};

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint64_t fnv_word(uint64_t h, uint64_t w)
{
    for (int i = 0; i < 8; i++) {
        h ^= (w >> (8 * i)) & 0xff;
        h *= 0x100000001b3ull;
    }
    return h;
}

#define FNV_INIT 0xcbf29ce484222325ull

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    perror(what);
    exit(2);
}

static void notify(struct side *s)
{
    uint64_t one = 1;
    s->notifies++;
    while (write(s->peer_efd, &one, sizeof(one)) != sizeof(one)) {
        if (errno != EINTR)
            die("eventfd write");
    }
}

static bool peer_gone(struct side *s)
{
    if (s->peer > 0) {
        int status;
        return waitpid(s->peer, &status, WNOHANG) == s->peer;
    }
    return getppid() == 1;
}

/* Block until notified.  ready() re-checks the condition waited for; if it
 * holds after a long quiet spell, the notify for it was lost. */
static void wait_notify(struct side *s, bool (*ready)(void *), void *arg)
{
    struct pollfd pfd = {.fd = s->my_efd, .events = POLLIN};
    for (;;) {
        int n = poll(&pfd, 1, WAIT_TIMEOUT_MS);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            die("poll");
        if (n > 0)
            break;
        if (ready(arg)) {
            fprintf(stderr, "queue-stress: %s: lost wake-up\n", s->who);
            s->lost_wakeups++;
            return;
        }
        if (peer_gone(s)) {
            fprintf(stderr, "queue-stress: %s: peer died\n", s->who);
            exit(1);
        }
    }
    uint64_t v;
    if (read(s->my_efd, &v, sizeof(v)) != sizeof(v) && errno != EINTR)
        die("eventfd read");
}

/* ---- the four ways to wait -------------------------------------------- */

static bool have_items(void *c)
{
    return dmq_avail(c) > 0;
}

static bool have_space(void *p)
{
    return dmq_space(p) > 0;
}

/* Dequeue, spinning a while and then sleeping while the ring is empty. */
static void dequeue_wait(struct side *s, struct dmq_consumer *c, struct dmq_desc *d)
{
    unsigned spun = 0;
    for (;;) {
        int r = dmq_dequeue(c, d);
        if (r >= 0) {
            if (r == 1)
                notify(s);
            return;
        }
        if (spun++ < s->spin) {
            cpu_relax();
            continue;
        }
        spun = 0;
        if (!dmq_consumer_sleep(c)) {
            s->sleeps_empty++;
            wait_notify(s, have_items, c);
        }
    }
}

/* Enqueue, spinning a while and then sleeping while the ring is full. */
static void enqueue_wait(struct side *s, struct dmq_producer *p, const struct dmq_desc *d)
{
    unsigned spun = 0;
    for (;;) {
        int r = dmq_enqueue(p, d);
        if (r >= 0) {
            if (r == 1)
                notify(s);
            return;
        }
        if (spun++ < s->spin) {
            cpu_relax();
            continue;
        }
        spun = 0;
        if (!dmq_producer_sleep(p)) {
            s->sleeps_full++;
            wait_notify(s, have_space, p);
        }
    }
}

/* ---- shared mapping ----------------------------------------------------- */

struct shm {
    uint8_t *base;
    size_t size;
    struct results *res;
    void *active_mem, *free_mem;
    size_t active_size, free_size;
    uint8_t *data;
    size_t data_size;
};

static size_t round_page(size_t n)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    return (n + page - 1) / page * page;
}

static void shm_create(struct shm *m)
{
    size_t res_size = round_page(sizeof(struct results));
    m->active_size = round_page(DMQ_RING_BYTES(ACTIVE_CAP));
    m->free_size = round_page(DMQ_RING_BYTES(FREE_CAP));
    m->data_size = round_page((size_t)NBUF * BUF_SIZE);
    m->size = res_size + m->active_size + m->free_size + m->data_size;

    int fd = memfd_create("devmux-queue-stress", MFD_CLOEXEC);
    if (fd < 0)
        die("memfd_create");
    if (ftruncate(fd, (off_t)m->size) < 0)
        die("ftruncate");
    m->base = mmap(NULL, m->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m->base == MAP_FAILED)
        die("mmap");
    close(fd);
    m->res = (struct results *)m->base;
    m->active_mem = m->base + res_size;
    m->free_mem = m->base + res_size + m->active_size;
    m->data = m->base + res_size + m->active_size + m->free_size;
}

static void count_fault(void *ctx, enum dmq_fault fault, const char *queue, uint64_t a, uint64_t b)
{
    static unsigned printed;
    (void)ctx;
    if (printed++ < 10)
        fprintf(stderr, "queue-stress: fault %d on %s (%" PRIu64 ", %" PRIu64 ")\n", (int)fault,
                queue, a, b);
}

static uint64_t faults_of(const struct dmq_common *q)
{
    return q->stats.bad_index + q->stats.bad_desc + q->stats.bad_owner;
}

/* ---- consumer (child) --------------------------------------------------- */

static int run_consumer(struct shm *m, struct side *s, uint64_t items)
{
    struct dmq_consumer active;
    struct dmq_producer freeq;
    struct dmq_pool pool;
    struct results *res = m->res;

    if (dmq_consumer_init(&active, m->active_mem, m->active_size, ACTIVE_CAP, "active/c", false) ||
        dmq_producer_init(&freeq, m->free_mem, m->free_size, FREE_CAP, "free/c", false))
        die("consumer attach");
    dmq_set_fault_handler(&active.q, count_fault, NULL);
    dmq_set_fault_handler(&freeq.q, count_fault, NULL);
    /* We own every buffer at first and hand them all to the producer. */
    if (dmq_pool_init(&pool, m->data_size, BUF_SIZE, NBUF, false))
        die("pool");
    for (uint32_t i = 0; i < NBUF; i++) {
        struct dmq_desc d = {.offset = (uint64_t)i * BUF_SIZE, .len = 0, .meta = 0};
        if (!dmq_pool_give(&pool, i))
            die("pool give");
        enqueue_wait(s, &freeq, &d);
    }

    uint64_t sum = FNV_INIT, errors = 0, first_bad = UINT64_MAX, received = 0;
    for (uint64_t seq = 0; seq < items; seq++) {
        struct dmq_desc d;
        uint32_t idx;
        dequeue_wait(s, &active, &d);
        if (!dmq_pool_accept(&pool, &active.q, &d, &idx)) {
            errors++;
            if (first_bad == UINT64_MAX)
                first_bad = seq;
            continue; /* not ours: nothing to read or return */
        }
        received++;
        uint64_t payload;
        memcpy(&payload, m->data + d.offset, sizeof(payload));
        if (d.meta != (uint32_t)seq || d.len != PAYLOAD_LEN || payload != mix(seq)) {
            errors++;
            if (first_bad == UINT64_MAX)
                first_bad = seq;
        }
        sum = fnv_word(sum, d.meta);
        sum = fnv_word(sum, payload);

        struct dmq_desc back = {.offset = d.offset, .len = 0, .meta = 0};
        if (!dmq_pool_give(&pool, idx))
            errors++;
        enqueue_wait(s, &freeq, &back);
    }
    /* Nothing more may arrive. */
    if (dmq_avail(&active) != 0)
        errors++;

    res->received = received;
    res->checksum = sum;
    res->errors = errors;
    res->first_bad_seq = first_bad;
    res->lost_wakeups = s->lost_wakeups;
    res->sleeps_empty = s->sleeps_empty;
    res->sleeps_full = s->sleeps_full;
    res->notifies = s->notifies;
    res->faults = faults_of(&active.q) + faults_of(&freeq.q);
    dmq_pool_fini(&pool);
    return errors || s->lost_wakeups || res->faults ? 1 : 0;
}

/* ---- producer (parent) -------------------------------------------------- */

static uint64_t run_producer(struct shm *m, struct side *s, uint64_t items, uint64_t *faults,
                             uint64_t *errors)
{
    struct dmq_producer active;
    struct dmq_consumer freeq;
    struct dmq_pool pool;

    if (dmq_producer_init(&active, m->active_mem, m->active_size, ACTIVE_CAP, "active/p", false) ||
        dmq_consumer_init(&freeq, m->free_mem, m->free_size, FREE_CAP, "free/p", false))
        die("producer attach");
    dmq_set_fault_handler(&active.q, count_fault, NULL);
    dmq_set_fault_handler(&freeq.q, count_fault, NULL);
    /* The consumer holds every buffer until it hands them over. */
    if (dmq_pool_init(&pool, m->data_size, BUF_SIZE, NBUF, true))
        die("pool");

    uint64_t sum = FNV_INIT;
    for (uint64_t seq = 0; seq < items; seq++) {
        struct dmq_desc d;
        uint32_t idx;
        do {
            dequeue_wait(s, &freeq, &d);
            if (!dmq_pool_accept(&pool, &freeq.q, &d, &idx))
                ++*errors;
            else
                break;
        } while (*errors < 100);
        if (*errors >= 100)
            break;

        uint64_t payload = mix(seq);
        memcpy(m->data + d.offset, &payload, sizeof(payload));
        d.len = PAYLOAD_LEN;
        d.meta = (uint32_t)seq;
        sum = fnv_word(sum, d.meta);
        sum = fnv_word(sum, payload);
        if (!dmq_pool_give(&pool, idx))
            ++*errors;
        enqueue_wait(s, &active, &d);
    }
    *faults = faults_of(&active.q) + faults_of(&freeq.q);
    dmq_pool_fini(&pool);
    return sum;
}

int main(int argc, char **argv)
{
    uint64_t items = DEFAULT_ITEMS;
    unsigned spin = DEFAULT_SPIN;
    if (argc > 1) {
        char *end;
        errno = 0;
        items = strtoull(argv[1], &end, 0);
        if (errno || *end || items == 0) {
            fprintf(stderr, "usage: %s [items [spin]]\n", argv[0]);
            return 2;
        }
    }
    if (argc > 2)
        spin = (unsigned)strtoul(argv[2], NULL, 0);

    struct shm m;
    shm_create(&m);
    /* Initialise both rings before either side runs. */
    struct dmq_producer ap;
    struct dmq_consumer fc;
    if (dmq_producer_init(&ap, m.active_mem, m.active_size, ACTIVE_CAP, "active", true) ||
        dmq_consumer_init(&fc, m.free_mem, m.free_size, FREE_CAP, "free", true))
        die("ring init");

    int efd_prod = eventfd(0, EFD_CLOEXEC);
    int efd_cons = eventfd(0, EFD_CLOEXEC);
    if (efd_prod < 0 || efd_cons < 0)
        die("eventfd");

    fflush(NULL);
    pid_t parent = getpid();
    double t0 = now();
    pid_t child = fork();
    if (child < 0)
        die("fork");
    if (child == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(1);
        struct side s = {
            .who = "consumer", .my_efd = efd_cons, .peer_efd = efd_prod, .peer = 0, .spin = spin};
        int rc = run_consumer(&m, &s, items);
        munmap(m.base, m.size);
        exit(rc);
    }

    struct side s = {
        .who = "producer", .my_efd = efd_prod, .peer_efd = efd_cons, .peer = child, .spin = spin};
    uint64_t faults = 0, errors = 0;
    uint64_t sum = run_producer(&m, &s, items, &faults, &errors);

    int status;
    while (waitpid(child, &status, 0) < 0) {
        if (errno != EINTR)
            die("waitpid");
    }
    double secs = now() - t0;

    const struct results *r = m.res;
    bool child_ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    bool ok = child_ok && errors == 0 && faults == 0 && s.lost_wakeups == 0 &&
              r->received == items && r->errors == 0 && r->faults == 0 && r->lost_wakeups == 0 &&
              r->checksum == sum;

    printf("queue-stress: %" PRIu64 " items in %.3f s: %.0f items/s\n", items, secs,
           (double)items / secs);
    printf("  producer: checksum %016" PRIx64 ", slept on empty free ring %" PRIu64
           ", on full active ring %" PRIu64 ", notifies sent %" PRIu64 "\n",
           sum, s.sleeps_empty, s.sleeps_full, s.notifies);
    printf("  consumer: checksum %016" PRIx64 ", slept on empty active ring %" PRIu64
           ", on full free ring %" PRIu64 ", notifies sent %" PRIu64 "\n",
           r->checksum, r->sleeps_empty, r->sleeps_full, r->notifies);
    printf("  received %" PRIu64 ", faults %" PRIu64 "/%" PRIu64 ", errors %" PRIu64 "/%" PRIu64
           ", lost wake-ups %" PRIu64 "/%" PRIu64 " (producer/consumer)\n",
           r->received, faults, r->faults, errors, r->errors, s.lost_wakeups, r->lost_wakeups);
    if (r->errors && r->first_bad_seq != UINT64_MAX)
        printf("  first bad item: %" PRIu64 "\n", r->first_bad_seq);
    if (!child_ok)
        printf("  consumer exit status 0x%x\n", (unsigned)status);
    printf("queue-stress: %s\n", ok ? "PASS" : "FAIL");

    close(efd_prod);
    close(efd_cons);
    munmap(m.base, m.size);
    return ok ? 0 : 1;
}
