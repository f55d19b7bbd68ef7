#include "hw/vfio/client.h"

#include <errno.h>
#include <linux/pci_regs.h>
#include <linux/vfio.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define CFG_OFF(d) ((d)->region_off[HW_MAX_BARS])

/* A driver writes descriptors to DMA memory, then rings a doorbell: the
 * device must not see the doorbell before the descriptors.  Likewise, after
 * a register read says data arrived, reads of that data must not have been
 * satisfied earlier.  x86 keeps stores ordered with stores and loads with
 * loads, uncached accesses included, so only the compiler needs stopping
 * there; arm64 needs barriers across the outer shareable domain, where
 * devices sit. */
#if defined(__x86_64__) || defined(__i386__)
#define io_wmb() __asm__ __volatile__("" ::: "memory")
#define io_rmb() __asm__ __volatile__("" ::: "memory")
#elif defined(__aarch64__)
#define io_wmb() __asm__ __volatile__("dmb oshst" ::: "memory")
#define io_rmb() __asm__ __volatile__("dmb oshld" ::: "memory")
#else
#define io_wmb() __atomic_thread_fence(__ATOMIC_SEQ_CST)
#define io_rmb() __atomic_thread_fence(__ATOMIC_SEQ_CST)
#endif

static int xioctl(int fd, unsigned long req, void *arg)
{
    int r;
    do
        r = ioctl(fd, req, arg);
    while (r < 0 && errno == EINTR);
    return r < 0 ? -errno : r;
}

/* PCI is little-endian, and vfio passes config and BAR bytes through
 * unswapped; byte-wise assembly is right on either host byte order. */
static uint64_t from_le(const uint8_t *b, unsigned width)
{
    uint64_t v = 0;
    for (unsigned i = width; i-- > 0;)
        v = v << 8 | b[i];
    return v;
}

static void to_le(uint8_t *b, unsigned width, uint64_t v)
{
    for (unsigned i = 0; i < width; i++)
        b[i] = (uint8_t)(v >> (8 * i));
}

/* Whatever the descriptor says, a failed or short transfer is the device
 * being unreachable to the caller: -EIO, as hw.h promises. */
static int fd_read(struct hw_device *d, uint64_t pos, unsigned width, uint64_t *val)
{
    uint8_t b[8];
    ssize_t n;
    if (pos > INT64_MAX - 8)
        return -EIO;
    do
        n = pread(d->fd, b, width, (off_t)pos);
    while (n < 0 && errno == EINTR);
    if (n != (ssize_t)width)
        return -EIO;
    *val = from_le(b, width);
    return 0;
}

static int fd_write(struct hw_device *d, uint64_t pos, unsigned width, uint64_t val)
{
    uint8_t b[8];
    ssize_t n;
    if (pos > INT64_MAX - 8)
        return -EIO;
    to_le(b, width, val);
    do
        n = pwrite(d->fd, b, width, (off_t)pos);
    while (n < 0 && errno == EINTR);
    return n == (ssize_t)width ? 0 : -EIO;
}

static int vfio_cfg_read(struct hw_device *d, unsigned off, unsigned width, uint32_t *val)
{
    uint64_t v;
    int r = fd_read(d, CFG_OFF(d) + off, width, &v);
    if (r == 0)
        *val = (uint32_t)v;
    return r;
}

static int vfio_cfg_write(struct hw_device *d, unsigned off, unsigned width, uint32_t val)
{
    return fd_write(d, CFG_OFF(d) + off, width, val);
}

/* One access of exactly the requested width: a device may act on the
 * width itself (a 64-bit doorbell split in two would ring twice). */
static uint64_t mmio_read(volatile void *base, uint64_t off, unsigned width)
{
    volatile uint8_t *p = (volatile uint8_t *)base + off;
    uint8_t b[8];
    switch (width) {
    case 1:
        b[0] = *p;
        break;
    case 2: {
        uint16_t v = *(volatile uint16_t *)p;
        memcpy(b, &v, 2);
        break;
    }
    case 4: {
        uint32_t v = *(volatile uint32_t *)p;
        memcpy(b, &v, 4);
        break;
    }
    default: {
        uint64_t v = *(volatile uint64_t *)p;
        memcpy(b, &v, 8);
        break;
    }
    }
    io_rmb();
    return from_le(b, width);
}

