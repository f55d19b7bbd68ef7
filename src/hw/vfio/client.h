/*
 * The component's side of the vfio backend: hw_vfio_ops (src/hw/backend.h)
 * over the VFIO device descriptor the supervisor opened (src/hw/vfio/host.h).
 * Memory BARs that vfio lets us map are accessed in place; I/O BARs and the
 * rest go through pread/pwrite on the descriptor.
 */
#ifndef DEVMUX_HW_VFIO_CLIENT_H
#define DEVMUX_HW_VFIO_CLIENT_H

#include "hw/backend.h"

/* Called once d->fd, d->irq_fd and d->info are set: finds where config
 * space and each BAR live in d->fd (region_off), maps the BARs it can
 * (bar_map), and routes INTx to d->irq_fd when the device has it, since
 * INTx is every backend's starting mode.  0, or -errno (nothing stays
 * mapped). */
int hw_vfio_attach(struct hw_device *d);

/* Unmaps the BARs hw_vfio_attach mapped. */
void hw_vfio_detach(struct hw_device *d);

#endif
