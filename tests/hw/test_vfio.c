/*
 * The vfio backend without VFIO: this host has none, so what runs here is
 * everything that does not need the kernel's VFIO — PCI address syntax,
 * the sysfs checks against a directory tree shaped like
 * /sys/bus/pci/devices (and the real one, for a device that is absent),
 * config header decoding, and the component-side ops over a plain file
 * standing in for the device descriptor (config and BAR bytes at region
 * offsets, as vfio lays them out).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "hw/vfio/client.h"
#include "hw/vfio/host.h"

/* ---- PCI addresses ---- */

static void bdf_valid(void **state)
{
    unsigned dom;
    uint8_t bus, slot, func;
    char canon[VFIO_BDF_LEN];
    assert_int_equal(vfio_parse_bdf("0000:01:00.0", &dom, &bus, &slot, &func, canon), 0);
    assert_int_equal(dom, 0);
    assert_int_equal(bus, 1);
    assert_int_equal(slot, 0);
    assert_int_equal(func, 0);
    assert_string_equal(canon, "0000:01:00.0");

    assert_int_equal(vfio_parse_bdf("00AB:Fe:1F.7", &dom, &bus, &slot, &func, canon), 0);
    assert_int_equal(dom, 0xab);
    assert_int_equal(bus, 0xfe);
    assert_int_equal(slot, 0x1f);
    assert_int_equal(func, 7);
    assert_string_equal(canon, "00ab:fe:1f.7");

    /* Domains past 0xffff (VMD) print with more digits. */
    assert_int_equal(vfio_parse_bdf("10000:e0:00.0", &dom, NULL, NULL, NULL, canon), 0);
    assert_int_equal(dom, 0x10000);
    assert_string_equal(canon, "10000:e0:00.0");
}

static void bdf_invalid(void **state)
{
    static const char *const bad[] = {
        "",
        "01:00.0",
        "0000:01:00",
        "0000:01:00.",
        "0000:01:20.0",
        "0000:01:00.8",
        "0000:1:00.0",
        "0000:01:0.0",
        "0000:01:00.0 ",
        "0000:01:00.0\n",
        " 0000:01:00.0",
        "000:01:00.0",
        "000000000:01:00.0",
        "g000:01:00.0",
        "0000-01:00.0",
        "0000:01:00:0",
        "0000:001:00.0",
        "0000:01:00.00",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint8_t bus = 0x5a;
        if (vfio_parse_bdf(bad[i], NULL, &bus, NULL, NULL, NULL) != -EINVAL)
            fail_msg("\"%s\" was accepted", bad[i]);
        assert_int_equal(bus, 0x5a); /* nothing written on failure */
    }
    assert_int_equal(vfio_parse_bdf(NULL, NULL, NULL, NULL, NULL, NULL), -EINVAL);
}

/* ---- sysfs ---- */

struct tree {
    char root[64];
};

/* Paths in the test tree; one too long is the test's own bug. */
static void pathf(char *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void pathf(char *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, PATH_MAX, fmt, ap);
    va_end(ap);
    assert_true(n > 0 && n < PATH_MAX);
}

static void mkpath(const char *root, const char *rel)
{
    char p[PATH_MAX];
    pathf(p, "%s/%s", root, rel);
    assert_int_equal(mkdir(p, 0755), 0);
}

static void symlinkf(const char *root, const char *target, const char *rel)
{
    char p[PATH_MAX];
    pathf(p, "%s/%s", root, rel);
    assert_int_equal(symlink(target, p), 0);
}

static void writef(const char *root, const char *rel, const char *text)
{
    char p[PATH_MAX];
    pathf(p, "%s/%s", root, rel);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int tree_setup(void **state)
{
    struct tree *t = calloc(1, sizeof(*t));
    snprintf(t->root, sizeof(t->root), "/tmp/devmux-vfio-XXXXXX");
    if (!mkdtemp(t->root))
        return -1;
    *state = t;
    return 0;
}

static int tree_teardown(void **state)
{
    struct tree *t = *state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->root);
    int r = system(cmd);
    free(t);
    return r == 0 ? 0 : -1;
}

/* A device dir with an optional driver link and IOMMU group (group < 0:
 * none).  Groups live outside the devices dir, as /sys/kernel/iommu_groups
 * does, and list their members by symlink. */
