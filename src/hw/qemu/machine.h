/*
 * A QEMU machine with no guest: q35 under TCG, its RAM in a memfd we map
 * too (so DMA memory is real guest-physical memory: address = offset), a
 * 64 KiB firmware of `hlt` instructions so the CPU idles while devices keep
 * running, qtest on a socket pair for registers and interrupts, and QMP on
 * another for hot-plug.
 * docs/research/qemu-machine.md has the facts this rests on.
 */
#ifndef DEVMUX_HW_QEMU_MACHINE_H
#define DEVMUX_HW_QEMU_MACHINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "hw/qemu/qmp.h"
#include "hw/qemu/qtest.h"

struct qemu_machine {
    pid_t pid;
    int ram_fd;
    bool own_ram; /* we created ram_fd (and close it on stop) */
    void *ram;
    size_t ram_size;
    struct qtest qt;
    /* QMP on its own socket pair, negotiated.  Its unplug hook ejects PCI
     * devices from ACPI hot-plug buses over qt, so m must not move while
     * the machine runs. */
    struct qmp qmp;
};

struct qemu_machine_opts {
    size_t ram_size; /* whole MiB */
    /* Guest RAM to reuse (a machine restarted under running components
     * keeps their DMA memory), or -1 for a new memfd. */
    int ram_fd;
    const char *const *extra; /* more arguments (devices, netdevs), NULL-terminated */
    const int *keep_fds;      /* descriptors extra refers to (fd=N), inherited */
    size_t nkeep;
    /* Memory slots for pc-dimm devices in extra, and the most memory the
     * machine may have with them (whole MiB); 0: none. */
    unsigned dimm_slots;
    uint64_t maxmem;
    int err_fd; /* QEMU's stderr, or -1: ours */
    qtest_irq_fn on_irq;
    void *irq_ctx;
};

/* Starts QEMU.  Returns 0, or -errno with the reason printed to stderr. */
int qemu_machine_start(struct qemu_machine *m, const struct qemu_machine_opts *o);
/* Kills QEMU (if running), waits for it, unmaps the RAM (and closes it if
 * it was ours). */
void qemu_machine_stop(struct qemu_machine *m);

/* Completes the unplug of the device in slot of the bus behind the
 * pcie-root-port port_id, which QEMU 7.2 leaves to the guest's ACPI code
 * (docs/research/qemu-machine.md §6): selects the bus's hot-plug number
 * (QMP qom-get acpi-pcihp-bsel) and ejects the slot over qtest.  Only a
 * slot with an unplug pending (device_del accepted) is ejected: -ENOENT
 * otherwise.  qmp_device_del on m->qmp does this by itself. */
int qemu_pci_eject(struct qemu_machine *m, const char *port_id, unsigned slot, char *err,
                   size_t errlen);

/* The firmware: 64 KiB of hlt, reset vector (offset 0xfff0) cli; hlt;
 * jmp back.  Writes it to fd. */
int qemu_write_firmware(int fd);

#endif
