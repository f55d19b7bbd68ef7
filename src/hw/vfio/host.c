#include "hw/vfio/host.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/pci_regs.h>
#include <linux/vfio.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"

#define HEADER_BYTES 64

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static const char *hex_field(const char *s, unsigned min, unsigned max, uint32_t *out)
{
    uint32_t v = 0;
    unsigned n = 0;
    while (n < max && hexval(s[n]) >= 0) {
        v = v << 4 | (uint32_t)hexval(s[n]);
        n++;
    }
    if (n < min)
        return NULL;
    *out = v;
    return s + n;
}

int vfio_parse_bdf(const char *bdf, unsigned *domain, uint8_t *bus, uint8_t *slot, uint8_t *func,
                   char *canon)
{
    uint32_t dom, b, s, f;
    const char *p = bdf;
    if (!p)
        return -EINVAL;
    /* Linux names domains with at least four digits and more when needed
     * (VMD domains are 10000 and up); bus, slot and function are fixed. */
    if (!(p = hex_field(p, 4, 8, &dom)) || *p++ != ':')
        return -EINVAL;
    if (!(p = hex_field(p, 2, 2, &b)) || *p++ != ':')
        return -EINVAL;
    if (!(p = hex_field(p, 2, 2, &s)) || *p++ != '.')
        return -EINVAL;
    if (!(p = hex_field(p, 1, 1, &f)) || *p != '\0')
        return -EINVAL;
    if (s > 0x1f || f > 7)
        return -EINVAL;
    if (domain)
        *domain = dom;
    if (bus)
        *bus = (uint8_t)b;
    if (slot)
        *slot = (uint8_t)s;
    if (func)
        *func = (uint8_t)f;
    if (canon)
        snprintf(canon, VFIO_BDF_LEN, "%04x:%02x:%02x.%x", dom, b, s, f);
    return 0;
}

static int path_of(char *out, const char *dir, const char *bdf, const char *leaf)
{
    int n = snprintf(out, PATH_MAX, "%s/%s%s%s", dir, bdf, leaf ? "/" : "", leaf ? leaf : "");
    return n < 0 || n >= PATH_MAX ? -ENAMETOOLONG : 0;
}

/* The last component of the symlink dir/bdf/leaf, e.g. the driver's name. */
static int link_name(const char *dir, const char *bdf, const char *leaf, char *out, size_t outlen)
{
    char path[PATH_MAX], target[PATH_MAX];
    int r = path_of(path, dir, bdf, leaf);
    if (r)
        return r;
    ssize_t n = readlink(path, target, sizeof(target) - 1);
    if (n < 0)
        return -errno;
    target[n] = '\0';
    const char *base = strrchr(target, '/');
    base = base ? base + 1 : target;
    if (!*base || strlen(base) >= outlen)
        return -EINVAL;
    strcpy(out, base);
    return 0;
}

static void unbound_advice(char *err, size_t errlen, const char *dir, const char *bdf,
                           const char *driver)
{
    if (driver)
        errfmt(err, errlen,
               "PCI device %s is bound to %s, not vfio-pci; as root: "
               "echo vfio-pci > %s/%s/driver_override; echo %s > %s/%s/driver/unbind; "
               "echo %s > /sys/bus/pci/drivers_probe (docs/hw-vfio.md)",
               bdf, driver, dir, bdf, bdf, dir, bdf, bdf);
    else
        errfmt(err, errlen,
               "PCI device %s is bound to no driver; as root: modprobe vfio-pci; "
               "echo vfio-pci > %s/%s/driver_override; echo %s > /sys/bus/pci/drivers_probe "
               "(docs/hw-vfio.md)",
               bdf, dir, bdf, bdf);
}

/* How many devices the group directory lists, and whether bdf is one. */
static int group_members(const char *dir, const char *bdf, bool *has_self, char *names,
                         size_t nameslen)
{
    char path[PATH_MAX];
    int r = path_of(path, dir, bdf, "iommu_group/devices");
    if (r)
        return r;
    DIR *dp = opendir(path);
    if (!dp)
        return -errno;
    int n = 0;
    size_t used = 0;
    struct dirent *e;
    *has_self = false;
    names[0] = '\0';
    while ((e = readdir(dp))) {
        if (e->d_name[0] == '.')
            continue;
        n++;
        if (!strcmp(e->d_name, bdf))
            *has_self = true;
        int w = snprintf(names + used, nameslen - used, "%s%s", used ? " " : "", e->d_name);
        if (w > 0 && (size_t)w < nameslen - used)
            used += (size_t)w;
    }
    closedir(dp);
    return n;
}