static void add_device(const char *root, const char *bdf, const char *driver, int group)
{
    char rel[PATH_MAX], target[PATH_MAX];
    mkpath(root, bdf);
    if (driver) {
        pathf(target, "../../../bus/pci/drivers/%s", driver);
        pathf(rel, "%s/driver", bdf);
        symlinkf(root, target, rel);
    }
    if (group < 0)
        return;
    pathf(target, "%s/groups", root);
    mkdir(target, 0755);
    pathf(target, "%s/groups/%d", root, group);
    if (mkdir(target, 0755) == 0) {
        pathf(rel, "groups/%d/devices", group);
        mkpath(root, rel);
    }
    pathf(rel, "%s/iommu_group", bdf);
    symlinkf(root, target, rel);
    pathf(target, "%s/%s", root, bdf);
    pathf(rel, "groups/%d/devices/%s", group, bdf);
    symlinkf(root, target, rel);
}

static void sysfs_missing_device(void **state)
{
    struct tree *t = *state;
    char err[512] = "";
    unsigned group = 99;
    uint32_t gsi = 99;
    assert_int_equal(vfio_host_sysfs_check(t->root, "0000:01:00.0", &group, &gsi, err, sizeof(err)),
                     -ENOENT);
    assert_non_null(strstr(err, "no PCI device 0000:01:00.0"));
    assert_non_null(strstr(err, "does not exist"));
    assert_non_null(strstr(err, t->root));
    assert_int_equal(group, 99);

    assert_int_equal(vfio_host_sysfs_check(t->root, "1:0.0", &group, &gsi, err, sizeof(err)),
                     -EINVAL);
    assert_non_null(strstr(err, "\"1:0.0\" is not a PCI address"));
    assert_non_null(strstr(err, "0000:01:00.0"));
}

static void sysfs_driver(void **state)
{
    struct tree *t = *state;
    char err[512] = "";
    unsigned group;
    uint32_t gsi;
    add_device(t->root, "0000:02:00.0", NULL, 5);
    assert_int_equal(vfio_host_sysfs_check(t->root, "0000:02:00.0", &group, &gsi, err, sizeof(err)),
                     -ENODEV);
    assert_non_null(strstr(err, "bound to no driver"));
    assert_non_null(strstr(err, "driver_override"));

    add_device(t->root, "0000:03:00.0", "e1000e", 6);
    assert_int_equal(vfio_host_sysfs_check(t->root, "0000:03:00.0", &group, &gsi, err, sizeof(err)),
                     -EBUSY);
    assert_non_null(strstr(err, "bound to e1000e, not vfio-pci"));
    assert_non_null(strstr(err, "0000:03:00.0/driver/unbind"));
}

static void sysfs_groups(void **state)
{
    struct tree *t = *state;
    char err[512] = "";
    unsigned group = 0;
    uint32_t gsi = 0;

    add_device(t->root, "0000:04:00.0", "vfio-pci", -1);
    assert_int_equal(vfio_host_sysfs_check(t->root, "0000:04:00.0", &group, &gsi, err, sizeof(err)),
                     -ENODEV);
    assert_non_null(strstr(err, "no IOMMU group"));
    assert_non_null(strstr(err, "intel_iommu=on"));

    /* Two functions of one card sharing group 9. */
    add_device(t->root, "0000:05:00.0", "vfio-pci", 9);
    add_device(t->root, "0000:05:00.1", "vfio-pci", 9);
    assert_int_equal(vfio_host_sysfs_check(t->root, "0000:05:00.0", &group, &gsi, err, sizeof(err)),
                     -EPERM);
    assert_non_null(strstr(err, "IOMMU group 9"));
    assert_non_null(strstr(err, "holds 2 devices"));
    assert_non_null(strstr(err, "0000:05:00.1"));

    add_device(t->root, "0000:06:00.0", "vfio-pci", 17);
    writef(t->root, "0000:06:00.0/irq", "42\n");
    err[0] = '\0';
    assert_int_equal(vfio_host_sysfs_check(t->root, "0000:06:00.0", &group, &gsi, err, sizeof(err)),
                     0);
    assert_int_equal(group, 17);
    assert_int_equal(gsi, 42);
    assert_string_equal(err, "");

    /* No room for a message is not a reason to fail. */
    group = 0;
    assert_int_equal(vfio_host_sysfs_check(t->root, "0000:06:00.0", &group, &gsi, NULL, 0), 0);
    assert_int_equal(group, 17);

    /* A group number that is not one. */
    mkpath(t->root, "weird");
    mkpath(t->root, "weird/devices");
    add_device(t->root, "0000:07:00.0", "vfio-pci", -1);
    char target[PATH_MAX];
    pathf(target, "%s/weird", t->root);
    symlinkf(t->root, target, "0000:07:00.0/iommu_group");
    assert_int_equal(vfio_host_sysfs_check(t->root, "0000:07:00.0", &group, &gsi, err, sizeof(err)),
                     -EINVAL);
    assert_non_null(strstr(err, "not a number"));
}

