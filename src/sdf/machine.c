/*
 * Checks of the `machines:` section and of what refers to it: device
 * grants (`pci:`) and device-visible regions (`machine:`).  Also places
 * every device-visible region at its device address, so that the address
 * is a property of the description, the same on every run.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <unistd.h>

#include "sdf/internal.h"

int sdf_machine_index(const struct sdf_system *sys, const char *name)
{
    for (size_t i = 0; name && i < sys->nmachines; i++)
        if (!strcmp(sys->machines[i].name, name))
            return (int)i;
    return -1;
}

int sdf_machine_device_index(const struct sdf_machine *m, const char *name)
{
    for (size_t i = 0; name && i < m->ndevices; i++)
        if (m->devices[i].name && !strcmp(m->devices[i].name, name))
            return (int)i;
    return -1;
}

unsigned sdf_qemu_gsi(int slot)
{
    /* q35 routes INTA of slot S to PIRQ E + S mod 4; PIRQ E..H are GSI 20..23. */
    return 20u + (unsigned)slot % 4u;
}

/* A host PCI address as sysfs names it: DDDD:BB:SS.F, lower-case hex. */
static bool host_bdf_ok(const char *s)
{
    static const char shape[] = "xxxx:xx:xx.x";
    if (strlen(s) != sizeof(shape) - 1)
        return false;
    for (size_t i = 0; shape[i]; i++) {
        char ch = s[i];
        bool hex = (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f');
        if (shape[i] == 'x' ? !hex : ch != shape[i])
            return false;
    }
    return s[8] <= '1' && s[11] <= '7'; /* slot 00-1f, function 0-7 */
}

static void check_device(const struct sdf_system *sys, const struct sdf_machine *m, size_t k,
                         struct sdf_errors *errs)
{
    const struct sdf_machine_device *d = &m->devices[k];
    if (!d->name)
        return;
    for (size_t j = 0; j < k; j++) {
        const struct sdf_machine_device *o = &m->devices[j];
        if (o->name && !strcmp(o->name, d->name))
            sdf_error(errs, d->name_loc,
                      "duplicate device name '%s' in machine '%s' (first on line %d); expected "
                      "unique device names",
                      d->name, m->name, o->loc.line);
        if (o->slot >= 0 && o->slot == d->slot)
            sdf_error(errs, d->loc,
                      "device '%s' is at PCI slot %02x, as is device '%s' (line %d); expected "
                      "one device per slot",
                      d->name, d->slot, o->name ? o->name : "?", o->loc.line);
    }
    if (m->backend == SDF_BACKEND_VFIO) {
        if (!d->host)
            sdf_error(errs, d->loc,
                      "device '%s' of vfio machine '%s' has no 'host'; expected the host PCI "
                      "address of a function bound to vfio-pci, like 0000:01:00.0",
                      d->name, m->name);
        else if (!host_bdf_ok(d->host))
            sdf_error(errs, d->loc,
                      "host '%s' of device '%s' is not a PCI address; expected DDDD:BB:SS.F in "
                      "lower-case hex, like 0000:01:00.0",
                      d->host, d->name);
        if (d->model || d->bus || d->nprops || d->wire || d->slot >= 0 || d->drive_file)
            sdf_error(errs, d->loc,
                      "device '%s' of vfio machine '%s' has QEMU settings (model, pci, bus, "
                      "properties, wire or drive); expected only name and host",
                      d->name, m->name);
        return;
    }
    char first = d->name[0];
    if (!((first >= 'a' && first <= 'z') || (first >= 'A' && first <= 'Z')))
        sdf_error(errs, d->name_loc,
                  "device name '%s' does not start with a letter; expected a letter first (QEMU "
                  "takes the name as the device's id)",
                  d->name);
    if (d->host)
        sdf_error(errs, d->loc,
                  "device '%s' of qemu machine '%s' has 'host'; expected a QEMU 'model' (host "
                  "is for backend vfio)",
                  d->name, m->name);
    if (!d->model)
        sdf_error(errs, d->loc,
                  "device '%s' of qemu machine '%s' has no 'model'; expected a QEMU device such "
                  "as virtio-net-pci, qemu-xhci or usb-kbd",
                  d->name, m->name);
    if ((d->slot >= 0) == (d->bus != NULL))
        sdf_error(errs, d->loc,
                  "device '%s' has %s; expected exactly one: 'pci' (a PCI function on bus 0) or "
                  "'bus' (a device on a bus another device provides, like xhci0.0)",
                  d->name, d->bus ? "both 'pci' and 'bus'" : "neither 'pci' nor 'bus'");
    if (d->drive_file && access(d->drive_file, d->drive_readonly ? R_OK : R_OK | W_OK))
        sdf_error(errs, d->drive_loc,
                  "drive file '%s' of device '%s' cannot be opened %s (%s); expected an "
                  "existing disk image",
                  d->drive_file, d->name,
                  d->drive_readonly ? "for reading"
                                    : "for reading and "
                                      "writing",
                  strerror(errno));
    if (d->wire == SDF_WIRE_TAP && d->wire_ifname) {
        /* The wire's TAP must not collide with another wire's or a
         * component's TAP of the same name and namespace. */
        const char *ns = d->wire_netns ? d->wire_netns : "";
        for (size_t i = 0; i < sys->nmachines; i++)
            for (size_t j = 0; j < sys->machines[i].ndevices; j++) {
                const struct sdf_machine_device *o = &sys->machines[i].devices[j];
                if (o == d)
                    goto components;
                if (o->wire == SDF_WIRE_TAP && o->wire_ifname &&
                    !strcmp(o->wire_ifname, d->wire_ifname) &&
                    !strcmp(o->wire_netns ? o->wire_netns : "", ns))
                    sdf_error(errs, d->loc,
                              "wire TAP '%s' in namespace %s is also the wire of device '%s' "
                              "(line %d); expected one interface per name and namespace",
                              d->wire_ifname, *ns ? ns : "(ours)", o->name, o->loc.line);
            }
    components:
        for (size_t i = 0; i < sys->ncomps; i++)
            for (size_t j = 0; j < sys->comps[i].ndevices; j++) {
                const struct sdf_device *o = &sys->comps[i].devices[j];
                if (o->kind == SDF_DEV_TAP && o->ifname && !strcmp(o->ifname, d->wire_ifname) &&
                    !strcmp(o->netns ? o->netns : "", ns))
                    sdf_error(errs, d->loc,
                              "wire TAP '%s' in namespace %s is also created for component '%s' "
                              "(line %d); expected one interface per name and namespace",
                              d->wire_ifname, *ns ? ns : "(ours)", sys->comps[i].name, o->loc.line);
            }
    }
}

/* Each grant names a PCI device of a machine; each device has at most one
 * driver, and each driver exactly one device.  Drivers of one qemu machine
 * may not share an interrupt line: an edge on a line another device holds
 * high would never be seen. */
static void check_grants(struct sdf_system *sys, struct sdf_errors *errs)
{
    for (size_t i = 0; i < sys->ncomps; i++) {
        struct sdf_component *c = &sys->comps[i];
        int npci = 0;
        for (size_t k = 0; k < c->ndevices; k++) {
            struct sdf_device *g = &c->devices[k];
            if (g->kind != SDF_DEV_PCI || !g->machine || !g->mdevice)
                continue;
            if (++npci == 2)
                sdf_error(errs, g->loc,
                          "component '%s' is granted a second PCI device '%s'; expected exactly "
                          "one device per driver component",
                          c->name, g->name);
            g->mach = sdf_machine_index(sys, g->machine);
            if (g->mach < 0) {
                sdf_error(errs, g->loc,
                          "device '%s' of component '%s' names machine '%s', which is not "
                          "defined; expected one of the names under 'machines'",
                          g->name, c->name, g->machine);
                continue;
            }
            const struct sdf_machine *m = &sys->machines[g->mach];
            g->mdev = sdf_machine_device_index(m, g->mdevice);
            if (g->mdev < 0) {
                sdf_error(errs, g->loc,
                          "device '%s' of component '%s' names '%s', which machine '%s' does not "
                          "have; expected one of its devices",
                          g->name, c->name, g->mdevice, m->name);
                continue;
            }
            const struct sdf_machine_device *md = &m->devices[g->mdev];
            if (m->backend == SDF_BACKEND_QEMU && md->slot < 0)
                sdf_error(errs, g->loc,
                          "device '%s' of machine '%s' is not a PCI function (it sits on bus "
                          "'%s'); expected a device with 'pci'",
                          md->name, m->name, md->bus ? md->bus : "?");
            for (size_t j = 0; j <= i; j++)
                for (size_t e = 0; e < (j == i ? k : sys->comps[j].ndevices); e++) {
                    const struct sdf_device *o = &sys->comps[j].devices[e];
                    if (o->kind != SDF_DEV_PCI || o->mach != g->mach || o->mdev < 0)
                        continue;
                    if (o->mdev == g->mdev)
                        sdf_error(errs, g->loc,
                                  "device '%s' of machine '%s' is already granted to component "
                                  "'%s' (line %d); expected one driver per device",
                                  md->name, m->name, sys->comps[j].name, o->loc.line);
                    else if (m->backend == SDF_BACKEND_QEMU && j != i &&
                             m->devices[o->mdev].slot >= 0 && md->slot >= 0 &&
                             sdf_qemu_gsi(m->devices[o->mdev].slot) == sdf_qemu_gsi(md->slot))
                        sdf_error(errs, g->loc,
                                  "device '%s' (slot %02x) shares interrupt line %u with device "
                                  "'%s' (slot %02x) of component '%s'; expected drivers of "
                                  "different components on slots that differ modulo 4",
                                  md->name, md->slot, sdf_qemu_gsi(md->slot),
                                  m->devices[o->mdev].name, m->devices[o->mdev].slot,
                                  sys->comps[j].name);
                }
        }
    }
}

/* Device-visible regions are laid out from 4 GiB up, page by page in the
 * order they are declared: the same addresses on every run. */
static void place_regions(struct sdf_system *sys, struct sdf_errors *errs)
{
    for (size_t mi = 0; mi < sys->nmachines; mi++) {
        const struct sdf_machine *m = &sys->machines[mi];
        uint64_t at = SDF_DMA_BASE;
        size_t n = 0;
        for (size_t i = 0; i < sys->nregions; i++) {
            struct sdf_region *r = &sys->regions[i];
            if (!r->machine || strcmp(r->machine, m->name))
                continue;
            r->mach = (int)mi;
            r->dev_addr = at;
            at += (r->size + SDF_PAGE - 1) & ~(uint64_t)(SDF_PAGE - 1);
            if (++n == SDF_MAX_MACHINE_REGIONS + 1)
                sdf_error(errs, r->machine_loc,
                          "machine '%s' has more than %d device-visible regions (region '%s'); "
                          "expected at most %d",
                          m->name, SDF_MAX_MACHINE_REGIONS, r->name, SDF_MAX_MACHINE_REGIONS);
        }
    }
    for (size_t i = 0; i < sys->nregions; i++) {
        const struct sdf_region *r = &sys->regions[i];
        if (r->machine && r->mach < 0)
            sdf_error(errs, r->machine_loc,
                      "region '%s' names machine '%s', which is not defined; expected one of the "
                      "names under 'machines'",
                      r->name, r->machine);
    }
}

void sdf_check_machines(struct sdf_system *sys, struct sdf_errors *errs)
{
    for (size_t i = 0; i < sys->nmachines; i++) {
        const struct sdf_machine *m = &sys->machines[i];
        if (!m->name)
            continue;
        for (size_t j = 0; j < i; j++)
            if (sys->machines[j].name && !strcmp(sys->machines[j].name, m->name))
                sdf_error(errs, m->name_loc,
                          "duplicate machine name '%s' (first on line %d); expected unique "
                          "machine names",
                          m->name, sys->machines[j].loc.line);
        if (!m->ndevices)
            sdf_error(errs, m->loc, "machine '%s' has no devices; expected at least one", m->name);
        for (size_t k = 0; k < m->ndevices; k++)
            check_device(sys, m, k, errs);
    }
    check_grants(sys, errs);
    place_regions(sys, errs);
}