static uint32_t read_gsi(const char *dir, const char *bdf)
{
    char path[PATH_MAX], buf[32];
    if (path_of(path, dir, bdf, "irq"))
        return 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    char *end;
    errno = 0;
    unsigned long v = strtoul(buf, &end, 10);
    if (errno || end == buf || v > UINT32_MAX)
        return 0;
    return (uint32_t)v;
}

int vfio_host_sysfs_check(const char *devices_dir, const char *bdf, unsigned *group, uint32_t *gsi,
                          char *err, size_t errlen)
{
    char canon[VFIO_BDF_LEN], path[PATH_MAX], name[NAME_MAX + 1];
    if (vfio_parse_bdf(bdf, NULL, NULL, NULL, NULL, canon)) {
        errfmt(err, errlen,
               "\"%s\" is not a PCI address: expected domain:bus:slot.function in hex, "
               "as `lspci -D` prints it (0000:01:00.0)",
               bdf ? bdf : "");
        return -EINVAL;
    }
    int r = path_of(path, devices_dir, canon, NULL);
    if (r) {
        errfmt(err, errlen, "%s/%s: path too long", devices_dir, canon);
        return r;
    }
    struct stat st;
    if (stat(path, &st) < 0) {
        r = -errno;
        if (r == -ENOENT)
            errfmt(err, errlen,
                   "no PCI device %s on this machine (%s does not exist); `lspci -D` lists "
                   "the devices there are",
                   canon, path);
        else
            errfmt(err, errlen, "cannot look at %s: %s", path, strerror(-r));
        return r;
    }

    r = link_name(devices_dir, canon, "driver", name, sizeof(name));
    if (r == -ENOENT) {
        unbound_advice(err, errlen, devices_dir, canon, NULL);
        return -ENODEV;
    }
    if (r) {
        errfmt(err, errlen, "cannot read the driver of %s: %s", canon, strerror(-r));
        return r;
    }
    if (strcmp(name, "vfio-pci")) {
        unbound_advice(err, errlen, devices_dir, canon, name);
        return -EBUSY;
    }

    r = link_name(devices_dir, canon, "iommu_group", name, sizeof(name));
    if (r == -ENOENT) {
        errfmt(err, errlen,
               "PCI device %s has no IOMMU group: the kernel runs without an IOMMU. Enable "
               "VT-d / AMD-Vi in the firmware and boot with intel_iommu=on (Intel) or with the "
               "AMD IOMMU on (docs/hw-vfio.md)",
               canon);
        return -ENODEV;
    }
    if (r) {
        errfmt(err, errlen, "cannot read the IOMMU group of %s: %s", canon, strerror(-r));
        return r;
    }
    char *end;
    errno = 0;
    unsigned long g = strtoul(name, &end, 10);
    if (errno || end == name || *end || g > UINT_MAX) {
        errfmt(err, errlen, "PCI device %s: IOMMU group \"%s\" is not a number", canon, name);
        return -EINVAL;
    }

    char names[256];
    bool self = false;
    int n = group_members(devices_dir, canon, &self, names, sizeof(names));
    if (n < 0) {
        errfmt(err, errlen, "cannot list IOMMU group %lu of %s: %s", g, canon, strerror(-n));
        return n;
    }
    if (n != 1 || !self) {
        errfmt(err, errlen,
               "IOMMU group %lu of %s holds %d devices (%s); devmux grants a device only when "
               "it is alone in its group, since the IOMMU cannot tell the others' DMA from its "
               "own. Try another slot (docs/hw-vfio.md)",
               g, canon, n, names);
        return -EPERM;
    }
    *group = (unsigned)g;
    *gsi = read_gsi(devices_dir, canon);
    return 0;
}

