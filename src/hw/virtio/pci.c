#include "hw/virtio/pci.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* A config space of 256 bytes holds at most 48 capabilities of 4 bytes
 * after the header: more hops than that is a loop. */
#define MAX_CAPS 48u
/* Each status read is a round trip to the machine (tens of microseconds
 * on qemu); a device that needs longer than this to reset is broken. */
#define RESET_POLLS  2000u
#define CFGGEN_TRIES 4u

static int why(struct vpci *v, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int why(struct vpci *v, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->why, sizeof(v->why), fmt, ap);
    va_end(ap);
    return err;
}

static int cfg8(struct vpci *v, unsigned off, uint8_t *out)
{
    uint32_t val;
    int r = hw_cfg_read(v->dev, off, 1, &val);
    *out = (uint8_t)val;
    return r;
}

static int cfg32(struct vpci *v, unsigned off, uint32_t *out)
{
    return hw_cfg_read(v->dev, off, 4, out);
}

static const char *cap_name(unsigned type)
{
    static const char *const names[] = {"?", "common", "notify", "isr", "device"};
    return type < sizeof(names) / sizeof(names[0]) ? names[type] : "?";
}

/* One virtio vendor capability at ptr, already known to fit in config
 * space.  The first usable one of each type wins, as the spec asks. */
static int take_cap(struct vpci *v, unsigned ptr, uint8_t cap_len)
{
    uint8_t type, bar;
    uint32_t off, len, mult = 0;
    if (cfg8(v, ptr + VIRTIO_CAP_TYPE, &type) || cfg8(v, ptr + VIRTIO_CAP_BAR, &bar) ||
        cfg32(v, ptr + VIRTIO_CAP_OFFSET, &off) || cfg32(v, ptr + VIRTIO_CAP_LENGTH, &len))
        return why(v, -EIO, "config space read failed at capability %#x", ptr);
    struct vpci_region *r;
    switch (type) {
    case VIRTIO_CAP_COMMON:
        r = &v->common;
        break;
    case VIRTIO_CAP_NOTIFY:
        r = &v->notify;
        if (cap_len < VIRTIO_CAP_NOTIFY_BYTES)
            return why(v, -EPROTO, "notify capability at %#x is %u bytes", ptr, cap_len);
        if (cfg32(v, ptr + VIRTIO_CAP_NOTIFY_MULT, &mult))
            return why(v, -EIO, "config space read failed at capability %#x", ptr);
        break;
    case VIRTIO_CAP_ISR:
        r = &v->isr;
        break;
    case VIRTIO_CAP_DEVICE:
        r = &v->device;
        break;
    default:
        return 0; /* PCI config access and future types: not needed */
    }
    if (r->present || bar >= HW_MAX_BARS)
        return 0; /* reserved BAR values are to be ignored */
    const struct hw_bar *b = &hw_info(v->dev)->bar[bar];
    if (b->kind == HW_BAR_NONE || (uint64_t)off + len > b->size)
        return why(v, -EPROTO, "%s capability at %#x: BAR%u+%#x, %#x bytes, outside the BAR",
                   cap_name(type), ptr, bar, off, len);
    r->present = true;
    r->bar = bar;
    r->off = off;
    r->len = len;
    if (type == VIRTIO_CAP_NOTIFY)
        v->notify_mult = mult;
    return 0;
}

