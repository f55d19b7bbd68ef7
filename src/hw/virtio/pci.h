/*
 * The virtio 1.x modern PCI transport over the hardware layer (devmux/hw.h):
 * finding the virtio regions through the vendor capabilities, the common
 * configuration at each field's natural width, feature negotiation, queue
 * setup, doorbells, the ISR and device-specific configuration.
 *
 * The device is not trusted: capabilities must lie inside a BAR the layer
 * assigned, queue sizes must be sane, and every sequence of accesses is
 * checked with hw_error().  Functions return 0 or a negative errno and
 * leave a human-readable reason in v->why.
 */
#ifndef DEVMUX_HW_VIRTIO_PCI_H
#define DEVMUX_HW_VIRTIO_PCI_H

#include <stdbool.h>
#include <stdint.h>

#include "devmux/hw.h"
#include "hw/virtio/virtio.h"

struct vpci_region {
    uint8_t bar;
    bool present;
    uint32_t off, len;
};

struct vpci {
    struct hw_device *dev;
    struct vpci_region common, notify, isr, device;
    uint32_t notify_mult;
    char why[160];
};

/* Checks the PCI identity against the ids the caller accepts (nids of
 * them, vendor VIRTIO_PCI_VENDOR) and walks the capability list.
 * -ENODEV for a device that is not ours, -EPROTO for bad capabilities. */
int vpci_probe(struct vpci *v, struct hw_device *d, const uint16_t *ids, unsigned nids);

/* Turns on register decoding but not bus mastering, so the transport can
 * be programmed after hw_reset while the device still cannot reach memory
 * (hw_enable adds bus mastering once the rings are in place). */
int vpci_decode(struct vpci *v);

/* Writes status 0 and waits (bounded) until the device reads back 0. */
int vpci_reset(struct vpci *v);
uint8_t vpci_status(struct vpci *v);
void vpci_set_status(struct vpci *v, uint8_t s);

uint64_t vpci_device_features(struct vpci *v);
/* Writes the driver features, sets FEATURES_OK and checks the device kept
 * it (-ENOTSUP if it refused the set). */
int vpci_set_features(struct vpci *v, uint64_t features);

/* The device's maximum size of queue q (0: no such queue). */
int vpci_queue_max(struct vpci *v, uint16_t q, uint16_t *size);
/* Programs queue q with size and ring addresses, finds its doorbell and
 * enables it.  *doorbell receives the doorbell's offset in the notify BAR. */
int vpci_queue_setup(struct vpci *v, uint16_t q, uint16_t size, uint64_t desc, uint64_t avail,
                     uint64_t used, uint64_t *doorbell);
/* One doorbell write: queue q has new buffers. */
void vpci_notify(struct vpci *v, uint64_t doorbell, uint16_t q);

/* Reads and clears the ISR (which lowers INTx).  -EIO if the read failed. */
int vpci_isr(struct vpci *v, uint8_t *isr);

/* Device-specific configuration at off: -EPERM past its region.  Reads
 * retry while config_generation changes, as the spec asks for fields that
 * span more than one access. */
int vpci_devcfg_read(struct vpci *v, uint32_t off, void *buf, uint32_t len);

#endif