static uint16_t le16_at(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32_at(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int vfio_host_parse_config(const uint8_t *cfg, size_t len, const uint64_t bar_size[HW_MAX_BARS],
                           struct hw_pci_info *info, char *err, size_t errlen)
{
    if (len < HEADER_BYTES) {
        errfmt(err, errlen, "config space of %zu bytes is shorter than a PCI header", len);
        return -EINVAL;
    }
    /* A function that is gone or powered down answers config reads with
     * all ones, which would otherwise parse as a plausible header. */
    if (le16_at(cfg + PCI_VENDOR_ID) == 0xffff) {
        errfmt(err, errlen, "config space reads as all ones: the device does not respond");
        return -ENODEV;
    }
    unsigned htype = cfg[PCI_HEADER_TYPE] & PCI_HEADER_TYPE_MASK;
    if (htype != PCI_HEADER_TYPE_NORMAL) {
        errfmt(err, errlen, "header type %u: only endpoints (type 0) can be granted, not bridges",
               htype);
        return -EINVAL;
    }

    struct hw_pci_info in = {0};
    in.vendor = le16_at(cfg + PCI_VENDOR_ID);
    in.device = le16_at(cfg + PCI_DEVICE_ID);
    in.subsys_vendor = le16_at(cfg + PCI_SUBSYSTEM_VENDOR_ID);
    in.subsys = le16_at(cfg + PCI_SUBSYSTEM_ID);
    in.revision = cfg[PCI_REVISION_ID];
    in.class_code = (uint32_t)cfg[PCI_CLASS_PROG + 2] << 16 |
                    (uint32_t)cfg[PCI_CLASS_PROG + 1] << 8 | cfg[PCI_CLASS_PROG];
    in.irq_pin = cfg[PCI_INTERRUPT_PIN] <= 4 ? cfg[PCI_INTERRUPT_PIN] : 0;

    for (unsigned i = 0; i < HW_MAX_BARS; i++) {
        uint32_t raw = le32_at(cfg + PCI_BASE_ADDRESS_0 + 4 * i);
        struct hw_bar *b = &in.bar[i];
        if (!bar_size[i])
            continue;
        b->size = bar_size[i];
        if (raw & PCI_BASE_ADDRESS_SPACE_IO) {
            b->kind = HW_BAR_IO;
            b->addr = raw & ~(uint32_t)0x3;
            continue;
        }
        b->prefetchable = !!(raw & PCI_BASE_ADDRESS_MEM_PREFETCH);
        b->addr = raw & ~(uint32_t)0xf;
        switch (raw & PCI_BASE_ADDRESS_MEM_TYPE_MASK) {
        case PCI_BASE_ADDRESS_MEM_TYPE_32:
        case PCI_BASE_ADDRESS_MEM_TYPE_1M:
            b->kind = HW_BAR_MEM32;
            break;
        case PCI_BASE_ADDRESS_MEM_TYPE_64:
            /* The upper half is the next register; vfio reports no region
             * for it, and anything else means we misread the header. */
            if (i + 1 >= HW_MAX_BARS || bar_size[i + 1]) {
                errfmt(err, errlen, "BAR %u claims 64 bits but BAR %u is not its upper half", i,
                       i + 1);
                return -EINVAL;
            }
            b->kind = HW_BAR_MEM64;
            b->addr |= (uint64_t)le32_at(cfg + PCI_BASE_ADDRESS_0 + 4 * (i + 1)) << 32;
            i++;
            break;
        default:
            errfmt(err, errlen, "BAR %u has the reserved memory type 3", i);
            return -EINVAL;
        }
    }
    *info = in;
    return 0;
}

static int xioctl(int fd, unsigned long req, void *arg)
{
    int r;
    do
        r = ioctl(fd, req, arg);
    while (r < 0 && errno == EINTR);
    return r < 0 ? -errno : r;
}

static int region_info(int fd, unsigned index, struct vfio_region_info *ri)
{
    memset(ri, 0, sizeof(*ri));
    ri->argsz = sizeof(*ri);
    ri->index = index;
    int r = xioctl(fd, VFIO_DEVICE_GET_REGION_INFO, ri);
    return r < 0 ? r : 0;
}

static int cfg_rw16(struct vfio_host_dev *d, unsigned off, uint16_t *v, bool write)
{
    uint8_t b[2] = {(uint8_t)*v, (uint8_t)(*v >> 8)};
    ssize_t n = write ? pwrite(d->device, b, 2, (off_t)(d->cfg_off + off))
                      : pread(d->device, b, 2, (off_t)(d->cfg_off + off));
    if (n != 2)
        return n < 0 ? -errno : -EIO;
    *v = le16_at(b);
    return 0;
}

static void open_fail(struct vfio_host_dev *d)
{
    if (d->device >= 0)
        close(d->device);
    if (d->group >= 0)
        close(d->group);
    if (d->container >= 0)
        close(d->container);
    d->device = d->group = d->container = -1;
}

static int open_container(struct vfio_host_dev *d, char *err, size_t errlen)
{
    d->container = open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
    if (d->container < 0) {
        int r = -errno;
        if (r == -ENOENT)
            errfmt(err, errlen,
                   "no /dev/vfio/vfio: this kernel has no VFIO loaded (modprobe vfio-pci; "
                   "docs/hw-vfio.md)");
        else
            errfmt(err, errlen, "/dev/vfio/vfio: %s", strerror(-r));
        return r;
    }
    int v = xioctl(d->container, VFIO_GET_API_VERSION, NULL);
    if (v < 0) {
        errfmt(err, errlen, "/dev/vfio/vfio: VFIO_GET_API_VERSION: %s", strerror(-v));
        return v;
    }
    if (v != VFIO_API_VERSION) {
        errfmt(err, errlen, "/dev/vfio/vfio speaks VFIO API %d; devmux knows version %d", v,
               VFIO_API_VERSION);
        return -EPROTO;
    }
    if (xioctl(d->container, VFIO_CHECK_EXTENSION, (void *)(uintptr_t)VFIO_TYPE1v2_IOMMU) <= 0) {
        errfmt(err, errlen, "this kernel's VFIO lacks the type1v2 IOMMU driver (vfio_iommu_type1)");
        return -ENOTSUP;
    }
    return 0;
}

static int open_group(struct vfio_host_dev *d, char *err, size_t errlen)
{
    char path[64];
    snprintf(path, sizeof(path), "/dev/vfio/%u", d->group_id);
    d->group = open(path, O_RDWR | O_CLOEXEC);
    if (d->group < 0) {
        int r = -errno;
        char noiommu[64];
        snprintf(noiommu, sizeof(noiommu), "/dev/vfio/noiommu-%u", d->group_id);
        if (r == -ENOENT && access(noiommu, F_OK) == 0)
            errfmt(err, errlen,
                   "%s: VFIO runs in no-IOMMU mode, where nothing confines the device's DMA; "
                   "devmux refuses it. Enable the IOMMU (docs/hw-vfio.md)",
                   noiommu);
        else if (r == -EACCES || r == -EPERM)
            errfmt(err, errlen,
                   "%s: permission denied; give the supervisor's user that file (chown, or "
                   "a udev rule; docs/hw-vfio.md)",
                   path);
        else if (r == -EBUSY)
            errfmt(err, errlen, "%s is open in another process (another devmux, or a VM)", path);
        else
            errfmt(err, errlen, "%s: %s", path, strerror(-r));
        return r;
    }
    struct vfio_group_status st = {.argsz = sizeof(st)};
    int r = xioctl(d->group, VFIO_GROUP_GET_STATUS, &st);
    if (r < 0) {
        errfmt(err, errlen, "%s: VFIO_GROUP_GET_STATUS: %s", path, strerror(-r));
        return r;
    }
    if (!(st.flags & VFIO_GROUP_FLAGS_VIABLE)) {
        errfmt(err, errlen,
               "IOMMU group %u is not viable: every device in it must be bound to vfio-pci",
               d->group_id);
        return -EPERM;
    }
    r = xioctl(d->group, VFIO_GROUP_SET_CONTAINER, &d->container);
    if (r < 0) {
        errfmt(err, errlen, "%s: VFIO_GROUP_SET_CONTAINER: %s", path, strerror(-r));
        return r;
    }
    r = xioctl(d->container, VFIO_SET_IOMMU, (void *)(uintptr_t)VFIO_TYPE1v2_IOMMU);
    if (r < 0) {
        errfmt(err, errlen, "VFIO_SET_IOMMU (type1v2): %s", strerror(-r));
        return r;
    }
    return 0;
}

static int open_device(struct vfio_host_dev *d, char *err, size_t errlen)
{
    int r = xioctl(d->group, VFIO_GROUP_GET_DEVICE_FD, d->bdf);
    if (r < 0) {
        errfmt(err, errlen, "%s: VFIO_GROUP_GET_DEVICE_FD: %s", d->bdf, strerror(-r));
        return r;
    }
    d->device = r;

    struct vfio_device_info di = {.argsz = sizeof(di)};
    r = xioctl(d->device, VFIO_DEVICE_GET_INFO, &di);
    if (r < 0) {
        errfmt(err, errlen, "%s: VFIO_DEVICE_GET_INFO: %s", d->bdf, strerror(-r));
        return r;
    }
    if (!(di.flags & VFIO_DEVICE_FLAGS_PCI) || di.num_regions <= VFIO_PCI_CONFIG_REGION_INDEX) {
        errfmt(err, errlen, "%s: VFIO does not present it as a PCI device", d->bdf);
        return -ENODEV;
    }
    d->flags = di.flags;

    struct vfio_region_info ri;
    r = region_info(d->device, VFIO_PCI_CONFIG_REGION_INDEX, &ri);
    if (r < 0 || ri.size < 256) {
        errfmt(err, errlen, "%s: config space region: %s", d->bdf,
               r < 0 ? strerror(-r) : "smaller than 256 bytes");
        return r < 0 ? r : -EIO;
    }
    d->cfg_off = ri.offset;

    uint64_t sizes[HW_MAX_BARS];
    for (unsigned i = 0; i < HW_MAX_BARS; i++) {
        r = region_info(d->device, VFIO_PCI_BAR0_REGION_INDEX + i, &ri);
        if (r < 0) {
            errfmt(err, errlen, "%s: BAR %u region: %s", d->bdf, i, strerror(-r));
            return r;
        }
        sizes[i] = ri.size;
    }
    uint8_t cfg[HEADER_BYTES];
    ssize_t n = pread(d->device, cfg, sizeof(cfg), (off_t)d->cfg_off);
    if (n != (ssize_t)sizeof(cfg)) {
        errfmt(err, errlen, "%s: reading config space: %s", d->bdf,
               n < 0 ? strerror(errno) : "short read");
        return n < 0 ? -errno : -EIO;
    }
    char why[160];
    r = vfio_host_parse_config(cfg, sizeof(cfg), sizes, &d->info, why, sizeof(why));
    if (r < 0) {
        errfmt(err, errlen, "%s: %s", d->bdf, why);
        return r;
    }
    return 0;
}

int vfio_host_open(const char *bdf, struct vfio_host_dev *out, char *err, size_t errlen)
{
    struct vfio_host_dev d = {.container = -1, .group = -1, .device = -1};
    uint8_t bus, slot, func;
    uint32_t gsi;
    *out = d;
    int r = vfio_host_sysfs_check(VFIO_SYSFS_PCI, bdf, &d.group_id, &gsi, err, errlen);
    if (r < 0)
        return r;
    vfio_parse_bdf(bdf, NULL, &bus, &slot, &func, d.bdf);

    if ((r = open_container(&d, err, errlen)) < 0 || (r = open_group(&d, err, errlen)) < 0 ||
        (r = open_device(&d, err, errlen)) < 0) {
        open_fail(&d);
        return r;
    }
    d.info.bus = bus;
    d.info.slot = slot;
    d.info.func = func;
    d.info.gsi = gsi;
    /* vfio-pci enables decoding when it opens the device, which drivers
     * rely on; bus mastering waits for the driver's hw_enable. */
    vfio_host_quiesce(&d);
    *out = d;
    return 0;
}

int vfio_host_map_dma(struct vfio_host_dev *d, void *vaddr, uint64_t iova, uint64_t size)
{
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    if (d->container < 0)
        return -EBADF;
    if (!size || ((uintptr_t)vaddr | iova | size) & (page - 1) || iova + size < iova)
        return -EINVAL;
    struct vfio_iommu_type1_dma_map m = {
        .argsz = sizeof(m),
        .flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
        .vaddr = (uintptr_t)vaddr,
        .iova = iova,
        .size = size,
    };
    int r = xioctl(d->container, VFIO_IOMMU_MAP_DMA, &m);
    return r < 0 ? r : 0;
}

int vfio_host_unmap_dma(struct vfio_host_dev *d, uint64_t iova, uint64_t size)
{
    if (d->container < 0)
        return -EBADF;
    struct vfio_iommu_type1_dma_unmap u = {.argsz = sizeof(u), .iova = iova, .size = size};
    int r = xioctl(d->container, VFIO_IOMMU_UNMAP_DMA, &u);
    if (r < 0)
        return r;
    /* type1 reports how much it unmapped; less means the range did not
     * match what map_dma was given. */
    return u.size == size ? 0 : -ENOENT;
}

void vfio_host_quiesce(struct vfio_host_dev *d)
{
    if (d->device < 0)
        return;
    uint16_t cmd;
    if (cfg_rw16(d, PCI_COMMAND, &cmd, false) == 0 && (cmd & PCI_COMMAND_MASTER)) {
        cmd &= (uint16_t)~PCI_COMMAND_MASTER;
        cfg_rw16(d, PCI_COMMAND, &cmd, true);
    }
    /* Unrouting every index lets the next driver pick any interrupt mode;
     * vfio refuses to switch modes while one is active.  Only the active
     * index accepts this, so the others' errors mean nothing. */
    static const uint32_t idx[] = {VFIO_PCI_INTX_IRQ_INDEX, VFIO_PCI_MSI_IRQ_INDEX,
                                   VFIO_PCI_MSIX_IRQ_INDEX};
    for (size_t i = 0; i < sizeof(idx) / sizeof(idx[0]); i++) {
        struct vfio_irq_set s = {
            .argsz = sizeof(s),
            .flags = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER,
            .index = idx[i],
        };
        xioctl(d->device, VFIO_DEVICE_SET_IRQS, &s);
    }
}

void vfio_host_close(struct vfio_host_dev *d)
{
    vfio_host_quiesce(d);
    open_fail(d);
}