static void mmio_write(volatile void *base, uint64_t off, unsigned width, uint64_t val)
{
    volatile uint8_t *p = (volatile uint8_t *)base + off;
    uint8_t b[8];
    to_le(b, width, val);
    io_wmb();
    switch (width) {
    case 1:
        *p = b[0];
        break;
    case 2: {
        uint16_t v;
        memcpy(&v, b, 2);
        *(volatile uint16_t *)p = v;
        break;
    }
    case 4: {
        uint32_t v;
        memcpy(&v, b, 4);
        *(volatile uint32_t *)p = v;
        break;
    }
    default: {
        uint64_t v;
        memcpy(&v, b, 8);
        *(volatile uint64_t *)p = v;
        break;
    }
    }
}

static int vfio_read(struct hw_device *d, unsigned bar, uint64_t off, unsigned width, uint64_t *val)
{
    if (d->bar_map[bar]) {
        *val = mmio_read(d->bar_map[bar], off, width);
        return 0;
    }
    /* Port I/O has no 8-byte access; vfio would split it into two. */
    if (width == 8 && d->info.bar[bar].kind == HW_BAR_IO)
        return -EINVAL;
    int r = fd_read(d, d->region_off[bar] + off, width, val);
    io_rmb();
    return r;
}

static int vfio_write(struct hw_device *d, unsigned bar, uint64_t off, unsigned width, uint64_t val)
{
    if (d->bar_map[bar]) {
        mmio_write(d->bar_map[bar], off, width, val);
        return 0;
    }
    if (width == 8 && d->info.bar[bar].kind == HW_BAR_IO)
        return -EINVAL;
    io_wmb();
    return fd_write(d, d->region_off[bar] + off, width, val);
}

static int command_update(struct hw_device *d, uint16_t set, uint16_t clear)
{
    uint64_t cmd;
    int r = fd_read(d, CFG_OFF(d) + PCI_COMMAND, 2, &cmd);
    if (r)
        return r;
    uint64_t next = (cmd | set) & ~(uint64_t)clear;
    return next == cmd ? 0 : fd_write(d, CFG_OFF(d) + PCI_COMMAND, 2, next);
}

static int vfio_enable(struct hw_device *d)
{
    uint16_t set = PCI_COMMAND_MASTER;
    for (unsigned i = 0; i < HW_MAX_BARS; i++) {
        if (d->info.bar[i].kind == HW_BAR_IO)
            set |= PCI_COMMAND_IO;
        else if (d->info.bar[i].kind != HW_BAR_NONE)
            set |= PCI_COMMAND_MEMORY;
    }
    return command_update(d, set, 0);
}

/* Decoding stays on: vfio revokes BAR mappings while memory decoding is
 * off, so a register access in between would kill the driver with SIGBUS
 * rather than fail.  vfio owns the BAR registers, so there is no assignment
 * to restore either. */
static int vfio_reset(struct hw_device *d)
{
    /* Bus mastering goes off first: the reset saves the command register
     * and restores it afterwards, and DMA must wait for hw_enable. */
    int r = command_update(d, 0, PCI_COMMAND_MASTER);
    if (r)
        return r;
    struct vfio_device_info di = {.argsz = sizeof(di)};
    r = xioctl(d->fd, VFIO_DEVICE_GET_INFO, &di);
    if (r < 0)
        return r;
    if (!(di.flags & VFIO_DEVICE_FLAGS_RESET))
        return 0;
    r = xioctl(d->fd, VFIO_DEVICE_RESET, NULL);
    return r < 0 ? r : 0;
}

static int set_irqs(int fd, uint32_t flags, uint32_t index, uint32_t count, int32_t efd)
{
    union {
        struct vfio_irq_set s;
        uint8_t b[sizeof(struct vfio_irq_set) + sizeof(int32_t)];
    } u;
    memset(&u, 0, sizeof(u));
    u.s.argsz = sizeof(struct vfio_irq_set);
    u.s.flags = flags;
    u.s.index = index;
    u.s.count = count;
    if (flags & VFIO_IRQ_SET_DATA_EVENTFD) {
        memcpy(u.b + sizeof(struct vfio_irq_set), &efd, sizeof(efd));
        u.s.argsz += sizeof(efd);
    }
    int r = xioctl(fd, VFIO_DEVICE_SET_IRQS, &u.s);
    return r < 0 ? r : 0;
}

