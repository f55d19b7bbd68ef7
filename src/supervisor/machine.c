/*
 * Machines: where driver components' devices come from.  For the qemu
 * backend the supervisor starts a guest-less QEMU, assigns every listed PCI
 * device its BARs (no firmware does), and then is the only path to the
 * machine: each driver's hardware layer sends register accesses here over
 * its own socket (src/hw/qemu/wire.h), they are checked against that
 * driver's one device and carried out over qtest; interrupt lines come back
 * from qtest and go to the driver whose device owns the line.  For the
 * vfio backend the supervisor opens the device, maps the DMA regions into
 * its IOMMU container and hands the descriptor over.
 *
 * A machine that dies (QEMU killed, crashed, exited) is a fault: reported,
 * then the system stops or the machine restarts with its drivers, per the
 * machine's policy.  docs/hw.md describes the model.
 */
#include "supervisor/machine.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"
#include "hw/backend.h"
#include "hw/qemu/wire.h"

#define PCI_CFG_ADDR  0xcf8
#define PCI_CFG_DATA  0xcfc
#define PCI_COMMAND   0x04
#define CMD_IO        0x0001u
#define CMD_MEM       0x0002u
#define CMD_MASTER    0x0004u
#define CMD_INTX_OFF  0x0400u
#define CMD_DRIVER    (CMD_IO | CMD_MEM | CMD_MASTER | CMD_INTX_OFF) /* bits a driver may set */
#define MEM_WINDOW_LO 0xc0000000ull /* above any RAM we allow (2 GiB), below the IOAPIC */
#define MEM_WINDOW_HI 0xfec00000ull
#define IO_WINDOW_LO  0xc000u
#define IO_WINDOW_HI  0x10000u
#define SERVE_BATCH   64
#define RESTARTS_FAST 5 /* machine restarts within a minute before we give up */

static struct sup *the_sup; /* refusal logs name the driver component */