static void sysfs_case(void **state)
{
    struct tree *t = *state;
    char err[512] = "";
    unsigned group = 0;
    uint32_t gsi = 1;
    add_device(t->root, "0000:0a:1f.3", "vfio-pci", 3);
    assert_int_equal(vfio_host_sysfs_check(t->root, "0000:0A:1F.3", &group, &gsi, err, sizeof(err)),
                     0);
    assert_int_equal(group, 3);
    assert_int_equal(gsi, 0); /* no irq file */
}

/* The production path, on this machine's real sysfs. */
static void open_absent(void **state)
{
    struct vfio_host_dev d;
    char err[512] = "";
    memset(&d, 0x5a, sizeof(d));
    assert_int_equal(vfio_host_open("ffff:ff:1f.7", &d, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, "no PCI device ffff:ff:1f.7"));
    assert_non_null(strstr(err, "/sys/bus/pci/devices/ffff:ff:1f.7 does not exist"));
    assert_int_equal(d.device, -1);
    assert_int_equal(d.group, -1);
    assert_int_equal(d.container, -1);
    vfio_host_close(&d); /* harmless on a device that never opened */

    assert_int_equal(vfio_host_open("01:00.0", &d, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "is not a PCI address"));

    assert_int_equal(vfio_host_map_dma(&d, NULL, 0, 4096), -EBADF);
    assert_int_equal(vfio_host_unmap_dma(&d, 0, 4096), -EBADF);
}

/* ---- config header ---- */

