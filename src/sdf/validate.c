/*
 * System description validation: everything that needs the whole model.
 * Runs only on a model that parsed cleanly, so every required field is set.
 * Nothing starts unless this finds no error.
 */
#include "sdf/sdf.h"
#include "sdf/internal.h"

#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "devmux/queue.h"
#include "runtime/abi.h"

int sdf_component_index(const struct sdf_system *sys, const char *name)
{
    for (size_t i = 0; i < sys->ncomps; i++)
        if (name && sys->comps[i].name && !strcmp(sys->comps[i].name, name))
            return (int)i;
    return -1;
}

int sdf_region_index(const struct sdf_system *sys, const char *name)
{
    for (size_t i = 0; i < sys->nregions; i++)
        if (name && sys->regions[i].name && !strcmp(sys->regions[i].name, name))
            return (int)i;
    return -1;
}

static void check_unique_names(const struct sdf_system *sys, struct sdf_errors *errs)
{
    for (size_t i = 0; i < sys->ncomps; i++)
        for (size_t j = 0; j < i; j++)
            if (!strcmp(sys->comps[i].name, sys->comps[j].name)) {
                sdf_error(errs, sys->comps[i].loc,
                          "duplicate component name '%s' (first defined on line %d); expected "
                          "unique component names",
                          sys->comps[i].name, sys->comps[j].loc.line);
                break;
            }
    for (size_t i = 0; i < sys->nregions; i++)
        for (size_t j = 0; j < i; j++)
            if (!strcmp(sys->regions[i].name, sys->regions[j].name)) {
                sdf_error(errs, sys->regions[i].loc,
                          "duplicate region name '%s' (first defined on line %d); expected "
                          "unique region names",
                          sys->regions[i].name, sys->regions[j].loc.line);
                break;
            }
    for (size_t i = 0; i < sys->nchannels; i++)
        for (size_t j = 0; j < i; j++)
            if (sys->channels[i].name && sys->channels[j].name &&
                !strcmp(sys->channels[i].name, sys->channels[j].name)) {
                sdf_error(errs, sys->channels[i].loc,
                          "duplicate channel name '%s' (first defined on line %d); expected "
                          "unique channel names",
                          sys->channels[i].name, sys->channels[j].loc.line);
                break;
            }
}