static void mlog(const struct machine_rt *m, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void mlog(const struct machine_rt *m, const char *fmt, ...)
{
    char buf[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    sup_log("machine '%s': %s", m->def->name, buf);
}

/* ---- PCI config space over qtest ------------------------------------- */

static uint32_t cfg_sel(int slot, unsigned off)
{
    return 0x80000000u | (uint32_t)slot << 11 | (off & 0xfcu);
}

static int cfg_read(struct machine_rt *m, int slot, unsigned off, unsigned width, uint32_t *v)
{
    int err = qtest_out(&m->qm.qt, 4, PCI_CFG_ADDR, cfg_sel(slot, off));
    return err ? err : qtest_in(&m->qm.qt, width, (uint16_t)(PCI_CFG_DATA + (off & 3)), v);
}

static int cfg_write(struct machine_rt *m, int slot, unsigned off, unsigned width, uint32_t v)
{
    int err = qtest_out(&m->qm.qt, 4, PCI_CFG_ADDR, cfg_sel(slot, off));
    return err ? err : qtest_out(&m->qm.qt, width, (uint16_t)(PCI_CFG_DATA + (off & 3)), v);
}

/* ---- enumeration and BAR assignment ---------------------------------- */

static uint64_t align_up(uint64_t x, uint64_t a)
{
    return (x + a - 1) & ~(a - 1);
}

/* Sizes each BAR by the all-ones probe and gives it the next naturally
 * aligned address of its window.  Deterministic: the same description
 * gives the same addresses on every run and after every machine restart. */
static int assign_bars(struct machine_rt *m, struct mdev_rt *d, uint64_t *mem, uint32_t *io)
{
    const struct sdf_machine_device *def = d->def;
    int slot = def->slot;
    struct hw_pci_info *info = &d->info;
    uint32_t id, cls, sub, misc;
    int err;
    if ((err = cfg_read(m, slot, 0x00, 4, &id)))
        return err;
    if (id == 0xffffffffu || (id & 0xffff) == 0xffff) {
        mlog(m, "device '%s' (%s) did not appear at 00:%02x.0; expected QEMU to place it there",
             def->name, def->model, slot);
        return -ENODEV;
    }
    if ((err = cfg_read(m, slot, 0x08, 4, &cls)) || (err = cfg_read(m, slot, 0x2c, 4, &sub)) ||
        (err = cfg_read(m, slot, 0x3c, 4, &misc)))
        return err;
    memset(info, 0, sizeof(*info));
    info->vendor = (uint16_t)id;
    info->device = (uint16_t)(id >> 16);
    info->revision = (uint8_t)cls;
    info->class_code = cls >> 8;
    info->subsys_vendor = (uint16_t)sub;
    info->subsys = (uint16_t)(sub >> 16);
    info->slot = (uint8_t)slot;
    info->irq_pin = (uint8_t)(misc >> 8);
    if (info->irq_pin >= 1 && info->irq_pin <= 4)
        info->gsi = 20u + (unsigned)(slot + info->irq_pin - 1) % 4u;
    uint32_t hdr;
    if ((err = cfg_read(m, slot, 0x0c, 4, &hdr)))
        return err;
    if ((hdr >> 16 & 0x7f) != 0)
        return 0; /* a bridge (root port): its windows are not ours to size */
    if ((err = cfg_write(m, slot, PCI_COMMAND, 2, 0)))
        return err;
    uint16_t cmd = 0;
    for (unsigned i = 0; i < HW_MAX_BARS; i++) {
        unsigned off = 0x10 + 4 * i;
        uint32_t orig, probe, hi = 0;
        if ((err = cfg_read(m, slot, off, 4, &orig)) ||
            (err = cfg_write(m, slot, off, 4, 0xffffffffu)) ||
            (err = cfg_read(m, slot, off, 4, &probe)) || (err = cfg_write(m, slot, off, 4, orig)))
            return err;
        if (!probe)
            continue;
        struct hw_bar *b = &info->bar[i];
        if (orig & 1) {
            uint32_t size = (~(probe & ~3u) + 1) & 0xffffu;
            if (!size)
                continue;
            uint32_t at = (uint32_t)align_up(*io, size);
            if (at + size > IO_WINDOW_HI) {
                mlog(m, "device '%s': no I/O space left for BAR%u (%u bytes)", def->name, i, size);
                return -ENOSPC;
            }
            *b = (struct hw_bar){.addr = at, .size = size, .kind = HW_BAR_IO};
            *io = at + size;
            if ((err = cfg_write(m, slot, off, 4, at)))
                return err;
            cmd |= CMD_IO;
            continue;
        }
        bool is64 = (orig >> 1 & 3) == 2;
        if (is64 && i + 1 < HW_MAX_BARS) {
            uint32_t orig_hi;
            if ((err = cfg_read(m, slot, off + 4, 4, &orig_hi)) ||
                (err = cfg_write(m, slot, off + 4, 4, 0xffffffffu)) ||
                (err = cfg_read(m, slot, off + 4, 4, &hi)) ||
                (err = cfg_write(m, slot, off + 4, 4, orig_hi)))
                return err;
        }
        uint64_t mask = (uint64_t)hi << 32 | (probe & ~0xfu);
        if (!is64)
            mask |= 0xffffffff00000000ull;
        uint64_t size = ~mask + 1;
        if (!size || (size & (size - 1))) {
            mlog(m,
                 "device '%s': BAR%u reports a size that is not a power of two (%#" PRIx64
                 "); left unassigned",
                 def->name, i, size);
            if (is64)
                i++; /* its upper half is not a BAR of its own */
            continue;
        }
        uint64_t at = align_up(*mem, size < 4096 ? 4096 : size);
        /* A BAR larger than the window (a device may claim up to 2^63)
         * would wrap the sum: compare without adding. */
        if (size > MEM_WINDOW_HI - MEM_WINDOW_LO || at < *mem || at > MEM_WINDOW_HI - size) {
            mlog(m, "device '%s': no memory space left for BAR%u (%#" PRIx64 " bytes)", def->name,
                 i, size);
            return -ENOSPC;
        }
        *b = (struct hw_bar){.addr = at,
                             .size = size,
                             .kind = is64 ? HW_BAR_MEM64 : HW_BAR_MEM32,
                             .prefetchable = (orig >> 3) & 1};
        *mem = at + (size < 4096 ? 4096 : size);
        if ((err = cfg_write(m, slot, off, 4, (uint32_t)at)))
            return err;
        if (is64) {
            if ((err = cfg_write(m, slot, off + 4, 4, (uint32_t)(at >> 32))))
                return err;
            i++; /* the upper half is not a BAR of its own */
        }
        cmd |= CMD_MEM;
    }
    d->decode = cmd;
    /* Decoding on, bus mastering off: a device does no DMA until its driver
     * says it is ready (hw_enable). */
    if ((err = cfg_write(m, slot, 0x3c, 1, info->gsi)) ||
        (err = cfg_write(m, slot, PCI_COMMAND, 2, cmd)))
        return err;
    return 0;
}

static int restore_bars(struct machine_rt *m, struct mdev_rt *d)
{
    int slot = d->def->slot, err;
    if ((err = cfg_write(m, slot, PCI_COMMAND, 2, 0)))
        return err;
    for (unsigned i = 0; i < HW_MAX_BARS; i++) {
        const struct hw_bar *b = &d->info.bar[i];
        if (b->kind == HW_BAR_NONE)
            continue;
        if ((err = cfg_write(m, slot, 0x10 + 4 * i, 4, (uint32_t)b->addr)))
            return err;
        if (b->kind == HW_BAR_MEM64 &&
            (err = cfg_write(m, slot, 0x14 + 4 * i, 4, (uint32_t)(b->addr >> 32))))
            return err;
    }
    return cfg_write(m, slot, PCI_COMMAND, 2, d->decode);
}

/* ---- interrupts -------------------------------------------------------- */

static void on_irq(void *ctx, unsigned line, bool raised)
{
    struct machine_rt *m = ctx;
    if (line >= sizeof(m->level))
        return;
    m->level[line] = raised;
    if (!raised)
        return;
    /* Each rising edge is one interrupt for the driver of the device on
     * that line (validation keeps different drivers off shared lines). */
    for (size_t k = 0; k < m->def->ndevices; k++) {
        struct mdev_rt *d = &m->devs[k];
        if (d->info.gsi == line && d->info.irq_pin && d->sock >= 0) {
            uint64_t one = 1;
            if (write(d->irq_efd, &one, sizeof(one)) == sizeof(one))
                d->irqs++;
        }
    }
}

/* ---- starting and stopping QEMU --------------------------------------- */

/* QEMU splits -device on ','; a ',,' is a literal comma. */
static char *qemu_escape(const char *v)
{
    size_t n = 0;
    for (const char *p = v; *p; p++)
        n += *p == ',' ? 2 : 1;
    char *out = xmalloc(n + 1), *o = out;
    for (const char *p = v; *p; p++) {
        *o++ = *p;
        if (*p == ',')
            *o++ = ',';
    }
    *o = 0;
    return out;
}

struct argv_buf {
    /* -netdev, -drive, -device per device; -object, -device per region */
    char *v[6 * SDF_MAX_MACHINE_DEVICES + 4 * SDF_MAX_MACHINE_REGIONS + 1];
    size_t n;
};

static void arg_add(struct argv_buf *a, char *s)
{
    if (a->n + 1 >= sizeof(a->v) / sizeof(a->v[0]))
        abort(); /* sized for the most validation allows */
    a->v[a->n++] = s;
}

static char *device_arg(const struct sdf_machine_device *d)
{
    char *s = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&s, &len);
    if (!f)
        abort();
    fprintf(f, "%s,id=%s", d->model, d->name);
    if (d->slot >= 0)
        fprintf(f, ",addr=%02x.%x", d->slot, d->func);
    if (d->bus)
        fprintf(f, ",bus=%s", d->bus);
    if (d->wire != SDF_WIRE_NONE)
        fprintf(f, ",netdev=wire.%s", d->name);
    if (d->drive_file)
        fprintf(f, ",drive=drive.%s", d->name);
    for (size_t i = 0; i < d->nprops; i++) {
        char *v = qemu_escape(d->props[i].value);
        fprintf(f, ",%s=%s", d->props[i].key, v);
        free(v);
    }
    fclose(f);
    return s;
}

static int machine_boot(struct sup *s, struct machine_rt *m)
{
    const struct sdf_machine *def = m->def;
    struct argv_buf a = {0};
    int keep[SDF_MAX_MACHINE_DEVICES + SDF_MAX_MACHINE_REGIONS];
    size_t nkeep = 0;
    /* Each device-visible region is a memory module of its own at its
     * device address, backed by the region's memfd: the device reaches it
     * by DMA, and a component that maps one region holds no handle on any
     * other memory of the machine. */
    unsigned slots = 0;
    uint64_t dimm_bytes = 0;
    for (size_t r = 0; r < s->sys->nregions; r++) {
        const struct sdf_region *reg = &s->sys->regions[r];
        if (reg->mach != (int)m->idx)
            continue;
        char *obj, *dimm;
        if (asprintf(&obj,
                     "memory-backend-file,id=dma%u,size=%" PRIu64 ",mem-path=/dev/fd/%d,share=on",
                     slots, reg->size, s->regions[r].fd) < 0 ||
            asprintf(&dimm, "pc-dimm,id=dimm%u,memdev=dma%u,addr=%#" PRIx64, slots, slots,
                     reg->dev_addr) < 0)
            abort();
        arg_add(&a, xstrdup("-object"));
        arg_add(&a, obj);
        arg_add(&a, xstrdup("-device"));
        arg_add(&a, dimm);
        keep[nkeep++] = s->regions[r].fd;
        dimm_bytes += reg->size;
        slots++;
    }
    for (size_t k = 0; k < def->ndevices; k++) {
        const struct sdf_machine_device *d = &def->devices[k];
        if (d->wire == SDF_WIRE_TAP) {
            arg_add(&a, xstrdup("-netdev"));
            char *nd;
            if (asprintf(&nd, "tap,id=wire.%s,fd=%d", d->name, m->devs[k].wire_fd) < 0)
                abort();
            arg_add(&a, nd);
            keep[nkeep++] = m->devs[k].wire_fd;
        } else if (d->wire == SDF_WIRE_USER) {
            arg_add(&a, xstrdup("-netdev"));
            char *nd;
            if (asprintf(&nd, "user,id=wire.%s", d->name) < 0)
                abort();
            arg_add(&a, nd);
        }
    }
    for (size_t k = 0; k < def->ndevices; k++) {
        const struct sdf_machine_device *d = &def->devices[k];
        if (!d->drive_file)
            continue;
        char *file = qemu_escape(d->drive_file), *drive;
        if (asprintf(&drive, "if=none,id=drive.%s,file=%s,format=%s%s", d->name, file,
                     d->drive_format ? d->drive_format : "raw",
                     d->drive_readonly ? ",readonly=on" : "") < 0)
            abort();
        free(file);
        arg_add(&a, xstrdup("-drive"));
        arg_add(&a, drive);
    }
    for (size_t k = 0; k < def->ndevices; k++) {
        arg_add(&a, xstrdup("-device"));
        arg_add(&a, device_arg(&def->devices[k]));
    }
    a.v[a.n] = NULL;
    struct qemu_machine_opts o = {
        .ram_size = def->memory,
        .ram_fd = m->ram_fd,
        .dimm_slots = slots,
        .maxmem = def->memory + ((dimm_bytes + (1u << 20) - 1) & ~(uint64_t)((1u << 20) - 1)),
        .extra = (const char *const *)a.v,
        .keep_fds = keep,
        .nkeep = nkeep,
        .err_fd = -1,
        .on_irq = on_irq,
        .irq_ctx = m};
    int err = qemu_machine_start(&m->qm, &o);
    for (size_t i = 0; i < a.n; i++)
        free(a.v[i]);
    if (err) {
        mlog(m, "QEMU did not start (%s); its own message is above", strerror(-err));
        return err;
    }
    memset(m->level, 0, sizeof(m->level));
    uint64_t mem = MEM_WINDOW_LO;
    uint32_t io = IO_WINDOW_LO;
    for (size_t k = 0; k < def->ndevices && !err; k++)
        if (def->devices[k].slot >= 0)
            err = assign_bars(m, &m->devs[k], &mem, &io);
    /* Validation assumed INTA; a device with another pin may still land
     * on a line another component's device uses, where one could hide the
     * other's interrupts.  Now that the pins are known, refuse that. */
    for (size_t k = 0; k < def->ndevices && !err; k++)
        for (size_t j = 0; j < k && !err; j++) {
            const struct mdev_rt *x = &m->devs[k], *y = &m->devs[j];
            if (x->comp >= 0 && y->comp >= 0 && x->comp != y->comp && x->info.irq_pin &&
                y->info.irq_pin && x->info.gsi == y->info.gsi) {
                mlog(m,
                     "devices '%s' (slot %02x, pin INT%c) and '%s' (slot %02x, pin INT%c) of "
                     "different drivers share interrupt line %u; expected slots whose lines "
                     "differ",
                     x->def->name, x->info.slot, 'A' + x->info.irq_pin - 1, y->def->name,
                     y->info.slot, 'A' + y->info.irq_pin - 1, x->info.gsi);
                err = -EBUSY;
            }
        }
    if (!err)
        err = qtest_intercept_irqs(&m->qm.qt);
    if (err) {
        mlog(m, "setting up the devices failed (%s)", strerror(err < 0 ? -err : err));
        qemu_machine_stop(&m->qm);
        return err < 0 ? err : -EIO;
    }
    m->up = true;
    sup_epoll_add(s, m->qm.qt.fd, EV_QTEST | (uint32_t)m->idx);
    if (m->qm.qmp.fd >= 0)
        sup_epoll_add(s, m->qm.qmp.fd, EV_QMP | (uint32_t)m->idx);
    mlog(m, "QEMU %d.%d.%d up (pid %d, %" PRIu64 " MiB), %zu devices", m->qm.qmp.version.major,
         m->qm.qmp.version.minor, m->qm.qmp.version.micro, (int)m->qm.pid, def->memory >> 20,
         def->ndevices);
    return 0;
}

static void machine_halt(struct sup *s, struct machine_rt *m)
{
    if (m->qm.qt.fd >= 0)
        epoll_ctl(s->epfd, EPOLL_CTL_DEL, m->qm.qt.fd, NULL);
    if (m->qm.qmp.fd >= 0)
        epoll_ctl(s->epfd, EPOLL_CTL_DEL, m->qm.qmp.fd, NULL);
    m->up = false;
    qemu_machine_stop(&m->qm);
}

/* Every vfio device of the machine reaches every device-visible region of
 * it, at the region's device address. */
static int vfio_map_regions(struct sup *s, struct machine_rt *m, struct mdev_rt *d)
{
    for (size_t r = 0; r < s->sys->nregions; r++) {
        const struct sdf_region *reg = &s->sys->regions[r];
        if (reg->mach != (int)m->idx)
            continue;
        void *p = mmap(NULL, reg->size, PROT_READ | PROT_WRITE, MAP_SHARED, s->regions[r].fd, 0);
        if (p == MAP_FAILED)
            return -errno;
        int err = vfio_host_map_dma(&d->vfio, p, reg->dev_addr, reg->size);
        munmap(p, reg->size); /* the IOMMU keeps the pages pinned */
        if (err) {
            mlog(m, "device '%s': cannot map region '%s' for DMA at %#" PRIx64 ": %s", d->def->name,
                 reg->name, reg->dev_addr, strerror(-err));
            return err;
        }
    }
    return 0;
}

int sup_create_machines(struct sup *s)
{
    const struct sdf_system *sys = s->sys;
    the_sup = s;
    s->machines = xcalloc(sys->nmachines ? sys->nmachines : 1, sizeof(*s->machines));
    for (size_t i = 0; i < sys->nmachines; i++) {
        struct machine_rt *m = &s->machines[i];
        m->def = &sys->machines[i];
        m->idx = i;
        m->ram_fd = -1;
        m->qm.pid = -1;
        m->qm.qt.fd = m->qm.qmp.fd = -1;
        m->devs = xcalloc(m->def->ndevices, sizeof(*m->devs));
        for (size_t k = 0; k < m->def->ndevices; k++) {
            struct mdev_rt *d = &m->devs[k];
            d->def = &m->def->devices[k];
            d->comp = -1;
            d->sock = d->wire_fd = -1;
            d->irq_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
            if (d->irq_efd < 0)
                return -errno;
        }
        /* Which component drives which device. */
        for (size_t c = 0; c < sys->ncomps; c++)
            for (size_t g = 0; g < sys->comps[c].ndevices; g++) {
                const struct sdf_device *gr = &sys->comps[c].devices[g];
                if (gr->kind == SDF_DEV_PCI && gr->mach == (int)i && gr->mdev >= 0)
                    m->devs[gr->mdev].comp = (int)c;
            }
    }
    return 0;
}

/* The RAM of a qemu machine: ours, so it outlives a QEMU that dies. */
static int machine_ram(struct sup *s, size_t mi)
{
    struct machine_rt *m = &s->machines[mi];
    if (m->def->backend != SDF_BACKEND_QEMU)
        return -1;
    if (m->ram_fd < 0) {
        char name[80];
        snprintf(name, sizeof(name), "devmux:%s.ram", m->def->name);
        m->ram_fd = memfd_create(name, MFD_CLOEXEC);
        if (m->ram_fd < 0 || ftruncate(m->ram_fd, (off_t)m->def->memory)) {
            sup_log("cannot create the RAM of machine '%s': %s", m->def->name, strerror(errno));
            return -1;
        }
    }
    return m->ram_fd;
}

/* After regions exist (device-visible ones live in the machine's RAM for
 * qemu, in their own memfds mapped into the IOMMU for vfio). */
int sup_start_machines(struct sup *s)
{
    for (size_t i = 0; i < s->sys->nmachines; i++) {
        struct machine_rt *m = &s->machines[i];
        if (m->def->backend == SDF_BACKEND_VFIO) {
            for (size_t k = 0; k < m->def->ndevices; k++) {
                struct mdev_rt *d = &m->devs[k];
                char err[512];
                int rc = vfio_host_open(d->def->host, &d->vfio, err, sizeof(err));
                if (rc) {
                    mlog(m, "device '%s' (%s): %s", d->def->name, d->def->host, err);
                    return rc;
                }
                d->vfio_open = true;
                d->info = d->vfio.info;
                if ((rc = vfio_map_regions(s, m, d)))
                    return rc;
            }
            m->up = true;
            continue;
        }
        for (size_t k = 0; k < m->def->ndevices; k++) {
            const struct sdf_machine_device *d = &m->def->devices[k];
            if (d->wire != SDF_WIRE_TAP)
                continue;
            struct sdf_device tap = {
                .name = d->name, .ifname = d->wire_ifname, .netns = d->wire_netns};
            char owner[SDF_NAME_MAX + 16];
            snprintf(owner, sizeof(owner), "machine '%s'", m->def->name);
            int fd = sup_open_tap(owner, &tap);
            if (fd < 0)
                return fd;
            m->devs[k].wire_fd = fd;
        }
        if (machine_ram(s, i) < 0)
            return -1;
        int err = machine_boot(s, m);
        if (err)
            return err;
    }
    return 0;
}

void sup_free_machines(struct sup *s)
{
    for (size_t i = 0; s->machines && i < s->sys->nmachines; i++) {
        struct machine_rt *m = &s->machines[i];
        if (m->def->backend == SDF_BACKEND_QEMU)
            machine_halt(s, m);
        for (size_t k = 0; m->devs && k < m->def->ndevices; k++) {
            struct mdev_rt *d = &m->devs[k];
            if (d->sock >= 0)
                close(d->sock);
            if (d->irq_efd >= 0)
                close(d->irq_efd);
            if (d->wire_fd >= 0)
                close(d->wire_fd);
            if (d->vfio_open)
                vfio_host_close(&d->vfio);
        }
        free(m->devs);
        if (m->ram_fd >= 0)
            close(m->ram_fd);
    }
    free(s->machines);
    s->machines = NULL;
}

/* ---- faults -------------------------------------------------------------- */

static void describe_status(int status, char *out, size_t n);

static void machine_fault(struct sup *s, struct machine_rt *m, const char *why)
{
    if (!m->up)
        return;
    /* A closed socket is usually QEMU dying: its exit status, if it comes
     * soon, says why better than the socket can. */
    char cause[256];
    snprintf(cause, sizeof(cause), "%s", why);
    for (int i = 0; i < 50 && m->qm.pid > 0; i++) {
        int status;
        pid_t r = waitpid(m->qm.pid, &status, WNOHANG);
        if (r == m->qm.pid) {
            m->qm.pid = -1;
            char st[128];
            describe_status(status, st, sizeof(st));
            snprintf(cause, sizeof(cause), "%s (%s)", st, why);
            break;
        }
        if (r < 0)
            break;
        usleep(10000);
    }
    why = cause;
    machine_halt(s, m);
    for (size_t k = 0; k < m->def->ndevices; k++)
        if (m->devs[k].sock >= 0) {
            close(m->devs[k].sock);
            m->devs[k].sock = -1;
        }
    if (s->stopping)
        return;
    char msg[400];
    snprintf(msg, sizeof(msg), "machine '%s' failed: %s", m->def->name, why);
    sup_log("%s", msg);
    uint64_t now = now_ns();
    if (now - m->window_ns > 60ull * 1000000000ull) {
        m->window_ns = now;
        m->fast_restarts = 0;
    }
    if (m->def->fault == SDF_FAULT_SHUTDOWN || ++m->fast_restarts > RESTARTS_FAST) {
        if (m->def->fault != SDF_FAULT_SHUTDOWN)
            mlog(m, "failed %d times within a minute; giving up", RESTARTS_FAST + 1);
        else
            mlog(m, "fault policy: shutdown");
        sup_shutdown(s, 1, msg);
        return;
    }
    mlog(m, "fault policy: restart the machine and its drivers");
    m->restarts++;
    if (machine_boot(s, m)) {
        sup_shutdown(s, 1, "a machine could not be restarted");
        return;
    }
    for (size_t k = 0; k < m->def->ndevices; k++) {
        /* A driver its own policy halted stays halted. */
        struct comp *c = m->devs[k].comp >= 0 ? &s->comps[m->devs[k].comp] : NULL;
        if (c && c->state != COMP_HALTED && c->state != COMP_STOPPED)
            sup_restart(s, c, "its machine restarted");
    }
}

static void describe_status(int status, char *out, size_t n)
{
    if (WIFSIGNALED(status))
        snprintf(out, n, "QEMU was killed by signal %d (%s)", WTERMSIG(status),
                 sigabbrev_np(WTERMSIG(status)) ? sigabbrev_np(WTERMSIG(status)) : "?");
    else
        snprintf(out, n, "QEMU exited with status %d", WEXITSTATUS(status));
}

bool sup_machine_reaped(struct sup *s, pid_t pid, int status)
{
    for (size_t i = 0; s->machines && i < s->sys->nmachines; i++) {
        struct machine_rt *m = &s->machines[i];
        if (m->qm.pid != pid)
            continue;
        m->qm.pid = -1; /* reaped: nothing to kill or wait for */
        char why[128];
        describe_status(status, why, sizeof(why));
        machine_fault(s, m, why);
        return true;
    }
    return false;
}

/* ---- the drivers' side ---------------------------------------------------- */

int sup_machine_grant(struct sup *s, struct comp *c, size_t k, struct dmx_boot_device *bd, int *fd,
                      int *irq_fd)
{
    const struct sdf_device *g = &c->def->devices[k];
    *fd = *irq_fd = -1;
    if (g->mach < 0 || g->mdev < 0)
        return -EINVAL;
    struct machine_rt *m = &s->machines[g->mach];
    struct mdev_rt *d = &m->devs[g->mdev];
    bd->backend = m->def->backend;
    bd->pci = d->info;
    if (!m->up) {
        mlog(m, "device '%s' for component '%s': the machine is down", d->def->name, c->def->name);
        return -EIO;
    }
    /* A new incarnation starts with no interrupt pending from the last,
     * unless its device holds its line up right now. */
    uint64_t x;
    while (read(d->irq_efd, &x, sizeof(x)) == sizeof(x))
        ;
    if (d->info.gsi < sizeof(m->level) && m->level[d->info.gsi]) {
        x = 1;
        (void)!write(d->irq_efd, &x, sizeof(x));
    }
    *irq_fd = d->irq_efd;
    if (m->def->backend == SDF_BACKEND_VFIO) {
        *fd = d->vfio.device;
        return 0;
    }
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
        return -errno;
    if (d->sock >= 0)
        close(d->sock);
    d->sock = sv[0];
    fcntl(d->sock, F_SETFL, O_NONBLOCK);
    sup_epoll_add(s, d->sock, EV_HW | (uint32_t)(g->mach << 8 | g->mdev));
    *fd = sv[1]; /* the caller closes it once the child has it */
    return 1;
}

/* The driver is gone: its device must stop writing memory that others
 * will reuse, before anything restarts. */
void sup_machine_comp_exited(struct sup *s, struct comp *c)
{
    for (size_t i = 0; s->machines && i < s->sys->nmachines; i++) {
        struct machine_rt *m = &s->machines[i];
        for (size_t k = 0; k < m->def->ndevices; k++) {
            struct mdev_rt *d = &m->devs[k];
            if (d->comp != c->idx)
                continue;
            if (d->sock >= 0) {
                close(d->sock);
                d->sock = -1;
            }
            if (!m->up)
                continue;
            if (m->def->backend == SDF_BACKEND_VFIO) {
                vfio_host_quiesce(&d->vfio);
            } else if (d->def->slot >= 0) {
                /* If QEMU is gone this fails; its exit or the qtest EOF
                 * reports the machine fault from the event loop, not from
                 * inside the handling of this component's exit. */
                (void)cfg_write(m, d->def->slot, PCI_COMMAND, 2, d->decode);
            }
        }
    }
}

/* Who owns a bus address, for a refusal that says what was hit. */
static const char *owner_of(const struct machine_rt *m, uint64_t addr, bool io)
{
    for (size_t k = 0; k < m->def->ndevices; k++)
        for (unsigned i = 0; i < HW_MAX_BARS; i++) {
            const struct hw_bar *b = &m->devs[k].info.bar[i];
            if (b->kind != HW_BAR_NONE && (b->kind == HW_BAR_IO) == io && addr >= b->addr &&
                addr - b->addr < b->size)
                return m->devs[k].def->name;
        }
    return NULL;
}

static int refuse(struct machine_rt *m, struct mdev_rt *d, const char *what, uint64_t addr,
                  unsigned width, bool io)
{
    d->refused++;
    if (d->refused <= 20 || !(d->refused & (d->refused - 1))) {
        const char *owner = owner_of(m, addr, io);
        const char *cname = d->comp >= 0 ? the_sup->sys->comps[d->comp].name : "?";
        char hit[96] = "";
        if (owner && strcmp(owner, d->def->name))
            snprintf(hit, sizeof(hit), "; it belongs to device '%s'", owner);
        mlog(m,
             "refused %s of %u bytes at %#" PRIx64 " from component '%s': outside device '%s'%s "
             "(refused %" PRIu64 " so far)",
             what, width, addr, cname, d->def->name, hit, d->refused);
    }
    return -EPERM;
}

static bool in_bars(const struct mdev_rt *d, uint64_t addr, unsigned width, bool io)
{
    for (unsigned i = 0; i < HW_MAX_BARS; i++) {
        const struct hw_bar *b = &d->info.bar[i];
        if (b->kind != HW_BAR_NONE && (b->kind == HW_BAR_IO) == io && addr >= b->addr &&
            addr - b->addr < b->size && width <= b->size - (addr - b->addr))
            return true;
    }
    return false;
}

static uint64_t width_mask(unsigned w)
{
    return w >= 8 ? ~0ull : (1ull << (8 * w)) - 1;
}

/* Carries out one checked request.  Returns -EPIPE if the machine died. */
static int perform(struct machine_rt *m, struct mdev_rt *d, const struct hw_wire_req *q,
                   struct hw_wire_rep *r)
{
    int slot = d->def->slot;
    unsigned w = q->width;
    bool wok = w == 1 || w == 2 || w == 4 || w == 8;
    uint32_t v32 = 0;
    switch (q->op) {
    case HW_OP_CFG_READ:
    case HW_OP_CFG_WRITE: {
        bool write = q->op == HW_OP_CFG_WRITE;
        if (!wok || w == 8 || q->addr % w || q->addr > 256 - w || slot < 0)
            return refuse(m, d, write ? "config write" : "config read", q->addr, w, false);
        unsigned off = (unsigned)q->addr;
        if (!write) {
            r->err = cfg_read(m, slot, off, w, &v32);
            r->value = v32;
            return r->err == -EPIPE ? -EPIPE : 0;
        }
        if (hw_cfg_protected(off, w))
            return refuse(m, d, "config write to a BAR or ROM register", q->addr, w, false);
        uint32_t val = (uint32_t)(q->value & width_mask(w));
        /* Of the command register (bytes 4 and 5) only decode, bus
         * mastering and INTx masking are the driver's: the write goes in
         * as a read-modify-write of the whole register. */
        if (off < PCI_COMMAND + 2 && off + w > PCI_COMMAND) {
            if (off != PCI_COMMAND || w != 2)
                return refuse(m, d, "config write not of the whole command register", q->addr, w,
                              false);
            val = (d->decode & ~CMD_DRIVER) | (val & CMD_DRIVER);
        }
        int err = cfg_write(m, slot, off, w, val);
        return err == -EPIPE ? -EPIPE : 0;
    }
    case HW_OP_MEM_READ:
    case HW_OP_MEM_WRITE:
    case HW_OP_IO_READ:
    case HW_OP_IO_WRITE: {
        bool io = q->op == HW_OP_IO_READ || q->op == HW_OP_IO_WRITE;
        bool write = q->op == HW_OP_MEM_WRITE || q->op == HW_OP_IO_WRITE;
        const char *what =
            io ? (write ? "port write" : "port read") : (write ? "MMIO write" : "MMIO read");
        if (!wok || (io && w == 8) || q->addr % w || !in_bars(d, q->addr, w, io))
            return refuse(m, d, what, q->addr, w, io);
        int err;
        uint64_t v = 0;
        if (io) {
            err = write ? qtest_out(&m->qm.qt, w, (uint16_t)q->addr,
                                    (uint32_t)(q->value & width_mask(w)))
                        : qtest_in(&m->qm.qt, w, (uint16_t)q->addr, &v32);
            v = v32;
        } else {
            err = write ? qtest_write(&m->qm.qt, w, q->addr, q->value & width_mask(w))
                        : qtest_read(&m->qm.qt, w, q->addr, &v);
        }
        r->err = err;
        r->value = v;
        return err == -EPIPE ? -EPIPE : 0;
    }
    case HW_OP_ENABLE:
        if (slot < 0)
            return refuse(m, d, "enable", 0, 0, false);
        r->err = cfg_write(m, slot, PCI_COMMAND, 2, d->decode | CMD_MASTER);
        return r->err == -EPIPE ? -EPIPE : 0;
    case HW_OP_RESET:
        if (slot < 0)
            return refuse(m, d, "reset", 0, 0, false);
        d->resets++;
        r->err = restore_bars(m, d);
        return r->err == -EPIPE ? -EPIPE : 0;
    default:
        return refuse(m, d, "unknown request", q->op, 0, false);
    }
}

static void serve(struct sup *s, struct machine_rt *m, struct mdev_rt *d)
{
    for (int i = 0; i < SERVE_BATCH && d->sock >= 0; i++) {
        struct hw_wire_req q = {0}; /* a short message leaves the rest zero */
        ssize_t n = recv(d->sock, &q, sizeof(q), MSG_DONTWAIT | MSG_TRUNC);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n <= 0) {
            /* The driver closed its end: it is exiting. */
            epoll_ctl(s->epfd, EPOLL_CTL_DEL, d->sock, NULL);
            close(d->sock);
            d->sock = -1;
            return;
        }
        bool reads = q.op == HW_OP_CFG_READ || q.op == HW_OP_MEM_READ || q.op == HW_OP_IO_READ ||
                     q.op == HW_OP_ENABLE || q.op == HW_OP_RESET;
        struct hw_wire_rep r = {.err = 0, .op = q.op};
        int err;
        if (n != (ssize_t)sizeof(q)) {
            reads = false; /* we cannot know what it waits for */
            err = refuse(m, d, "malformed request", (uint64_t)n, 0, false);
        } else if (!m->up) {
            r.err = -EIO;
            err = 0;
        } else {
            if (q.op == HW_OP_CFG_WRITE || q.op == HW_OP_MEM_WRITE || q.op == HW_OP_IO_WRITE)
                d->writes++;
            else
                d->reads++;
            err = perform(m, d, &q, &r);
        }
        if (err == -EPIPE) {
            machine_fault(s, m, "the qtest connection broke (QEMU is gone)");
            return;
        }
        if (err)
            r.err = err;
        if (reads)
            send(d->sock, &r, sizeof(r), MSG_NOSIGNAL | MSG_DONTWAIT);
    }
}

