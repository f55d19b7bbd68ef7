/*
 * A QEMU machine with no guest: q35 under TCG, its RAM in a memfd we map
 * too (so DMA memory is real guest-physical memory: address = offset), a
 * 64 KiB firmware of `hlt` instructions so the CPU idles while devices keep
 * running, and qtest on a socket pair for registers and interrupts.
 * docs/research/qemu-machine.md has the facts this rests on.
 */
#ifndef DEVMUX_HW_QEMU_MACHINE_H
#define DEVMUX_HW_QEMU_MACHINE_H

#include <stddef.h>
#include <sys/types.h>

#include "hw/qemu/qtest.h"

struct qemu_machine {
    pid_t pid;
    int ram_fd;
    void *ram;
    size_t ram_size;
    struct qtest qt;
};

/* Starts QEMU with ram_size bytes of RAM (whole MiB) and the extra arguments (devices,
 * netdevs), NULL-terminated.  QEMU's stderr goes to err_fd (-1: ours).
 * Returns 0, or -errno with the reason printed to stderr. */
int qemu_machine_start(struct qemu_machine *m, size_t ram_size, const char *const *extra,
                       int err_fd, qtest_irq_fn on_irq, void *ctx);
/* Kills QEMU (if running), waits for it, unmaps the RAM. */
void qemu_machine_stop(struct qemu_machine *m);

/* The firmware: 64 KiB of hlt, reset vector (offset 0xfff0) cli; hlt;
 * jmp back.  Writes it to fd. */
int qemu_write_firmware(int fd);

#endif