static bool is_exec(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

static void resolve_program(struct sdf_system *sys, struct sdf_component *c,
                            const struct sdf_options *opt, struct sdf_errors *errs)
{
    char buf[PATH_MAX];
    if (strchr(c->program, '/')) {
        /* Relative paths are relative to the description's own directory. */
        if (c->program[0] == '/') {
            snprintf(buf, sizeof(buf), "%s", c->program);
        } else {
            char *dir = xstrdup(sys->file);
            char *slash = strrchr(dir, '/');
            if (slash)
                *slash = 0;
            int n = snprintf(buf, sizeof(buf), "%s/%s", slash ? dir : ".", c->program);
            free(dir);
            if (n < 0 || (size_t)n >= sizeof(buf))
                buf[0] = 0; /* too long: never a truncated, different path */
        }
        if (buf[0] && is_exec(buf) && (c->program_path = realpath(buf, NULL)))
            return;
        sdf_error(errs, c->program_loc,
                  "program '%s' of component '%s' is not an executable file; expected the path "
                  "of a built component, relative to the description's directory",
                  c->program, c->name);
        return;
    }
    for (size_t i = 0; opt && i < opt->nprogram_path; i++) {
        int n = snprintf(buf, sizeof(buf), "%s/%s", opt->program_path[i], c->program);
        if (n > 0 && (size_t)n < sizeof(buf) && is_exec(buf) &&
            (c->program_path = realpath(buf, NULL)))
            return;
    }
    sdf_error(errs, c->program_loc,
              "program '%s' of component '%s' was not found; expected an executable in a "
              "directory of the program search path (DEVMUX_PATH, then the build and install "
              "directories)",
              c->program, c->name);
}

uint64_t sdf_layout_items(struct sdf_region *r, size_t *bad)
{
    uint64_t off = 0;
    for (size_t k = 0; k < r->nitems; k++) {
        struct sdf_item *it = &r->items[k];
        switch (it->kind) {
        case SDF_ITEM_QUEUE:
            it->size = DMQ_RING_BYTES(it->count);
            break;
        case SDF_ITEM_BUFFERS:
            it->size = (uint64_t)it->count * it->elem;
            break;
        case SDF_ITEM_BYTES:
            break;
        }
        /* Sizes can reach 2^64 on paper: add without wrapping. */
        if (off > UINT64_MAX - 63 || it->size > UINT64_MAX - ((off + 63) & ~(uint64_t)63)) {
            *bad = k;
            return UINT64_MAX;
        }
        off = (off + 63) & ~(uint64_t)63;
        it->offset = off;
        off += it->size;
    }
    return off;
}

static void layout_region(struct sdf_region *r, struct sdf_errors *errs)
{
    for (size_t k = 0; k < r->nitems; k++) {
        struct sdf_item *it = &r->items[k];
        for (size_t j = 0; j < k; j++)
            if (!strcmp(r->items[j].name, it->name))
                sdf_error(errs, it->loc,
                          "duplicate item name '%s' in region '%s'; expected unique item names",
                          it->name, r->name);
        if (it->kind == SDF_ITEM_BUFFERS && (it->elem == 0 || it->count == 0))
            sdf_error(errs, it->loc,
                      "buffer pool '%s' has %u buffers of %u bytes; expected both above zero",
                      it->name, it->count, it->elem);
    }
    size_t bad = 0;
    uint64_t off = sdf_layout_items(r, &bad);
    if (off == UINT64_MAX) {
        sdf_error(errs, r->items[bad].loc,
                  "the layout of region '%s' needs more than 2^64 bytes at item '%s'; "
                  "expected a layout that fits its %" PRIu64 " bytes",
                  r->name, r->items[bad].name, r->size);
        return;
    }
    if (off > r->size)
        sdf_error(errs, r->size_loc,
                  "region '%s' is %" PRIu64 " bytes but its layout needs %" PRIu64
                  "; expected a size of at least %" PRIu64 " (rounded to pages: %" PRIu64 ")",
                  r->name, r->size, off, off, (off + SDF_PAGE - 1) & ~(uint64_t)(SDF_PAGE - 1));
}

static void check_regions(struct sdf_system *sys, struct sdf_errors *errs)
{
    for (size_t i = 0; i < sys->nregions; i++) {
        struct sdf_region *r = &sys->regions[i];
        layout_region(r, errs);
        for (size_t k = 0; k < r->nmaps; k++) {
            struct sdf_mapping *m = &r->maps[k];
            m->comp = sdf_component_index(sys, m->component);
            if (m->comp < 0) {
                sdf_error(errs, m->loc,
                          "region '%s' is mapped into component '%s', which does not exist; "
                          "expected the name of a component",
                          r->name, m->component);
                continue;
            }
            if (m->vaddr && (m->vaddr < SDF_MIN_VADDR || m->vaddr > SDF_MAX_VADDR ||
                             r->size > SDF_MAX_VADDR - m->vaddr))
                sdf_error(errs, m->loc,
                          "region '%s' at vaddr 0x%" PRIx64 " (%" PRIu64 " bytes) lies outside "
                          "user space; expected it within 0x%llx..0x%llx",
                          r->name, m->vaddr, r->size, SDF_MIN_VADDR, SDF_MAX_VADDR);
            for (size_t j = 0; j < k; j++)
                if (r->maps[j].comp == m->comp)
                    sdf_error(errs, m->loc,
                              "region '%s' is mapped twice into component '%s' (also on line "
                              "%d); expected at most one mapping per component",
                              r->name, m->component, r->maps[j].loc.line);
        }
    }
    /* Fixed addresses and setvar symbols must not collide within a component. */
    for (size_t a = 0; a < sys->nregions; a++)
        for (size_t k = 0; k < sys->regions[a].nmaps; k++) {
            struct sdf_mapping *m = &sys->regions[a].maps[k];
            if (m->comp < 0)
                continue;
            for (size_t b = 0; b <= a; b++)
                for (size_t l = 0; l < sys->regions[b].nmaps; l++) {
                    struct sdf_mapping *o = &sys->regions[b].maps[l];
                    if (o == m || o->comp != m->comp || (b == a && l >= k))
                        continue;
                    if (m->vaddr && o->vaddr && m->vaddr < o->vaddr + sys->regions[b].size &&
                        o->vaddr < m->vaddr + sys->regions[a].size)
                        sdf_error(errs, m->loc,
                                  "region '%s' at vaddr 0x%" PRIx64 " overlaps region '%s' in "
                                  "component '%s'; expected disjoint addresses",
                                  sys->regions[a].name, m->vaddr, sys->regions[b].name,
                                  m->component);
                    if (m->setvar && o->setvar && !strcmp(m->setvar, o->setvar))
                        sdf_error(errs, m->loc,
                                  "setvar_vaddr '%s' is set twice in component '%s'; expected "
                                  "one region per variable",
                                  m->setvar, m->component);
                }
        }
}

static void check_channels(struct sdf_system *sys, struct sdf_errors *errs)
{
    for (size_t i = 0; i < sys->nchannels; i++) {
        struct sdf_channel *ch = &sys->channels[i];
        for (int e = 0; e < 2; e++) {
            ch->end[e].comp = sdf_component_index(sys, ch->end[e].component);
            if (ch->end[e].comp < 0)
                sdf_error(errs, ch->end[e].loc,
                          "channel end names component '%s', which does not exist; expected the "
                          "name of a component",
                          ch->end[e].component);
        }
        if (ch->end[0].comp >= 0 && ch->end[0].comp == ch->end[1].comp)
            sdf_error(errs, ch->loc,
                      "channel connects component '%s' to itself; expected two different "
                      "components",
                      ch->end[0].component);
        if (ch->end[0].pp && ch->end[1].pp)
            sdf_error(errs, ch->loc,
                      "both ends of the channel between '%s' and '%s' have pp: true; expected "
                      "protected calls in one direction only",
                      ch->end[0].component, ch->end[1].component);
    }
    /* A channel id names one channel within a component. */
    for (size_t i = 0; i < sys->nchannels; i++)
        for (int e = 0; e < 2; e++) {
            const struct sdf_end *x = &sys->channels[i].end[e];
            for (size_t j = 0; j <= i; j++)
                for (int f = 0; f < 2; f++) {
                    const struct sdf_end *y = &sys->channels[j].end[f];
                    if ((j == i && f >= e) || x->comp < 0 || x->comp != y->comp || x->id != y->id)
                        continue;
                    sdf_error(errs, x->loc,
                              "channel id %u is used twice in component '%s' (also on line %d); "
                              "expected unique channel ids per component",
                              x->id, x->component, y->loc.line);
                }
        }
}

/* A device's interrupt arrives on a channel id of its component, so it
 * must not be one a channel already uses. */
static void check_devices(const struct sdf_system *sys, struct sdf_errors *errs)
{
    for (size_t i = 0; i < sys->ncomps; i++) {
        const struct sdf_component *c = &sys->comps[i];
        for (size_t d = 0; d < c->ndevices; d++) {
            const struct sdf_device *dev = &c->devices[d];
            for (size_t e = 0; e < d; e++) {
                if (!strcmp(c->devices[e].name, dev->name))
                    sdf_error(errs, dev->loc,
                              "duplicate device name '%s' in component '%s' (also on line %d); "
                              "expected unique device names per component",
                              dev->name, c->name, c->devices[e].loc.line);
                else if (c->devices[e].irq == dev->irq)
                    sdf_error(errs, dev->loc,
                              "device '%s' of component '%s' uses irq %u, as does device '%s' "
                              "(line %d); expected one irq per device",
                              dev->name, c->name, dev->irq, c->devices[e].name,
                              c->devices[e].loc.line);
            }
            for (size_t k = 0; k < sys->nchannels; k++)
                for (int e = 0; e < 2; e++) {
                    const struct sdf_end *end = &sys->channels[k].end[e];
                    if (end->comp == (int)i && end->id == dev->irq)
                        sdf_error(errs, dev->loc,
                                  "device '%s' of component '%s' uses irq %u, which is also the "
                                  "id of a channel (line %d); expected an irq that no channel of "
                                  "the component uses",
                                  dev->name, c->name, dev->irq, end->loc.line);
                }
        }
    }
}

/* Two TAP devices with one name in one namespace: the second could never
 * be created.  (Quadratic, but over at most 8 devices per component.) */
static void check_tap_names(const struct sdf_system *sys, struct sdf_errors *errs)
{
    for (size_t i = 0; i < sys->ncomps; i++)
        for (size_t d = 0; d < sys->comps[i].ndevices; d++) {
            const struct sdf_device *a = &sys->comps[i].devices[d];
            if (a->kind != SDF_DEV_TAP || !a->ifname)
                continue;
            bool dup = false;
            for (size_t j = 0; j <= i && !dup; j++)
                for (size_t e = 0; e < (j == i ? d : sys->comps[j].ndevices) && !dup; e++) {
                    const struct sdf_device *b = &sys->comps[j].devices[e];
                    dup = b->kind == SDF_DEV_TAP && b->ifname && !strcmp(a->ifname, b->ifname) &&
                          !strcmp(a->netns ? a->netns : "", b->netns ? b->netns : "");
                    if (dup)
                        sdf_error(errs, a->loc,
                                  "TAP interface '%s' in namespace %s is also created for "
                                  "component '%s' (line %d); expected one interface per name "
                                  "and namespace",
                                  a->ifname, a->netns ? a->netns : "(ours)", sys->comps[j].name,
                                  b->loc.line);
                }
        }
}

/* What one component is granted must fit the boot information the
 * supervisor hands it (src/runtime/abi.h); refuse rather than truncate. */
static void check_component_limits(const struct sdf_system *sys, struct sdf_errors *errs)
{
    for (size_t i = 0; i < sys->ncomps; i++) {
        const struct sdf_component *c = &sys->comps[i];
        size_t nreg = 0, nitems = 0, cfg = 0;
        for (size_t r = 0; r < sys->nregions; r++)
            for (size_t m = 0; m < sys->regions[r].nmaps; m++)
                if (sys->regions[r].maps[m].comp == (int)i) {
                    nreg++;
                    nitems += sys->regions[r].nitems;
                }
        for (size_t k = 0; k < c->nconfig; k++)
            cfg += strlen(c->config[k].key) + strlen(c->config[k].value) + 2;
        if (nreg > DMX_MAX_REGIONS)
            sdf_error(errs, c->loc, "component '%s' maps %zu regions; expected at most %d", c->name,
                      nreg, DMX_MAX_REGIONS);
        if (nitems > DMX_MAX_ITEMS)
            sdf_error(errs, c->loc, "component '%s' sees %zu layout items; expected at most %d",
                      c->name, nitems, DMX_MAX_ITEMS);
        if (cfg > DMX_CONFIG_BYTES)
            sdf_error(errs, c->loc, "config of component '%s' is %zu bytes; expected at most %d",
                      c->name, cfg, DMX_CONFIG_BYTES);
    }
    for (size_t r = 0; r < sys->nregions; r++)
        for (size_t m = 0; m < sys->regions[r].nmaps; m++) {
            const char *v = sys->regions[r].maps[m].setvar;
            bool ok = v && *v && strlen(v) < DMX_NAME_LEN && !(*v >= '0' && *v <= '9');
            for (const char *p = v; ok && *p; p++)
                ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                     (*p >= '0' && *p <= '9') || *p == '_';
            if (v && !ok)
                sdf_error(errs, sys->regions[r].maps[m].loc,
                          "setvar_vaddr '%.64s' is not a C identifier; expected 1 to %d "
                          "characters of [A-Za-z0-9_], not starting with a digit",
                          v, DMX_NAME_LEN - 1);
        }
}

/* Protected calls block the caller until the callee answers, so a cycle
 * of them can deadlock: reject any.  Depth-first search with colours; the
 * error spells out the cycle. */
static void report_cycle(const struct sdf_system *sys, const struct sdf_channel *ch,
                         const int *parent, int v, int w, struct sdf_errors *errs)
{
    /* Walk back from v to w, then print forwards: w -> ... -> v -> w. */
    int *hops = xcalloc(sys->ncomps + 1, sizeof(int));
    size_t n = 0;
    for (int x = v; x != w && x >= 0 && n < sys->ncomps; x = parent[x])
        hops[n++] = x;
    hops[n++] = w;
    char *path = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&path, &len);
    for (size_t k = n; k-- > 0;)
        fprintf(m, "%s -> ", sys->comps[hops[k]].name);
    fprintf(m, "%s", sys->comps[w].name);
    fclose(m);
    sdf_error(errs, ch->loc,
              "protected calls form a cycle: %s; expected protected calls to form no cycle (a "
              "caller blocks until its callee replies)",
              path);
    free(path);
    free(hops);
}