int vpci_probe(struct vpci *v, struct hw_device *d, const uint16_t *ids, unsigned nids)
{
    memset(v, 0, sizeof(*v));
    v->dev = d;
    const struct hw_pci_info *pi = hw_info(d);
    bool known = false;
    for (unsigned i = 0; i < nids; i++)
        known |= pi->vendor == VIRTIO_PCI_VENDOR && pi->device == ids[i];
    if (!known)
        return why(v, -ENODEV, "PCI %04x:%04x is not a device this driver supports", pi->vendor,
                   pi->device);

    uint32_t status;
    uint8_t ptr;
    if (hw_cfg_read(d, PCI_CFG_STATUS, 2, &status) || cfg8(v, PCI_CFG_CAP_PTR, &ptr))
        return why(v, -EIO, "config space read failed");
    if (!(status & PCI_STATUS_CAP_LIST))
        return why(v, -EPROTO, "no capability list: not a modern virtio device");
    uint64_t seen[PCI_CFG_SPACE_BYTES / 64] = {0};
    for (unsigned hops = 0; ptr; hops++) {
        unsigned p = ptr & 0xfcu;
        if (hops >= MAX_CAPS || p < PCI_CFG_HEADER_BYTES || (seen[p / 64] >> (p % 64)) & 1)
            return why(v, -EPROTO, "capability list is malformed at %#x", ptr);
        seen[p / 64] |= 1ull << (p % 64);
        uint8_t id, next, cap_len = 0;
        if (cfg8(v, p, &id) || cfg8(v, p + VIRTIO_CAP_NEXT, &next))
            return why(v, -EIO, "config space read failed at capability %#x", p);
        if (id == PCI_CAP_ID_VENDOR) {
            if (cfg8(v, p + VIRTIO_CAP_LEN, &cap_len))
                return why(v, -EIO, "config space read failed at capability %#x", p);
            if (cap_len < VIRTIO_CAP_MIN_BYTES || p + cap_len > PCI_CFG_SPACE_BYTES)
                return why(v, -EPROTO, "vendor capability at %#x has length %u", p, cap_len);
            int r = take_cap(v, p, cap_len);
            if (r)
                return r;
        }
        ptr = next;
    }
    if (!v->common.present || !v->notify.present || !v->isr.present || !v->device.present)
        return why(v, -EPROTO, "virtio capabilities missing:%s%s%s%s",
                   v->common.present ? "" : " common", v->notify.present ? "" : " notify",
                   v->isr.present ? "" : " isr", v->device.present ? "" : " device");
    if (v->common.len < VIRTIO_COMMON_BYTES || v->notify.len < 2 || v->isr.len < 1)
        return why(v, -EPROTO, "virtio regions too small (common %u, notify %u, isr %u bytes)",
                   v->common.len, v->notify.len, v->isr.len);
    return 0;
}

static uint64_t at(const struct vpci *v, uint32_t field)
{
    return (uint64_t)v->common.off + field;
}

static int checked(struct vpci *v, const char *what)
{
    int e = hw_error(v->dev);
    return e ? why(v, e, "%s: register access failed (%d)", what, e) : 0;
}

uint8_t vpci_status(struct vpci *v)
{
    return hw_read8(v->dev, v->common.bar, at(v, VIRTIO_COMMON_STATUS));
}

void vpci_set_status(struct vpci *v, uint8_t s)
{
    hw_write8(v->dev, v->common.bar, at(v, VIRTIO_COMMON_STATUS), s);
}

int vpci_decode(struct vpci *v)
{
    uint32_t cmd;
    if (hw_cfg_read(v->dev, PCI_CFG_COMMAND, 2, &cmd))
        return why(v, -EIO, "config space read failed");
    uint32_t want = (cmd | PCI_COMMAND_MEMORY) & ~PCI_COMMAND_MASTER;
    for (unsigned i = 0; i < HW_MAX_BARS; i++)
        if (hw_info(v->dev)->bar[i].kind == HW_BAR_IO)
            want |= PCI_COMMAND_IO;
    if (want != cmd && hw_cfg_write(v->dev, PCI_CFG_COMMAND, 2, want))
        return why(v, -EIO, "config space write failed");
    return 0;
}

int vpci_reset(struct vpci *v)
{
    hw_error(v->dev);
    vpci_set_status(v, 0);
    for (unsigned i = 0; i < RESET_POLLS; i++) {
        uint8_t s = vpci_status(v);
        int e = checked(v, "reset");
        if (e)
            return e;
        if (s == 0)
            return 0;
    }
    return why(v, -ETIMEDOUT, "device did not finish its reset");
}

uint64_t vpci_device_features(struct vpci *v)
{
    struct hw_device *d = v->dev;
    hw_write32(d, v->common.bar, at(v, VIRTIO_COMMON_DFSELECT), 0);
    uint64_t lo = hw_read32(d, v->common.bar, at(v, VIRTIO_COMMON_DF));
    hw_write32(d, v->common.bar, at(v, VIRTIO_COMMON_DFSELECT), 1);
    uint64_t hi = hw_read32(d, v->common.bar, at(v, VIRTIO_COMMON_DF));
    return hi << 32 | lo;
}

int vpci_set_features(struct vpci *v, uint64_t f)
{
    struct hw_device *d = v->dev;
    hw_write32(d, v->common.bar, at(v, VIRTIO_COMMON_GFSELECT), 0);
    hw_write32(d, v->common.bar, at(v, VIRTIO_COMMON_GF), (uint32_t)f);
    hw_write32(d, v->common.bar, at(v, VIRTIO_COMMON_GFSELECT), 1);
    hw_write32(d, v->common.bar, at(v, VIRTIO_COMMON_GF), (uint32_t)(f >> 32));
    uint8_t s = vpci_status(v);
    vpci_set_status(v, s | VIRTIO_STATUS_FEATURES_OK);
    s = vpci_status(v);
    int e = checked(v, "features");
    if (e)
        return e;
    if (!(s & VIRTIO_STATUS_FEATURES_OK))
        return why(v, -ENOTSUP, "device refused features %#llx", (unsigned long long)f);
    return 0;
}

