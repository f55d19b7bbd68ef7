/*
 * The supervisor's machines (machine.c): a running QEMU or a set of VFIO
 * devices, the devices' BAR assignment and interrupt routing, and the
 * per-driver request sockets of the qemu backend.
 */
#ifndef DEVMUX_SUPERVISOR_MACHINE_H
#define DEVMUX_SUPERVISOR_MACHINE_H

#include "hw/qemu/machine.h"
#include "hw/vfio/host.h"
#include "supervisor/supervisor.h"

struct mdev_rt {
    const struct sdf_machine_device *def;
    int comp;        /* the component granted this device, or -1 */
    int wire_fd;     /* qemu: the TAP behind -netdev tap,fd=, or -1 */
    int irq_efd;     /* the driver's interrupt: one count per rising edge */
    int sock;        /* qemu: our end of the current driver's request socket */
    uint16_t decode; /* command register bits for decoding its BARs */
    struct hw_pci_info info;
    struct vfio_host_dev vfio;
    bool vfio_open;
    uint64_t reads, writes, refused, irqs, resets;
};

struct machine_rt {
    const struct sdf_machine *def;
    size_t idx;
    struct qemu_machine qm;
    int ram_fd; /* qemu: guest RAM, kept across machine restarts */
    bool up;
    unsigned restarts, fast_restarts;
    uint64_t window_ns; /* start of the minute fast_restarts counts in */
    uint8_t level[24];  /* IOAPIC input levels as qtest last reported them */
    struct mdev_rt *devs;
};

int sup_create_machines(struct sup *s);
int sup_start_machines(struct sup *s);
void sup_free_machines(struct sup *s);
/* True if pid was a machine's QEMU (then handled as a machine fault). */
bool sup_machine_reaped(struct sup *s, pid_t pid, int status);
/* Fills bd's PCI part; *fd and *irq_fd are the descriptors to grant.
 * Returns 1 if *fd was made for this start (the caller closes it after the
 * spawn), 0 if it is kept here, or -errno. */
int sup_machine_grant(struct sup *s, struct comp *c, size_t k, struct dmx_boot_device *bd, int *fd,
                      int *irq_fd);
void sup_machine_comp_exited(struct sup *s, struct comp *c);
void sup_machine_event(struct sup *s, uint32_t kind, uint32_t idx);
int sup_machine_report(struct sup *s, const char *which, FILE *f);
int sup_machine_hotplug(struct sup *s, char *args, FILE *f);

#endif