static int irq_count(int fd, uint32_t index)
{
    struct vfio_irq_info ii = {.argsz = sizeof(ii), .index = index};
    int r = xioctl(fd, VFIO_DEVICE_GET_IRQ_INFO, &ii);
    if (r < 0)
        return r;
    return (ii.flags & VFIO_IRQ_INFO_EVENTFD) && ii.count ? 1 : 0;
}

/* vfio switches modes only from none, and accepts the disabling request
 * only on the active index, so the errors of the others mean nothing. */
static void irqs_off(int fd)
{
    set_irqs(fd, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_PCI_INTX_IRQ_INDEX, 0,
             -1);
    set_irqs(fd, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_PCI_MSI_IRQ_INDEX, 0,
             -1);
    set_irqs(fd, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_PCI_MSIX_IRQ_INDEX, 0,
             -1);
}

static int mode_index(enum hw_irq_mode mode, uint32_t *index)
{
    switch (mode) {
    case HW_IRQ_INTX:
        *index = VFIO_PCI_INTX_IRQ_INDEX;
        return 0;
    case HW_IRQ_MSI:
        *index = VFIO_PCI_MSI_IRQ_INDEX;
        return 0;
    case HW_IRQ_MSIX:
        *index = VFIO_PCI_MSIX_IRQ_INDEX;
        return 0;
    }
    return -EINVAL;
}

static int route(struct hw_device *d, uint32_t index)
{
    return set_irqs(d->fd, VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, index, 1,
                    d->irq_fd);
}

static int vfio_irq_mode(struct hw_device *d, enum hw_irq_mode mode)
{
    uint32_t index, prev;
    if (mode_index(mode, &index) || d->irq_fd < 0)
        return -EINVAL;
    int r = irq_count(d->fd, index);
    if (r <= 0)
        return r < 0 ? r : -ENOTSUP;
    irqs_off(d->fd);
    r = route(d, index);
    if (r == 0) {
        d->irq_mode = mode;
        return 0;
    }
    /* Leave the driver with the interrupts it had rather than none. */
    if (mode_index(d->irq_mode, &prev) == 0 && irq_count(d->fd, prev) > 0)
        route(d, prev);
    return r;
}

static void vfio_irq_ack(struct hw_device *d)
{
    /* vfio masks INTx as it signals (the line is level-triggered and would
     * fire again at once); messages are not masked. */
    if (d->irq_mode == HW_IRQ_INTX)
        set_irqs(d->fd, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_UNMASK,
                 VFIO_PCI_INTX_IRQ_INDEX, 1, -1);
}

const struct hw_backend_ops hw_vfio_ops = {
    .cfg_read = vfio_cfg_read,
    .cfg_write = vfio_cfg_write,
    .read = vfio_read,
    .write = vfio_write,
    .enable = vfio_enable,
    .reset = vfio_reset,
    .irq_mode = vfio_irq_mode,
    .irq_ack = vfio_irq_ack,
};

/* Whether a sparse-mmap capability, if the region has one, still allows the
 * whole region in one mapping.  Older kernels use it to keep the MSI-X
 * table out of reach; we then fall back to pread/pwrite for that BAR rather
 * than juggle partial mappings.  Unknown or malformed capability chains
 * count as "no". */
static bool sparse_allows_whole(int fd, const struct vfio_region_info *ri)
{
    if (!(ri->flags & VFIO_REGION_INFO_FLAG_CAPS))
        return true;
    uint32_t need = ri->argsz;
    if (need <= sizeof(*ri) || need > 65536)
        return false;
    uint8_t *buf = calloc(1, need);
    if (!buf)
        return false;
    struct vfio_region_info head = {.argsz = need, .index = ri->index};
    memcpy(buf, &head, sizeof(head));
    bool whole = false;
    if (xioctl(fd, VFIO_DEVICE_GET_REGION_INFO, buf) < 0)
        goto out;
    memcpy(&head, buf, sizeof(head));
    if (head.argsz > need)
        goto out;
    whole = true;
    uint32_t off = head.cap_offset;
    for (unsigned hops = 0; off && hops < 32; hops++) {
        struct vfio_info_cap_header h;
        if (off < sizeof(head) || off > need - sizeof(h)) {
            whole = false;
            break;
        }
        memcpy(&h, buf + off, sizeof(h));
        if (h.id == VFIO_REGION_INFO_CAP_SPARSE_MMAP) {
            struct vfio_region_info_cap_sparse_mmap sp;
            struct vfio_region_sparse_mmap_area a;
            whole = false;
            if (off > need - sizeof(sp))
                break;
            memcpy(&sp, buf + off, sizeof(sp));
            uint64_t end = (uint64_t)off + sizeof(sp) + (uint64_t)sp.nr_areas * sizeof(a);
            if (end > need)
                break;
            for (uint32_t i = 0; i < sp.nr_areas; i++) {
                memcpy(&a, buf + off + sizeof(sp) + i * sizeof(a), sizeof(a));
                if (a.offset == 0 && a.size >= head.size)
                    whole = true;
            }
            break;
        }
        /* Capabilities follow one another; a link backwards is corrupt. */
        if (h.next && h.next <= off) {
            whole = false;
            break;
        }
        off = h.next;
    }
out:
    free(buf);
    return whole;
}

