/*
 * Start-up of a component process: read the boot information the supervisor
 * left at DMX_FD_BOOT, map the granted regions, patch setvar variables, and
 * close the sandbox.  This runs as a high-priority constructor so that it
 * happens before any constructor of the component's own code.
 */
#include "runtime/runtime.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

const struct dmx_boot *dmx_boot;
struct dmx_stats *dmx_stats;
const char *microkit_name = "?";

struct mapped {
    void *addr;
};
static struct mapped regions[DMX_MAX_REGIONS];
static struct devmux_item items[DMX_MAX_ITEMS];

noreturn void dmx_die(const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    fprintf(stderr, "devmux runtime: %s\n", buf);
    _exit(120);
}

void dmx_boot_map(void)
{
    struct stat st;
    if (fstat(DMX_FD_BOOT, &st) || (size_t)st.st_size < sizeof(struct dmx_boot)) {
        fprintf(stderr, "this program is a devmux component; start it with `devmux run "
                        "SYSTEM.yaml`\n");
        _exit(2);
    }
    const struct dmx_boot *b = mmap(NULL, sizeof(*b), PROT_READ, MAP_SHARED, DMX_FD_BOOT, 0);
    if (b == MAP_FAILED || b->magic != DMX_BOOT_MAGIC || b->version != DMX_BOOT_VERSION)
        dmx_die("bad boot information");
    dmx_boot = b;
    microkit_name = b->name;
    close(DMX_FD_BOOT);

    dmx_stats = mmap(NULL, sizeof(*dmx_stats), PROT_READ | PROT_WRITE, MAP_SHARED, DMX_FD_STATS, 0);
    if (dmx_stats == MAP_FAILED)
        dmx_die("cannot map the statistics page: %s", strerror(errno));
    close(DMX_FD_STATS);

    for (uint32_t i = 0; i < b->nregions && i < DMX_MAX_REGIONS; i++) {
        const struct dmx_boot_region *r = &b->regions[i];
        int prot = PROT_READ | (r->writable ? PROT_WRITE : 0);
        int flags = MAP_SHARED | (r->vaddr ? MAP_FIXED_NOREPLACE : 0);
        void *p = mmap((void *)(uintptr_t)r->vaddr, r->size, prot, flags, r->fd, 0);
        if (p == MAP_FAILED)
            dmx_die("cannot map region '%s' (%llu bytes at %#llx): %s", r->name,
                    (unsigned long long)r->size, (unsigned long long)r->vaddr, strerror(errno));
        if (r->vaddr && (uintptr_t)p != r->vaddr)
            dmx_die("region '%s' wanted at %#llx, got %p", r->name, (unsigned long long)r->vaddr,
                    p);
        regions[i].addr = p;
        /* Once mapped, the descriptor is no longer needed, and keeping it
         * would let the component map the region again with other rights. */
        close(r->fd);
        if (r->setvar[0]) {
            uintptr_t *var = dlsym(RTLD_DEFAULT, r->setvar);
            if (!var)
                dmx_die("setvar_vaddr '%s' for region '%s': no such symbol in the program "
                        "(is it a global, and is the program linked with -rdynamic?)",
                        r->setvar, r->name);
            *var = (uintptr_t)p;
        }
    }
    for (uint32_t i = 0; i < b->nitems && i < DMX_MAX_ITEMS; i++) {
        const struct dmx_boot_item *it = &b->items[i];
        items[i].addr = (char *)regions[it->region].addr + it->offset;
        items[i].size = it->size;
        items[i].count = it->count;
        items[i].elem = it->elem;
    }
}

__attribute__((constructor(101))) static void dmx_boot_ctor(void)
{
    dmx_boot_map();
    dmx_sandbox_close();
}

void *devmux_region(const char *name, size_t *size)
{
    for (uint32_t i = 0; i < dmx_boot->nregions; i++)
        if (!strcmp(dmx_boot->regions[i].name, name)) {
            if (size)
                *size = dmx_boot->regions[i].size;
            return regions[i].addr;
        }
    return NULL;
}

bool devmux_region_writable(const char *name)
{
    for (uint32_t i = 0; i < dmx_boot->nregions; i++)
        if (!strcmp(dmx_boot->regions[i].name, name))
            return dmx_boot->regions[i].writable;
    return false;
}

const struct devmux_item *devmux_item(const char *region, const char *item)
{
    for (uint32_t i = 0; i < dmx_boot->nitems; i++) {
        const struct dmx_boot_item *it = &dmx_boot->items[i];
        if (!strcmp(it->name, item) && !strcmp(dmx_boot->regions[it->region].name, region))
            return &items[i];
    }
    return NULL;
}

const char *devmux_config_str(const char *key, const char *def)
{
    const char *p = dmx_boot->config, *end = p + dmx_boot->config_len;
    while (p < end) {
        const char *k = p;
        const char *v = k + strlen(k) + 1;
        if (v >= end)
            break;
        if (!strcmp(k, key))
            return v;
        p = v + strlen(v) + 1;
    }
    return def;
}

uint64_t devmux_config_u64(const char *key, uint64_t def)
{
    const char *s = devmux_config_str(key, NULL);
    if (!s)
        return def;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    uint64_t mul = 1;
    if (*end == 'K' || *end == 'k')
        mul = 1ull << 10, end++;
    else if (*end == 'M')
        mul = 1ull << 20, end++;
    else if (*end == 'G')
        mul = 1ull << 30, end++;
    if (errno || end == s || *end || *s == '-') {
        devmux_log("config '%s' = '%s' is not a number; using %llu", key, s,
                   (unsigned long long)def);
        return def;
    }
    return (uint64_t)v * mul;
}

const struct dmx_boot_device *dmx_boot_device(const char *name)
{
    for (uint32_t i = 0; i < dmx_boot->ndevices && i < DMX_MAX_DEVICES; i++)
        if (!strcmp(dmx_boot->devices[i].name, name))
            return &dmx_boot->devices[i];
    return NULL;
}

const struct dmx_boot_region *dmx_boot_region(const char *name, void **addr)
{
    for (uint32_t i = 0; i < dmx_boot->nregions; i++)
        if (!strcmp(dmx_boot->regions[i].name, name)) {
            *addr = regions[i].addr;
            return &dmx_boot->regions[i];
        }
    return NULL;
}

int devmux_device(const char *name, microkit_channel *irq)
{
    for (uint32_t i = 0; i < dmx_boot->ndevices && i < DMX_MAX_DEVICES; i++)
        if (!strcmp(dmx_boot->devices[i].name, name)) {
            if (irq)
                *irq = dmx_boot->devices[i].irq;
            return dmx_boot->devices[i].fd;
        }
    return -1;
}

unsigned devmux_restarts(void)
{
    return dmx_boot->restarts;
}
