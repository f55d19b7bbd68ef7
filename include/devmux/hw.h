/*
 * The hardware layer: a driver component's view of the one PCI device the
 * system description grants it (`devices: [{name: N, pci: {...}}]`), and
 * of the memory that device may reach by DMA.
 *
 * The same calls run over every backend, so driver code does not change
 * between them:
 *   - qemu: the device is a QEMU register-level model; register accesses
 *     travel to the supervisor, which checks them against the device's own
 *     BARs and performs them over QEMU's qtest socket.  Interrupts are INTx.
 *   - vfio: a real PCI function bound to vfio-pci; BARs are mapped, the
 *     IOMMU confines DMA, and MSI/MSI-X are available.
 * docs/hw.md describes the model, the checks and each backend's limits.
 *
 * Every access is relative to the device: a BAR index and an offset, or a
 * config-space offset.  An access outside the device's BARs, to a BAR
 * register or to the expansion ROM register is refused (-EPERM) and
 * reported in the supervisor's log; it never reaches the machine.
 *
 * Register writes are posted, as on a PCI bus: hw_write* returns once the
 * write is checked and queued, and a later read of the same device is
 * ordered after it.  A write the supervisor refuses is reported there.
 */
#ifndef DEVMUX_HW_H
#define DEVMUX_HW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "devmux/microkit.h"

#define HW_MAX_BARS 6

enum hw_bar_kind {
    HW_BAR_NONE = 0,
    HW_BAR_MEM32,
    HW_BAR_MEM64, /* occupies this BAR slot and the next */
    HW_BAR_IO,
};

struct hw_bar {
    uint64_t addr; /* bus address the layer assigned */
    uint64_t size;
    uint8_t kind; /* enum hw_bar_kind */
    uint8_t prefetchable;
    uint8_t pad[6];
};

/* What the layer found when it enumerated the device. */
struct hw_pci_info {
    uint16_t vendor, device;
    uint16_t subsys_vendor, subsys;
    uint32_t class_code; /* base class << 16 | subclass << 8 | prog-if */
    uint8_t revision;
    uint8_t bus, slot, func;
    uint8_t irq_pin; /* 1 = INTA ... 4 = INTD, 0 = none */
    uint8_t pad[3];
    uint32_t gsi; /* the interrupt line's number on the machine, for logs */
    struct hw_bar bar[HW_MAX_BARS];
};

enum hw_irq_mode {
    HW_IRQ_INTX = 0, /* the default, on every backend */
    HW_IRQ_MSI,
    HW_IRQ_MSIX,
};

struct hw_device;

/* The device granted under `name`.  *irq receives the channel its
 * interrupts arrive on: notified(irq) runs, and no further interrupt is
 * delivered on it until microkit_irq_ack(irq).  An interrupt is delivered
 * on each rising edge of the line (INTx) or on each message (MSI/MSI-X),
 * so the driver clears the cause in the device before acknowledging.
 * Returns NULL, with the reason logged, if no such device is granted. */
struct hw_device *hw_open(const char *name, microkit_channel *irq);
const struct hw_pci_info *hw_info(const struct hw_device *d);

/* Config space (the first 256 bytes; width 1, 2 or 4, naturally aligned).
 * Writes to BARs and the expansion ROM are refused: the layer owns them. */
int hw_cfg_read(struct hw_device *d, unsigned off, unsigned width, uint32_t *val);
int hw_cfg_write(struct hw_device *d, unsigned off, unsigned width, uint32_t val);

/* Register access inside BAR `bar` (memory or I/O), width 1, 2, 4 or 8,
 * naturally aligned.  0, -EINVAL for a bad width, alignment or BAR index,
 * -EPERM outside the BAR, -EIO when the machine is gone. */
int hw_read(struct hw_device *d, unsigned bar, uint64_t off, unsigned width, uint64_t *val);
int hw_write(struct hw_device *d, unsigned bar, uint64_t off, unsigned width, uint64_t val);

/* Shorthands that return the value and latch the first error in the device
 * (read as ~0, as a PCI master abort does); hw_error() returns it and
 * clears it.  A driver checks hw_error() after a sequence of accesses. */
uint8_t hw_read8(struct hw_device *d, unsigned bar, uint64_t off);
uint16_t hw_read16(struct hw_device *d, unsigned bar, uint64_t off);
uint32_t hw_read32(struct hw_device *d, unsigned bar, uint64_t off);
uint64_t hw_read64(struct hw_device *d, unsigned bar, uint64_t off);
void hw_write8(struct hw_device *d, unsigned bar, uint64_t off, uint8_t v);
void hw_write16(struct hw_device *d, unsigned bar, uint64_t off, uint16_t v);
void hw_write32(struct hw_device *d, unsigned bar, uint64_t off, uint32_t v);
void hw_write64(struct hw_device *d, unsigned bar, uint64_t off, uint64_t v);
int hw_error(struct hw_device *d);

/* Enables memory (and I/O) decoding and bus mastering: DMA may start.
 * The layer leaves bus mastering off when a driver starts and turns it off
 * when a driver dies, so a dead driver's device stops writing memory. */
int hw_enable(struct hw_device *d);

/* Resets the device: a function-level reset where the device has one
 * (vfio: VFIO_DEVICE_RESET), otherwise bus mastering off and the layer's
 * BAR assignment restored.  Decoding stays on either way, so registers
 * stay reachable.  The device class's own reset (a virtio status of 0, an
 * xHCI HCRST) is the driver's part.  Every backend can at least quiesce. */
int hw_reset(struct hw_device *d);

/* Selects the interrupt mode.  qemu supports only HW_IRQ_INTX (qtest does
 * not see message-signalled interrupts); -ENOTSUP otherwise. */
int hw_irq_mode(struct hw_device *d, enum hw_irq_mode mode);

/* DMA memory: a region the system description places in device-visible
 * memory (`machine:` on the region).  cpu is where this component mapped
 * it; dev is the address the device uses for its first byte. */
struct hw_dma {
    void *cpu;
    uint64_t dev;
    size_t size;
};
/* 0, or -ENOENT if the region is not mapped here or not device-visible. */
int hw_dma_region(const char *region, struct hw_dma *out);

static inline uint64_t hw_dma_addr(const struct hw_dma *m, const void *p)
{
    return m->dev + (uint64_t)((const char *)p - (const char *)m->cpu);
}

/* Accesses this component made, and those refused, since it started. */
struct hw_stats {
    uint64_t reads, writes, refused, irqs;
};
const struct hw_stats *hw_stats(const struct hw_device *d);

#endif