static uint64_t map_len(const struct hw_device *d, unsigned bar)
{
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    return (d->info.bar[bar].size + page - 1) & ~(page - 1);
}

void hw_vfio_detach(struct hw_device *d)
{
    for (unsigned i = 0; i < HW_MAX_BARS; i++) {
        if (d->bar_map[i])
            munmap((void *)(uintptr_t)d->bar_map[i], map_len(d, i));
        d->bar_map[i] = NULL;
    }
}

static int attach_bar(struct hw_device *d, unsigned i)
{
    const struct hw_bar *b = &d->info.bar[i];
    struct vfio_region_info ri = {.argsz = sizeof(ri), .index = VFIO_PCI_BAR0_REGION_INDEX + i};
    int r = xioctl(d->fd, VFIO_DEVICE_GET_REGION_INFO, &ri);
    if (r < 0)
        return r;
    /* The supervisor measured the BAR through this same descriptor; a
     * smaller region now means the two disagree about the device. */
    if (ri.size < b->size || ri.offset > INT64_MAX)
        return -EIO;
    d->region_off[i] = ri.offset;
    if (b->kind == HW_BAR_IO || !(ri.flags & VFIO_REGION_INFO_FLAG_MMAP) || b->size > SIZE_MAX ||
        !sparse_allows_whole(d->fd, &ri))
        return 0;
    void *p =
        mmap(NULL, map_len(d, i), PROT_READ | PROT_WRITE, MAP_SHARED, d->fd, (off_t)ri.offset);
    /* Unmappable after all (a kernel that refuses part of it): the
     * descriptor still reaches every register, only slower. */
    d->bar_map[i] = p == MAP_FAILED ? NULL : p;
    return 0;
}

int hw_vfio_attach(struct hw_device *d)
{
    for (unsigned i = 0; i < HW_MAX_BARS; i++)
        d->bar_map[i] = NULL;
    struct vfio_device_info di = {.argsz = sizeof(di)};
    int r = xioctl(d->fd, VFIO_DEVICE_GET_INFO, &di);
    if (r < 0)
        return r;
    if (!(di.flags & VFIO_DEVICE_FLAGS_PCI) || di.num_regions <= VFIO_PCI_CONFIG_REGION_INDEX ||
        di.num_irqs <= VFIO_PCI_MSIX_IRQ_INDEX)
        return -ENODEV;

    struct vfio_region_info ri = {.argsz = sizeof(ri), .index = VFIO_PCI_CONFIG_REGION_INDEX};
    r = xioctl(d->fd, VFIO_DEVICE_GET_REGION_INFO, &ri);
    if (r < 0)
        return r;
    if (ri.size < 256 || ri.offset > INT64_MAX)
        return -EIO;
    CFG_OFF(d) = ri.offset;

    for (unsigned i = 0; i < HW_MAX_BARS; i++) {
        if (d->info.bar[i].kind == HW_BAR_NONE)
            continue;
        if ((r = attach_bar(d, i)) < 0)
            goto fail;
    }

    /* A previous incarnation of this driver may have left any mode routed
     * (the supervisor unroutes them, but only when it noticed the death). */
    irqs_off(d->fd);
    d->irq_mode = HW_IRQ_INTX;
    if (d->irq_fd >= 0 && d->info.irq_pin) {
        r = irq_count(d->fd, VFIO_PCI_INTX_IRQ_INDEX);
        /* vfio offers no INTx when the line is shared and the device cannot
         * mask it; the driver then has MSI or MSI-X to choose from. */
        if (r > 0)
            r = route(d, VFIO_PCI_INTX_IRQ_INDEX);
        if (r < 0)
            goto fail;
    }
    return 0;
fail:
    hw_vfio_detach(d);
    return r;
}