void sup_machine_event(struct sup *s, uint32_t kind, uint32_t idx)
{
    if (kind == EV_HW) {
        size_t mi = idx >> 8, k = idx & 0xff;
        if (mi < s->sys->nmachines && k < s->machines[mi].def->ndevices)
            serve(s, &s->machines[mi], &s->machines[mi].devs[k]);
        return;
    }
    if (idx >= s->sys->nmachines)
        return;
    struct machine_rt *m = &s->machines[idx];
    if (!m->up)
        return;
    if (kind == EV_QTEST) {
        int err = qtest_poll(&m->qm.qt);
        if (err)
            machine_fault(s, m, "the qtest connection closed (QEMU is gone)");
    } else if (kind == EV_QMP) {
        int err = qmp_poll_events(&m->qm.qmp);
        json_t *ev;
        while ((ev = qmp_take_event(&m->qm.qmp))) {
            const char *name = json_string_value(json_object_get(ev, "event"));
            mlog(m, "QMP event %s", name ? name : "?");
            json_decref(ev);
        }
        if (err < 0) {
            epoll_ctl(s->epfd, EPOLL_CTL_DEL, m->qm.qmp.fd, NULL);
            if (err == -EPIPE)
                machine_fault(s, m, "the QMP connection closed (QEMU is gone)");
            else
                mlog(m, "QMP stopped making sense (%s); hot-plug is off until the machine restarts",
                     strerror(-err));
        }
    }
}

