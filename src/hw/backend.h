/*
 * Inside the hardware layer: what a backend provides to hw.c, which does the
 * checks every backend shares (width, alignment, BAR index and bounds,
 * protected config registers) before calling it.  A backend therefore sees
 * only requests that are well-formed for the device's own BARs.
 */
#ifndef DEVMUX_HW_BACKEND_H
#define DEVMUX_HW_BACKEND_H

#include "devmux/hw.h"

struct hw_backend_ops {
    int (*cfg_read)(struct hw_device *d, unsigned off, unsigned width, uint32_t *val);
    int (*cfg_write)(struct hw_device *d, unsigned off, unsigned width, uint32_t val);
    int (*read)(struct hw_device *d, unsigned bar, uint64_t off, unsigned width, uint64_t *val);
    int (*write)(struct hw_device *d, unsigned bar, uint64_t off, unsigned width, uint64_t val);
    int (*enable)(struct hw_device *d);
    int (*reset)(struct hw_device *d);
    int (*irq_mode)(struct hw_device *d, enum hw_irq_mode mode);
    /* Called from microkit_irq_ack on the device's channel (vfio unmasks
     * INTx there), or NULL. */
    void (*irq_ack)(struct hw_device *d);
};

struct hw_device {
    const struct hw_backend_ops *ops;
    char name[64];
    int fd;     /* qemu: wire socket; vfio: device descriptor */
    int irq_fd; /* eventfd the backend signals */
    int aux_fd; /* vfio: container; else -1 */
    microkit_channel irq;
    enum hw_irq_mode irq_mode;
    struct hw_pci_info info;
    struct hw_stats stats;
    int err; /* first error of the hw_readN/hw_writeN shorthands */
    /* vfio: where each BAR and config space live in the device descriptor,
     * and the BARs this component could map (NULL: use pread/pwrite). */
    uint64_t region_off[HW_MAX_BARS + 1];
    volatile void *bar_map[HW_MAX_BARS];
};

extern const struct hw_backend_ops hw_qemu_ops;
extern const struct hw_backend_ops hw_vfio_ops;
/* Fills the vfio parts of d (region offsets, BAR mappings) from d->fd. */
int hw_vfio_attach(struct hw_device *d);

/* Config registers no driver may write: the BARs (0x10-0x27) and the
 * expansion ROM (0x30-0x33), which the layer assigns. */
static inline bool hw_cfg_protected(unsigned off, unsigned width)
{
    unsigned end = off + width;
    return (off < 0x28 && end > 0x10) || (off < 0x34 && end > 0x30);
}

#endif
