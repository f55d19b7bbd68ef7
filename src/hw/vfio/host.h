/*
 * The supervisor's side of the vfio backend: it opens a PCI function that
 * the administrator bound to vfio-pci, puts it in an IOMMU container of its
 * own, maps the driver component's DMA regions into that container, and
 * hands the device descriptor to the component (src/hw/vfio/client.c).
 *
 * The supervisor keeps every descriptor for the device's whole life, so a
 * driver that dies leaves the device open here: it can be quiesced (bus
 * mastering off, interrupts unrouted) and given to the restarted driver
 * with its DMA mappings intact.
 *
 * One container per device, and only IOMMU groups that hold exactly that
 * device: a group is the IOMMU's unit of isolation, so granting one member
 * of a larger group would let the others share its DMA view.
 * docs/hw-vfio.md describes the host setup these calls expect.
 */
#ifndef DEVMUX_HW_VFIO_HOST_H
#define DEVMUX_HW_VFIO_HOST_H

#include <stddef.h>
#include <stdint.h>

#include "devmux/hw.h"

/* The canonical sysfs form: "0000:01:00.0" (a domain may have up to 8
 * hex digits), always lower case. */
#define VFIO_BDF_LEN 20

#define VFIO_SYSFS_PCI "/sys/bus/pci/devices"

struct vfio_host_dev {
    char bdf[VFIO_BDF_LEN];
    unsigned group_id;
    int container;    /* /dev/vfio/vfio, with the type1v2 IOMMU set */
    int group;        /* /dev/vfio/<group_id> */
    int device;       /* what the component receives as its device fd */
    uint32_t flags;   /* VFIO_DEVICE_FLAGS_* */
    uint64_t cfg_off; /* config space in the device descriptor */
    struct hw_pci_info info;
};

/* Parses "DDDD:BB:SS.F" (hex; slot <= 0x1f, function <= 7).  Writes the
 * canonical form to canon (VFIO_BDF_LEN bytes) if it is not NULL.
 * 0 or -EINVAL. */
int vfio_parse_bdf(const char *bdf, unsigned *domain, uint8_t *bus, uint8_t *slot, uint8_t *func,
                   char *canon);

/* The sysfs half of vfio_host_open, against a devices directory
 * (VFIO_SYSFS_PCI, or a copy of its shape in tests): the device exists, is
 * bound to vfio-pci and is alone in its IOMMU group.  *group receives the
 * group number and *gsi the interrupt line the kernel reports (0 if none).
 * 0, or -errno with the reason and the fix in err. */
int vfio_host_sysfs_check(const char *devices_dir, const char *bdf, unsigned *group, uint32_t *gsi,
                          char *err, size_t errlen);

/* What hw_pci_info a type-0 config header describes.  cfg holds at least
 * the first 64 bytes of config space (little-endian, as vfio returns it);
 * bar_size[i] is the size vfio reports for BAR i (0: unimplemented).  The
 * location fields (bus, slot, func, gsi) are left to the caller.
 * 0, or -EINVAL / -ENODEV with the reason in err. */
int vfio_host_parse_config(const uint8_t *cfg, size_t len, const uint64_t bar_size[HW_MAX_BARS],
                           struct hw_pci_info *info, char *err, size_t errlen);

/* Opens bdf through VFIO and fills *out, bus mastering off.  0, or -errno
 * with a message in err that says what to change on the host. */
int vfio_host_open(const char *bdf, struct vfio_host_dev *out, char *err, size_t errlen);

/* Lets the device reach [iova, iova + size) by DMA, backed by the
 * supervisor's mapping at vaddr (a shared mapping of the region's memfd,
 * so the component sees the same pages).  All three page-aligned.  The
 * pages are pinned and count against RLIMIT_MEMLOCK.  0 or -errno
 * (-EINVAL also for an iova in the IOMMU's reserved ranges). */
int vfio_host_map_dma(struct vfio_host_dev *d, void *vaddr, uint64_t iova, uint64_t size);
int vfio_host_unmap_dma(struct vfio_host_dev *d, uint64_t iova, uint64_t size);

/* Stops the device from starting DMA or raising interrupts toward a
 * driver that is gone: bus mastering off, every interrupt index unrouted.
 * Best effort; safe on a closed device. */
void vfio_host_quiesce(struct vfio_host_dev *d);

/* Quiesces, then closes device, group and container (which drops every
 * DMA mapping).  Safe to call twice. */
void vfio_host_close(struct vfio_host_dev *d);

#endif
