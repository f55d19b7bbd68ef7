/*
 * The hardware layer's front: finds the device the system description
 * granted, and checks every access against the device's own config space
 * and BARs before a backend sees it.  The supervisor checks again for the
 * qemu backend (it trusts no component); these checks give the driver a
 * precise error at once instead of a round trip.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "devmux/hw.h"
#include "hw/backend.h"
#include "runtime/runtime.h"
#include "sdf/sdf.h"

static struct hw_device devs[DMX_MAX_DEVICES];
static unsigned ndevs;

static void vfio_ack(void *ctx)
{
    struct hw_device *d = ctx;
    if (d->ops->irq_ack)
        d->ops->irq_ack(d);
}

struct hw_device *hw_open(const char *name, microkit_channel *irq)
{
    for (unsigned i = 0; i < ndevs; i++)
        if (!strcmp(devs[i].name, name)) {
            if (irq)
                *irq = devs[i].irq;
            return &devs[i];
        }
    const struct dmx_boot_device *b = dmx_boot_device(name);
    if (!b) {
        devmux_log("hw: no device '%s' is granted to this component; expected a `devices:` "
                   "entry with that name and `pci:`",
                   name);
        return NULL;
    }
    if (b->kind != SDF_DEV_PCI) {
        devmux_log("hw: device '%s' is not a PCI device of a machine; expected `pci:` in its "
                   "grant",
                   name);
        return NULL;
    }
    if (b->fd < 0) {
        devmux_log("hw: device '%s' could not be handed over (the supervisor's log says why)",
                   name);
        return NULL;
    }
    struct hw_device *d = &devs[ndevs];
    memset(d, 0, sizeof(*d));
    snprintf(d->name, sizeof(d->name), "%s", name);
    d->fd = b->fd;
    d->irq_fd = b->irq_fd;
    d->aux_fd = b->aux_fd;
    d->irq = b->irq;
    d->info = b->pci;
    if (b->backend == SDF_BACKEND_VFIO) {
        d->ops = &hw_vfio_ops;
        int err = hw_vfio_attach(d);
        if (err) {
            devmux_log("hw: device '%s': cannot attach through VFIO: %s", name, strerror(-err));
            return NULL;
        }
        dmx_irq_ack_hook(d->irq, vfio_ack, d);
    } else {
        d->ops = &hw_qemu_ops;
    }
    ndevs++;
    if (irq)
        *irq = d->irq;
    return d;
}

const struct hw_pci_info *hw_info(const struct hw_device *d)
{
    return &d->info;
}

const struct hw_stats *hw_stats(const struct hw_device *d)
{
    return &d->stats;
}

/* Refusals are the driver's bug or an attack; say so, but not endlessly. */
static int refuse(struct hw_device *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int refuse(struct hw_device *d, const char *fmt, ...)
{
    d->stats.refused++;
    if (d->stats.refused <= 20 || !(d->stats.refused & (d->stats.refused - 1))) {
        char msg[256];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        devmux_log("hw: device '%s': %s (refused: %" PRIu64 " so far)", d->name, msg,
                   d->stats.refused);
    }
    return -EPERM;
}

static bool width_ok(unsigned width, unsigned max)
{
    return (width == 1 || width == 2 || width == 4 || width == 8) && width <= max;
}

static int cfg_check(struct hw_device *d, unsigned off, unsigned width)
{
    if (!width_ok(width, 4) || off % width)
        return -EINVAL;
    if (off >= 256 || off + width > 256)
        return refuse(d, "config access at %#x is beyond the 256 bytes of config space", off);
    return 0;
}

int hw_cfg_read(struct hw_device *d, unsigned off, unsigned width, uint32_t *val)
{
    int err = cfg_check(d, off, width);
    if (err)
        return err;
    d->stats.reads++;
    return d->ops->cfg_read(d, off, width, val);
}

int hw_cfg_write(struct hw_device *d, unsigned off, unsigned width, uint32_t val)
{
    int err = cfg_check(d, off, width);
    if (err)
        return err;
    if (hw_cfg_protected(off, width))
        return refuse(d,
                      "config write at %#x touches a BAR or the ROM register, which the layer "
                      "owns",
                      off);
    d->stats.writes++;
    return d->ops->cfg_write(d, off, width, val);
}

static int bar_check(struct hw_device *d, unsigned bar, uint64_t off, unsigned width)
{
    if (bar >= HW_MAX_BARS)
        return -EINVAL;
    const struct hw_bar *b = &d->info.bar[bar];
    if (!width_ok(width, b->kind == HW_BAR_IO ? 4 : 8) || off % width)
        return -EINVAL;
    if (b->kind == HW_BAR_NONE)
        return refuse(d, "access to BAR%u, which the device does not have", bar);
    if (off >= b->size || width > b->size - off)
        return refuse(
            d, "%u-byte access at BAR%u+%#" PRIx64 " is outside the BAR (%#" PRIx64 " bytes)",
            width, bar, off, b->size);
    return 0;
}

int hw_read(struct hw_device *d, unsigned bar, uint64_t off, unsigned width, uint64_t *val)
{
    int err = bar_check(d, bar, off, width);
    if (err)
        return err;
    d->stats.reads++;
    return d->ops->read(d, bar, off, width, val);
}

int hw_write(struct hw_device *d, unsigned bar, uint64_t off, unsigned width, uint64_t val)
{
    int err = bar_check(d, bar, off, width);
    if (err)
        return err;
    d->stats.writes++;
    return d->ops->write(d, bar, off, width, val);
}

int hw_enable(struct hw_device *d)
{
    return d->ops->enable(d);
}

int hw_reset(struct hw_device *d)
{
    return d->ops->reset(d);
}

int hw_irq_mode(struct hw_device *d, enum hw_irq_mode mode)
{
    int err = d->ops->irq_mode(d, mode);
    if (!err)
        d->irq_mode = mode;
    return err;
}

int hw_dma_region(const char *region, struct hw_dma *out)
{
    void *addr;
    const struct dmx_boot_region *r = dmx_boot_region(region, &addr);
    if (!r || !r->dma)
        return -ENOENT;
    out->cpu = addr;
    out->dev = r->dev;
    out->size = r->size;
    return 0;
}