static void put16(uint8_t *c, unsigned off, uint16_t v)
{
    c[off] = (uint8_t)v;
    c[off + 1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *c, unsigned off, uint32_t v)
{
    for (unsigned i = 0; i < 4; i++)
        c[off + i] = (uint8_t)(v >> (8 * i));
}

static void header(uint8_t *c)
{
    memset(c, 0, 64);
    put16(c, 0x00, 0x8086);
    put16(c, 0x02, 0x10d3);
    c[0x08] = 0x03;             /* revision */
    c[0x09] = 0x01;             /* prog-if */
    c[0x0a] = 0x00;             /* subclass */
    c[0x0b] = 0x02;             /* class: network */
    c[0x0e] = 0x80;             /* type 0, multi-function */
    put32(c, 0x10, 0xfebc0000); /* BAR0: mem32 */
    put32(c, 0x14, 0x0000e001); /* BAR1: I/O at 0xe000 */
    put32(c, 0x18, 0x0000000c); /* BAR2: mem64, prefetchable ... */
    put32(c, 0x1c, 0x00000001); /* BAR3: ... upper half: 0x1_0000_0000 */
    put16(c, 0x2c, 0x1af4);
    put16(c, 0x2e, 0x1100);
    c[0x3d] = 1; /* INTA */
}

static void config_decode(void **state)
{
    uint8_t c[64];
    uint64_t sizes[HW_MAX_BARS] = {0x20000, 0x20, 0x4000, 0, 0, 0};
    struct hw_pci_info info;
    char err[256] = "";
    header(c);
    memset(&info, 0x5a, sizeof(info));
    assert_int_equal(vfio_host_parse_config(c, sizeof(c), sizes, &info, err, sizeof(err)), 0);
    assert_int_equal(info.vendor, 0x8086);
    assert_int_equal(info.device, 0x10d3);
    assert_int_equal(info.revision, 3);
    assert_int_equal(info.class_code, 0x020001);
    assert_int_equal(info.subsys_vendor, 0x1af4);
    assert_int_equal(info.subsys, 0x1100);
    assert_int_equal(info.irq_pin, 1);
    assert_int_equal(info.bar[0].kind, HW_BAR_MEM32);
    assert_int_equal(info.bar[0].addr, 0xfebc0000);
    assert_int_equal(info.bar[0].size, 0x20000);
    assert_int_equal(info.bar[0].prefetchable, 0);
    assert_int_equal(info.bar[1].kind, HW_BAR_IO);
    assert_int_equal(info.bar[1].addr, 0xe000);
    assert_int_equal(info.bar[1].size, 0x20);
    assert_int_equal(info.bar[2].kind, HW_BAR_MEM64);
    assert_int_equal(info.bar[2].addr, 0x100000000ull);
    assert_int_equal(info.bar[2].prefetchable, 1);
    assert_int_equal(info.bar[3].kind, HW_BAR_NONE);
    assert_int_equal(info.bar[3].size, 0);
    assert_int_equal(info.bar[4].kind, HW_BAR_NONE);
    assert_int_equal(info.bar[5].kind, HW_BAR_NONE);
    /* The caller's part is left zero, not garbage. */
    assert_int_equal(info.bus, 0);
    assert_int_equal(info.gsi, 0);

    /* A BAR vfio says is unimplemented stays NONE whatever the register holds. */
    sizes[0] = 0;
    assert_int_equal(vfio_host_parse_config(c, sizeof(c), sizes, &info, err, sizeof(err)), 0);
    assert_int_equal(info.bar[0].kind, HW_BAR_NONE);
    assert_int_equal(info.bar[0].addr, 0);

    /* An out-of-range pin means none. */
    c[0x3d] = 9;
    assert_int_equal(vfio_host_parse_config(c, sizeof(c), sizes, &info, err, sizeof(err)), 0);
    assert_int_equal(info.irq_pin, 0);
}

static void config_refused(void **state)
{
    uint8_t c[64];
    uint64_t sizes[HW_MAX_BARS] = {0x20000, 0x20, 0x4000, 0, 0, 0};
    struct hw_pci_info info;
    char err[256];

    header(c);
    assert_int_equal(vfio_host_parse_config(c, 32, sizes, &info, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "shorter than a PCI header"));

    memset(c, 0xff, sizeof(c));
    assert_int_equal(vfio_host_parse_config(c, sizeof(c), sizes, &info, err, sizeof(err)), -ENODEV);
    assert_non_null(strstr(err, "all ones"));

    header(c);
    c[0x0e] = 0x81; /* a bridge */
    assert_int_equal(vfio_host_parse_config(c, sizeof(c), sizes, &info, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "header type 1"));

    header(c);
    sizes[3] = 0x1000; /* the upper half of BAR2 also claims a region */
    assert_int_equal(vfio_host_parse_config(c, sizeof(c), sizes, &info, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "BAR 2 claims 64 bits"));
    sizes[3] = 0;

    header(c);
    put32(c, 0x24, 0x4); /* BAR5 64-bit: no slot for its upper half */
    sizes[5] = 0x1000;
    assert_int_equal(vfio_host_parse_config(c, sizeof(c), sizes, &info, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "BAR 5 claims 64 bits"));

    header(c);
    put32(c, 0x24, 0x6); /* reserved memory type */
    assert_int_equal(vfio_host_parse_config(c, sizeof(c), sizes, &info, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "reserved"));
}

/* ---- component side, over a plain file ---- */

#define F_CFG  0x1000
#define F_BAR0 0x2000
#define F_BAR1 0x3000
#define F_END  0x3010 /* BAR1's bytes stop short of its size */

struct fdev {
    struct hw_device d;
    char path[64];
};

static int fdev_setup(void **state)
{
    struct fdev *f = calloc(1, sizeof(*f));
    snprintf(f->path, sizeof(f->path), "/tmp/devmux-vfio-dev-XXXXXX");
    int fd = mkstemp(f->path);
    if (fd < 0)
        return -1;
    uint8_t img[F_END];
    for (unsigned i = 0; i < sizeof(img); i++)
        img[i] = (uint8_t)(i * 7 + 1);
    /* Config: vendor 0x1af4, command with INTX_DISABLE and memory on. */
    img[F_CFG + 0] = 0xf4;
    img[F_CFG + 1] = 0x1a;
    img[F_CFG + 4] = 0x02;
    img[F_CFG + 5] = 0x04;
    if (write(fd, img, sizeof(img)) != (ssize_t)sizeof(img))
        return -1;
    f->d.ops = &hw_vfio_ops;
    f->d.fd = fd;
    f->d.irq_fd = -1;
    f->d.aux_fd = -1;
    f->d.region_off[HW_MAX_BARS] = F_CFG;
    f->d.region_off[0] = F_BAR0;
    f->d.region_off[1] = F_BAR1;
    f->d.info.bar[0] = (struct hw_bar){.size = 0x100, .kind = HW_BAR_MEM32};
    f->d.info.bar[1] = (struct hw_bar){.size = 0x20, .kind = HW_BAR_IO};
    *state = f;
    return 0;
}

static int fdev_teardown(void **state)
{
    struct fdev *f = *state;
    close(f->d.fd);
    unlink(f->path);
    free(f);
    return 0;
}

static uint8_t file_byte(struct fdev *f, unsigned pos)
{
    uint8_t b;
    assert_int_equal(pread(f->d.fd, &b, 1, pos), 1);
    return b;
}

static void ops_config(void **state)
{
    struct fdev *f = *state;
    uint32_t v = 0;
    assert_int_equal(hw_vfio_ops.cfg_read(&f->d, 0, 2, &v), 0);
    assert_int_equal(v, 0x1af4);
    assert_int_equal(hw_vfio_ops.cfg_read(&f->d, 0, 1, &v), 0);
    assert_int_equal(v, 0xf4);
    assert_int_equal(hw_vfio_ops.cfg_read(&f->d, 4, 4, &v), 0);
    assert_int_equal(v & 0xffff, 0x0402);

    assert_int_equal(hw_vfio_ops.cfg_write(&f->d, 0x40, 4, 0x11223344), 0);
    assert_int_equal(file_byte(f, F_CFG + 0x40), 0x44);
    assert_int_equal(file_byte(f, F_CFG + 0x43), 0x11);
    assert_int_equal(hw_vfio_ops.cfg_read(&f->d, 0x42, 2, &v), 0);
    assert_int_equal(v, 0x1122);
}

static void ops_bar_file(void **state)
{
    struct fdev *f = *state;
    uint64_t v = 0, want = 0;
    for (unsigned i = 8; i-- > 0;)
        want = want << 8 | (uint8_t)((F_BAR0 + 8 + i) * 7 + 1);
    assert_int_equal(hw_vfio_ops.read(&f->d, 0, 8, 8, &v), 0);
    assert_int_equal(v, want);

    assert_int_equal(hw_vfio_ops.write(&f->d, 0, 0x10, 2, 0xbeef), 0);
    assert_int_equal(file_byte(f, F_BAR0 + 0x10), 0xef);
    assert_int_equal(file_byte(f, F_BAR0 + 0x11), 0xbe);

    /* Port I/O has no 8-byte access. */
    assert_int_equal(hw_vfio_ops.read(&f->d, 1, 0, 8, &v), -EINVAL);
    assert_int_equal(hw_vfio_ops.write(&f->d, 1, 0, 8, 0), -EINVAL);
    assert_int_equal(hw_vfio_ops.read(&f->d, 1, 0, 4, &v), 0);

    /* Inside the BAR as hw.c sees it, past what the descriptor holds: a
     * short read is an error, never stale bytes. */
    assert_int_equal(hw_vfio_ops.read(&f->d, 1, 0x0e, 4, &v), -EIO);
    assert_int_equal(hw_vfio_ops.read(&f->d, 1, 0x18, 4, &v), -EIO);
}

static void ops_bar_mapped(void **state)
{
    struct fdev *f = *state;
    static uint64_t bar[32];
    memset(bar, 0, sizeof(bar));
    f->d.bar_map[0] = bar;
    uint64_t v = 0;
    assert_int_equal(hw_vfio_ops.write(&f->d, 0, 4, 4, 0xa1b2c3d4), 0);
    const uint8_t *b = (const uint8_t *)bar;
    assert_int_equal(b[4], 0xd4);
    assert_int_equal(b[7], 0xa1);
    assert_int_equal(b[3], 0);
    assert_int_equal(b[8], 0);
    assert_int_equal(hw_vfio_ops.read(&f->d, 0, 6, 2, &v), 0);
    assert_int_equal(v, 0xa1b2);
    assert_int_equal(hw_vfio_ops.write(&f->d, 0, 0x18, 8, 0x0102030405060708ull), 0);
    assert_int_equal(hw_vfio_ops.read(&f->d, 0, 0x18, 8, &v), 0);
    assert_int_equal(v, 0x0102030405060708ull);
    assert_int_equal(b[0x18], 0x08);
    assert_int_equal(hw_vfio_ops.read(&f->d, 0, 0x1f, 1, &v), 0);
    assert_int_equal(v, 0x01);
    /* The descriptor is not touched when the BAR is mapped. */
    assert_int_equal(file_byte(f, F_BAR0 + 4), (uint8_t)((F_BAR0 + 4) * 7 + 1));
    f->d.bar_map[0] = NULL;
}

static void ops_enable_reset(void **state)
{
    struct fdev *f = *state;
    uint32_t cmd;
    assert_int_equal(hw_vfio_ops.enable(&f->d), 0);
    assert_int_equal(hw_vfio_ops.cfg_read(&f->d, 4, 2, &cmd), 0);
    /* Memory and I/O (both kinds of BAR present), bus master, and the
     * INTx-disable bit that was there stays. */
    assert_int_equal(cmd, 0x0407);

    /* A plain file has no VFIO_DEVICE_GET_INFO, so the reset fails, but
     * only after bus mastering went off; decoding stays on. */
    assert_int_equal(hw_vfio_ops.reset(&f->d), -ENOTTY);
    assert_int_equal(hw_vfio_ops.cfg_read(&f->d, 4, 2, &cmd), 0);
    assert_int_equal(cmd, 0x0403);

    /* Without I/O BARs, enable leaves I/O decoding alone. */
    f->d.info.bar[1].kind = HW_BAR_NONE;
    assert_int_equal(hw_vfio_ops.cfg_write(&f->d, 4, 2, 0), 0);
    assert_int_equal(hw_vfio_ops.enable(&f->d), 0);
    assert_int_equal(hw_vfio_ops.cfg_read(&f->d, 4, 2, &cmd), 0);
    assert_int_equal(cmd, 0x0006);
    f->d.info.bar[1].kind = HW_BAR_IO;
}

static void ops_not_vfio(void **state)
{
    struct fdev *f = *state;
    assert_int_equal(hw_vfio_ops.irq_mode(&f->d, HW_IRQ_MSI), -EINVAL); /* no eventfd */
    f->d.irq_fd = eventfd(0, EFD_CLOEXEC);
    assert_true(f->d.irq_fd >= 0);
    assert_int_equal(hw_vfio_ops.irq_mode(&f->d, (enum hw_irq_mode)7), -EINVAL);
    assert_int_equal(hw_vfio_ops.irq_mode(&f->d, HW_IRQ_MSIX), -ENOTTY);

    f->d.bar_map[2] = (volatile void *)f; /* must be cleared, never unmapped */
    assert_int_equal(hw_vfio_attach(&f->d), -ENOTTY);
    for (unsigned i = 0; i < HW_MAX_BARS; i++)
        assert_null(f->d.bar_map[i]);
    close(f->d.irq_fd);
    f->d.irq_fd = -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bdf_valid),
        cmocka_unit_test(bdf_invalid),
        cmocka_unit_test_setup_teardown(sysfs_missing_device, tree_setup, tree_teardown),
        cmocka_unit_test_setup_teardown(sysfs_driver, tree_setup, tree_teardown),
        cmocka_unit_test_setup_teardown(sysfs_groups, tree_setup, tree_teardown),
        cmocka_unit_test_setup_teardown(sysfs_case, tree_setup, tree_teardown),
        cmocka_unit_test(open_absent),
        cmocka_unit_test(config_decode),
        cmocka_unit_test(config_refused),
        cmocka_unit_test_setup_teardown(ops_config, fdev_setup, fdev_teardown),
        cmocka_unit_test_setup_teardown(ops_bar_file, fdev_setup, fdev_teardown),
        cmocka_unit_test_setup_teardown(ops_bar_mapped, fdev_setup, fdev_teardown),
        cmocka_unit_test_setup_teardown(ops_enable_reset, fdev_setup, fdev_teardown),
        cmocka_unit_test_setup_teardown(ops_not_vfio, fdev_setup, fdev_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