/* ---- control ------------------------------------------------------------ */

static const char *bar_kind(uint8_t k)
{
    return k == HW_BAR_IO ? "io" : k == HW_BAR_MEM64 ? "mem64" : "mem32";
}

int sup_machine_report(struct sup *s, const char *which, FILE *f)
{
    int found = 0;
    for (size_t i = 0; s->machines && i < s->sys->nmachines; i++) {
        struct machine_rt *m = &s->machines[i];
        if (which && strcmp(which, m->def->name))
            continue;
        found++;
        bool qemu = m->def->backend == SDF_BACKEND_QEMU;
        fprintf(f, "machine %s backend %s state %s pid %d memory %" PRIu64 "M restarts %u\n",
                m->def->name, qemu ? "qemu" : "vfio", m->up ? "up" : "down",
                qemu ? (int)m->qm.pid : 0, m->def->memory >> 20, m->restarts);
        for (size_t r = 0; r < s->sys->nregions; r++) {
            const struct sdf_region *reg = &s->sys->regions[r];
            if (reg->mach == (int)i)
                fprintf(f, "  region %s dev %#" PRIx64 " size %#" PRIx64 "\n", reg->name,
                        reg->dev_addr, reg->size);
        }
        for (size_t k = 0; k < m->def->ndevices; k++) {
            struct mdev_rt *d = &m->devs[k];
            const struct sdf_machine_device *dd = d->def;
            const char *drv = d->comp >= 0 ? s->sys->comps[d->comp].name : "-";
            if (dd->slot < 0 && qemu) {
                fprintf(f, "  device %s model %s bus %s\n", dd->name, dd->model, dd->bus);
                continue;
            }
            fprintf(f,
                    "  device %s model %s pci 00:%02x.0 id %04x:%04x class %06x gsi %u driver "
                    "%s reads %" PRIu64 " writes %" PRIu64 " refused %" PRIu64 " irqs %" PRIu64
                    " resets %" PRIu64 " line %s\n",
                    dd->name, qemu ? dd->model : dd->host, d->info.slot, d->info.vendor,
                    d->info.device, d->info.class_code, d->info.gsi, drv, d->reads, d->writes,
                    d->refused, d->irqs, d->resets,
                    d->info.gsi < sizeof(m->level) && m->level[d->info.gsi] ? "high" : "low");
            for (unsigned b = 0; b < HW_MAX_BARS; b++) {
                const struct hw_bar *bar = &d->info.bar[b];
                if (bar->kind != HW_BAR_NONE)
                    fprintf(f, "    bar %u %s %#" PRIx64 " size %#" PRIx64 "\n", b,
                            bar_kind(bar->kind), bar->addr, bar->size);
            }
        }
    }
    return found;
}