static bool pp_dfs(const struct sdf_system *sys, int v, int *colour, int *parent,
                   struct sdf_errors *errs)
{
    colour[v] = 1;
    for (size_t i = 0; i < sys->nchannels; i++) {
        const struct sdf_channel *ch = &sys->channels[i];
        for (int e = 0; e < 2; e++) {
            if (!ch->end[e].pp || ch->end[e].comp != v)
                continue;
            int w = ch->end[1 - e].comp;
            if (w < 0)
                continue;
            if (colour[w] == 1) {
                report_cycle(sys, ch, parent, v, w, errs);
                return true;
            }
            if (colour[w] == 0) {
                parent[w] = v;
                if (pp_dfs(sys, w, colour, parent, errs))
                    return true;
            }
        }
    }
    colour[v] = 2;
    return false;
}

static void check_pp_cycles(const struct sdf_system *sys, struct sdf_errors *errs)
{
    size_t n = sys->ncomps ? sys->ncomps : 1;
    int *colour = xcalloc(n, sizeof(int));
    int *parent = xcalloc(n, sizeof(int));
    for (size_t v = 0; v < sys->ncomps; v++) {
        parent[v] = -1;
    }
    for (size_t v = 0; v < sys->ncomps; v++)
        if (!colour[v] && pp_dfs(sys, (int)v, colour, parent, errs))
            break;
    free(colour);
    free(parent);
}