int vpci_queue_max(struct vpci *v, uint16_t q, uint16_t *size)
{
    struct hw_device *d = v->dev;
    uint16_t n = hw_read16(d, v->common.bar, at(v, VIRTIO_COMMON_NUMQ));
    hw_write16(d, v->common.bar, at(v, VIRTIO_COMMON_Q_SELECT), q);
    uint16_t s = hw_read16(d, v->common.bar, at(v, VIRTIO_COMMON_Q_SIZE));
    int e = checked(v, "queue size");
    if (e)
        return e;
    *size = q < n ? s : 0;
    return 0;
}

static void write_addr(struct vpci *v, uint32_t lo_field, uint64_t addr)
{
    hw_write32(v->dev, v->common.bar, at(v, lo_field), (uint32_t)addr);
    hw_write32(v->dev, v->common.bar, at(v, lo_field + 4), (uint32_t)(addr >> 32));
}

int vpci_queue_setup(struct vpci *v, uint16_t q, uint16_t size, uint64_t desc, uint64_t avail,
                     uint64_t used, uint64_t *doorbell)
{
    struct hw_device *d = v->dev;
    hw_write16(d, v->common.bar, at(v, VIRTIO_COMMON_Q_SELECT), q);
    hw_write16(d, v->common.bar, at(v, VIRTIO_COMMON_Q_SIZE), size);
    write_addr(v, VIRTIO_COMMON_Q_DESCLO, desc);
    write_addr(v, VIRTIO_COMMON_Q_AVAILLO, avail);
    write_addr(v, VIRTIO_COMMON_Q_USEDLO, used);
    uint16_t noff = hw_read16(d, v->common.bar, at(v, VIRTIO_COMMON_Q_NOFF));
    int e = checked(v, "queue setup");
    if (e)
        return e;
    uint64_t rel = (uint64_t)noff * v->notify_mult;
    if (rel + 2 > v->notify.len)
        return why(v, -EPROTO, "queue %u doorbell at +%#llx is outside the notify region", q,
                   (unsigned long long)rel);
    *doorbell = v->notify.off + rel;
    hw_write16(d, v->common.bar, at(v, VIRTIO_COMMON_Q_ENABLE), 1);
    return checked(v, "queue enable");
}

void vpci_notify(struct vpci *v, uint64_t doorbell, uint16_t q)
{
    hw_write16(v->dev, v->notify.bar, doorbell, q);
}

int vpci_isr(struct vpci *v, uint8_t *isr)
{
    uint64_t val;
    int r = hw_read(v->dev, v->isr.bar, v->isr.off, 1, &val);
    *isr = (uint8_t)val;
    return r ? why(v, r, "ISR read failed (%d)", r) : 0;
}

int vpci_devcfg_read(struct vpci *v, uint32_t off, void *buf, uint32_t len)
{
    struct hw_device *d = v->dev;
    if ((uint64_t)off + len > v->device.len)
        return why(v, -EPERM, "device config +%#x (%u bytes) is outside its region", off, len);
    uint64_t base = (uint64_t)v->device.off + off;
    for (unsigned t = 0; t < CFGGEN_TRIES; t++) {
        uint8_t gen = hw_read8(d, v->common.bar, at(v, VIRTIO_COMMON_CFGGEN));
        if (len == 2 && !(off & 1)) {
            uint16_t x = hw_read16(d, v->device.bar, base);
            memcpy(buf, &x, 2);
        } else if (len == 4 && !(off & 3)) {
            uint32_t x = hw_read32(d, v->device.bar, base);
            memcpy(buf, &x, 4);
        } else {
            for (uint32_t i = 0; i < len; i++)
                ((uint8_t *)buf)[i] = hw_read8(d, v->device.bar, base + i);
        }
        uint8_t again = hw_read8(d, v->common.bar, at(v, VIRTIO_COMMON_CFGGEN));
        int e = checked(v, "device config");
        if (e)
            return e;
        if (gen == again)
            return 0;
    }
    return why(v, -EAGAIN, "device config kept changing while read");
}
