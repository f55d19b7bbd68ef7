/*
 * A client of QEMU's qtest protocol: the one serialised path to a QEMU
 * machine's registers (port I/O, MMIO, guest memory) and its interrupt
 * lines.  docs/research/qemu-machine.md records the protocol as observed.
 *
 * QEMU aborts on a malformed line, so every request is built here from
 * typed arguments and checked before it is sent; nothing a caller passes
 * can produce one.  Interrupt lines ("IRQ raise N") arrive at any time,
 * even between a request and its reply; they go to the callback.
 */
#ifndef DEVMUX_HW_QEMU_QTEST_H
#define DEVMUX_HW_QEMU_QTEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* How long a reply may take before the machine counts as gone. */
#define QTEST_TIMEOUT_MS 5000

typedef void (*qtest_irq_fn)(void *ctx, unsigned line, bool raised);

struct qtest {
    int fd;
    char buf[4096]; /* bytes read but not yet parsed into lines */
    size_t len;
    qtest_irq_fn on_irq;
    void *irq_ctx;
    uint64_t requests, irq_events;
};

/* Takes over fd (a connected stream socket to QEMU's qtest chardev). */
void qtest_init(struct qtest *q, int fd, qtest_irq_fn on_irq, void *ctx);
void qtest_close(struct qtest *q);

/* Each returns 0, -EPIPE when QEMU is gone, -EPROTO on a reply that is not
 * what the protocol promises, or -EINVAL for an argument no request may
 * carry (checked before anything is sent). */
int qtest_in(struct qtest *q, unsigned width, uint16_t port, uint32_t *value);
int qtest_out(struct qtest *q, unsigned width, uint16_t port, uint32_t value);
int qtest_read(struct qtest *q, unsigned width, uint64_t addr, uint64_t *value);
int qtest_write(struct qtest *q, unsigned width, uint64_t addr, uint64_t value);
/* Forward the IOAPIC's input lines to the callback. */
int qtest_intercept_irqs(struct qtest *q);
/* Reads and dispatches interrupt lines already waiting, without blocking. */
int qtest_poll(struct qtest *q);

#endif