void sdf_validate(struct sdf_system *sys, const struct sdf_options *opt, struct sdf_errors *errs)
{
    struct sdf_loc top = {1, 1};
    if (sys->ncomps == 0)
        sdf_error(errs, top, "the system has no components; expected at least one");
    /* Bounds that keep every check below linear-ish and shallow. */
    if (sys->ncomps > SDF_MAX_COMPONENTS || sys->nregions > SDF_MAX_REGIONS ||
        sys->nchannels > SDF_MAX_CHANNELS) {
        sdf_error(errs, top,
                  "the system has %zu components, %zu regions and %zu channels; expected at "
                  "most %d, %d and %d",
                  sys->ncomps, sys->nregions, sys->nchannels, SDF_MAX_COMPONENTS, SDF_MAX_REGIONS,
                  SDF_MAX_CHANNELS);
        return;
    }
    check_unique_names(sys, errs);
    for (size_t i = 0; i < sys->ncomps; i++) {
        struct sdf_component *c = &sys->comps[i];
        if (c->backoff_min_ms > c->backoff_max_ms)
            sdf_error(errs, c->loc,
                      "component '%s' has backoff_min_ms %u above backoff_max_ms %u; expected "
                      "min <= max",
                      c->name, c->backoff_min_ms, c->backoff_max_ms);
        resolve_program(sys, c, opt, errs);
    }
    check_regions(sys, errs);
    check_channels(sys, errs);
    check_devices(sys, errs);
    check_tap_names(sys, errs);
    sdf_check_machines(sys, errs);
    check_component_limits(sys, errs);
    if (!errs->n)
        check_pp_cycles(sys, errs);
}
