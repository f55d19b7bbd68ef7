/*
 * hog: a component that takes more than its share on purpose, chosen by its
 * config `action`, so integration tests can check that the supervisor holds
 * it to its limits (tests/integration/limits.sh).
 *
 *   memory   map and touch anonymous memory 1 MiB at a time, without end;
 *            if a mapping fails, say after how much and return from init
 *   spin     burn CPU in init without end
 *   threads  start threads (64 KiB stacks) until that fails; say how many
 *            and why; they and we then idle
 *   storm    write log lines (`log: 1`) and send control messages
 *            (`ctrl: 1`) without pause
 *   idle     nothing (a neighbour that only has to stay alive)
 */
#include <devmux/microkit.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "runtime/abi.h" /* the control socket, to storm it */

static void pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static void memory(void)
{
    const size_t chunk = 1 << 20;
    for (unsigned long mib = 0;; mib++) {
        /* mmap, not malloc: the same under ASan (no quarantine, no shadow
         * of its own) and the failure is the kernel's answer. */
        char *p = mmap(NULL, chunk, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            devmux_log("hog: mapping failed after %lu MiB: %s", mib, strerror(errno));
            return; /* keeps what it has, and runs on */
        }
        for (size_t off = 0; off < chunk; off += 4096)
            p[off] = 1;
        if (mib % 16 == 0)
            devmux_log("hog: %lu MiB touched", mib);
    }
}

static void *sleeper(void *arg)
{
    (void)arg;
    for (;;)
        pause_ms(1000);
    return NULL;
}

static void threads(void)
{
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    unsigned n = 0;
    int err;
    pthread_t t;
    while ((err = pthread_create(&t, &attr, sleeper, NULL)) == 0 && n < 4096)
        n++;
    devmux_log("hog: %u threads started, then %s (%s)", n, err ? strerrorname_np(err) : "none",
               err ? strerror(err) : "stopped at 4096");
}

void init(void)
{
    const char *action = devmux_config_str("action", "idle");
    devmux_log("hog: action %s, restart %u", action, devmux_restarts());
    if (!strcmp(action, "memory")) {
        memory();
    } else if (!strcmp(action, "spin")) {
        for (volatile unsigned long k = 0;; k++)
            ;
    } else if (!strcmp(action, "threads")) {
        threads();
    } else if (!strcmp(action, "storm")) {
        bool log = devmux_config_u64("log", 1), ctrl = devmux_config_u64("ctrl", 1);
        struct dmx_ctrl ready = {.type = DMX_CTRL_READY};
        for (unsigned long k = 0;; k++) {
            if (log)
                devmux_log("storm %lu", k);
            if (ctrl)
                send(DMX_FD_CTRL, &ready, sizeof(ready), MSG_DONTWAIT | MSG_NOSIGNAL);
        }
    }
}

void notified(microkit_channel ch)
{
    (void)ch;
}