/* `machine NAME add MODEL ID [KEY=VALUE ...]` / `machine NAME del ID`. */
int sup_machine_hotplug(struct sup *s, char *args, FILE *f)
{
    char *save = NULL;
    char *name = strtok_r(args, " ", &save), *verb = strtok_r(NULL, " ", &save);
    int mi = name ? sdf_machine_index(s->sys, name) : -1;
    if (mi < 0) {
        fprintf(f, "ERROR: no machine named '%s'; expected one of the system's machines\n",
                name ? name : "");
        return -1;
    }
    struct machine_rt *m = &s->machines[mi];
    if (m->def->backend != SDF_BACKEND_QEMU || !m->up) {
        fprintf(f, "ERROR: machine '%s' is %s; hot-plug needs a running qemu machine\n", name,
                m->up ? "a vfio machine" : "down");
        return -1;
    }
    char err[512] = "";
    if (verb && !strcmp(verb, "add")) {
        char *model = strtok_r(NULL, " ", &save), *id = strtok_r(NULL, " ", &save);
        const char *props[16];
        size_t n = 0;
        char *p;
        while ((p = strtok_r(NULL, " ", &save))) {
            if (n == 15) {
                fprintf(f, "ERROR: more than 15 properties; expected at most 15\n");
                return -1;
            }
            if (!strchr(p, '=')) {
                fprintf(f, "ERROR: '%s' is not KEY=VALUE; expected properties like port=1\n", p);
                return -1;
            }
            props[n++] = p;
        }
        props[n] = NULL;
        if (!model || !id) {
            fprintf(f, "ERROR: expected: machine %s add MODEL ID [KEY=VALUE ...]\n", name);
            return -1;
        }
        if (qmp_device_add(&m->qm.qmp, model, id, props, err, sizeof(err))) {
            fprintf(f, "ERROR: QEMU refused device_add %s: %s\n", model, err);
            return -1;
        }
        mlog(m, "hot-plugged %s as '%s'", model, id);
        fprintf(f, "added %s %s\n", model, id);
        return 0;
    }
    if (verb && !strcmp(verb, "del")) {
        char *id = strtok_r(NULL, " ", &save);
        if (id && strchr(id, '/')) {
            fprintf(f, "ERROR: '%s' is a path; expected the id of a hot-plugged device\n", id);
            return -1;
        }
        if (!id) {
            fprintf(f, "ERROR: expected: machine %s del ID\n", name);
            return -1;
        }
        for (size_t k = 0; k < m->def->ndevices; k++)
            if (!strcmp(m->devs[k].def->name, id) && m->devs[k].comp >= 0) {
                fprintf(f,
                        "ERROR: device '%s' is granted to component '%s' by the system "
                        "description; expected a hot-plugged device\n",
                        id, s->sys->comps[m->devs[k].comp].name);
                return -1;
            }
        if (qmp_device_del(&m->qm.qmp, id, 3000, err, sizeof(err))) {
            fprintf(f, "ERROR: device_del %s failed: %s\n", id, err);
            return -1;
        }
        mlog(m, "unplugged '%s'", id);
        fprintf(f, "deleted %s\n", id);
        return 0;
    }
    fprintf(f, "ERROR: expected: machine %s [add MODEL ID [KEY=VALUE ...] | del ID]\n", name);
    return -1;
}
