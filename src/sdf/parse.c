/*
 * System description parser: YAML (through libyaml's document API) into the
 * model of sdf.h.  This file checks shape only: known keys, the right node
 * types, well-formed scalars.  Cross-references are validate.c's job.
 * Errors are collected, not fatal, so one run reports all of them.
 */
#include "sdf/sdf.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "common/util.h"

struct ctx {
    yaml_document_t *doc;
    struct sdf_errors *errs;
};

static struct sdf_loc loc_of(const yaml_node_t *n)
{
    struct sdf_loc l = {(int)n->start_mark.line + 1, (int)n->start_mark.column + 1};
    return l;
}

void sdf_error(struct sdf_errors *errs, struct sdf_loc loc, const char *fmt, ...)
{
    /* A hostile file can produce errors without end: list the first ones,
     * then say that more were left out. */
    if (errs->n > SDF_MAX_ERRORS)
        return;
    char *msg = NULL;
    if (errs->n == SDF_MAX_ERRORS) {
        msg = xstrdup("too many errors; stopped listing them; expected a mostly valid description");
    } else {
        va_list ap;
        va_start(ap, fmt);
        if (vasprintf(&msg, fmt, ap) < 0)
            msg = xstrdup("out of memory formatting error");
        va_end(ap);
    }
    /* Messages quote the file's own text: keep a hostile file from writing
     * control characters to the terminal or megabytes into one line. */
    for (char *p = msg; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    /* Over-long: keep the start and the end, where "expected ..." is. */
    size_t len = strlen(msg), keep = (SDF_MAX_MESSAGE - 5) / 2;
    if (len > SDF_MAX_MESSAGE) {
        memcpy(msg + keep, " ... ", 5);
        memmove(msg + keep + 5, msg + len - keep, keep + 1);
    }
    errs->v = xrealloc(errs->v, (errs->n + 1) * sizeof(*errs->v));
    errs->v[errs->n].loc = loc;
    errs->v[errs->n].msg = msg;
    errs->n++;
}

static int cmp_err(const void *a, const void *b)
{
    const struct sdf_error *x = a, *y = b;
    if (x->loc.line != y->loc.line)
        return x->loc.line - y->loc.line;
    return x->loc.col - y->loc.col;
}

void sdf_errors_print(const struct sdf_errors *errs, const char *file, FILE *out)
{
    qsort(errs->v, errs->n, sizeof(*errs->v), cmp_err);
    for (size_t i = 0; i < errs->n; i++)
        fprintf(out, "%s:%d:%d: error: %s\n", file, errs->v[i].loc.line, errs->v[i].loc.col,
                errs->v[i].msg);
}

void sdf_errors_free(struct sdf_errors *errs)
{
    for (size_t i = 0; i < errs->n; i++)
        free(errs->v[i].msg);
    free(errs->v);
    errs->v = NULL;
    errs->n = 0;
}

static const char *node_kind(const yaml_node_t *n)
{
    switch (n->type) {
    case YAML_SCALAR_NODE:
        return "a scalar";
    case YAML_SEQUENCE_NODE:
        return "a list";
    case YAML_MAPPING_NODE:
        return "a mapping";
    default:
        return "nothing";
    }
}

static const char *scalar(const yaml_node_t *n)
{
    return (const char *)n->data.scalar.value;
}

/* A NUL inside a scalar would silently cut it short everywhere else. */
static bool has_nul(const yaml_node_t *n)
{
    return n->type == YAML_SCALAR_NODE && strlen(scalar(n)) != n->data.scalar.length;
}

static bool expect(struct ctx *c, const yaml_node_t *n, yaml_node_type_t t, const char *what)
{
    if (has_nul(n)) {
        sdf_error(c->errs, loc_of(n), "%s contains a NUL character; expected text", what);
        return false;
    }
    if (n->type == t)
        return true;
    const char *want = t == YAML_SCALAR_NODE     ? "a scalar"
                       : t == YAML_SEQUENCE_NODE ? "a list"
                                                 : "a mapping";
    sdf_error(c->errs, loc_of(n), "%s is %s; expected %s", what, node_kind(n), want);
    return false;
}

/* Iterates a mapping, rejecting unknown and repeated keys.  allowed is a
 * NULL-terminated list; the error names every key that would be accepted. */
typedef void (*key_fn)(struct ctx *c, const char *key, yaml_node_t *val, void *obj);

static void for_keys(struct ctx *c, yaml_node_t *map, const char *what, const char *const *allowed,
                     key_fn fn, void *obj)
{
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
        if (!expect(c, k, YAML_SCALAR_NODE, "a key"))
            continue;
        const char *key = scalar(k);
        bool dup = false;
        for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p; q++) {
            yaml_node_t *k2 = yaml_document_get_node(c->doc, q->key);
            if (k2->type == YAML_SCALAR_NODE && !strcmp(scalar(k2), key))
                dup = true;
        }
        if (dup) {
            sdf_error(c->errs, loc_of(k), "key '%s' repeated in %s; expected each key once", key,
                      what);
            continue;
        }
        bool ok = false;
        for (const char *const *a = allowed; *a; a++)
            ok |= !strcmp(*a, key);
        if (!ok) {
            char list[512] = "";
            for (const char *const *a = allowed; *a; a++)
                snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
                         a == allowed ? "" : ", ", *a);
            sdf_error(c->errs, loc_of(k), "unknown key '%s' in %s; expected one of: %s", key, what,
                      list);
            continue;
        }
        fn(c, key, v, obj);
    }
}

static bool has_key(struct ctx *c, yaml_node_t *map, const char *key)
{
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        if (k->type == YAML_SCALAR_NODE && !strcmp(scalar(k), key))
            return true;
    }
    return false;
}

static void require(struct ctx *c, yaml_node_t *map, const char *what, const char *const *keys)
{
    for (const char *const *k = keys; *k; k++)
        if (!has_key(c, map, *k))
            sdf_error(c->errs, loc_of(map), "%s has no '%s'; expected the key '%s'", what, *k, *k);
}

static char *get_name(struct ctx *c, yaml_node_t *v, const char *what)
{
    if (!expect(c, v, YAML_SCALAR_NODE, what))
        return NULL;
    const char *s = scalar(v);
    size_t n = strlen(s);
    bool ok = n > 0 && n <= SDF_NAME_MAX;
    for (size_t i = 0; ok && i < n; i++)
        ok = (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
             (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-' || s[i] == '.';
    if (!ok) {
        sdf_error(c->errs, loc_of(v),
                  "%s '%s' is not a valid name; expected 1 to %d characters of "
                  "[A-Za-z0-9_.-]",
                  what, s, SDF_NAME_MAX);
        return NULL;
    }
    return xstrdup(s);
}

static char *get_str(struct ctx *c, yaml_node_t *v, const char *what)
{
    if (!expect(c, v, YAML_SCALAR_NODE, what))
        return NULL;
    return xstrdup(scalar(v));
}

bool sdf_parse_size(const char *s, uint64_t *out)
{
    /* Decimal or 0x hex, nothing else: no sign, no blanks, no octal. */
    bool hex = s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
    const char *digits = hex ? s + 2 : s;
    if (!(hex ? isxdigit((unsigned char)*digits) : isdigit((unsigned char)*digits)))
        return false;
    errno = 0;
    char *end;
    uint64_t v = strtoull(digits, &end, hex ? 16 : 10);
    if (errno || end == s)
        return false;
    uint64_t mul = 1;
    if (*end) {
        switch (*end) {
        case 'K':
        case 'k':
            mul = 1ull << 10;
            break;
        case 'M':
            mul = 1ull << 20;
            break;
        case 'G':
            mul = 1ull << 30;
            break;
        default:
            return false;
        }
        end++;
        if (*end == 'i')
            end++;
        if (*end == 'B')
            end++;
        if (*end)
            return false;
    }
    if (v > UINT64_MAX / mul)
        return false;
    *out = v * mul;
    return true;
}

static bool get_u64(struct ctx *c, yaml_node_t *v, const char *what, uint64_t max, uint64_t *out)
{
    if (!expect(c, v, YAML_SCALAR_NODE, what))
        return false;
    uint64_t x;
    if (!sdf_parse_size(scalar(v), &x)) {
        sdf_error(c->errs, loc_of(v),
                  "%s '%s' is not a number; expected an unsigned integer (decimal or 0x hex, "
                  "optional K/M/G suffix)",
                  what, scalar(v));
        return false;
    }
    if (x > max) {
        sdf_error(c->errs, loc_of(v), "%s %" PRIu64 " is too large; expected at most %" PRIu64,
                  what, x, max);
        return false;
    }
    *out = x;
    return true;
}

static bool get_bool(struct ctx *c, yaml_node_t *v, const char *what, bool *out)
{
    if (!expect(c, v, YAML_SCALAR_NODE, what))
        return false;
    const char *s = scalar(v);
    if (!strcmp(s, "true") || !strcmp(s, "yes")) {
        *out = true;
        return true;
    }
    if (!strcmp(s, "false") || !strcmp(s, "no")) {
        *out = false;
        return true;
    }
    sdf_error(c->errs, loc_of(v), "%s '%s' is not a boolean; expected true or false", what, s);
    return false;
}

/* ---- components -------------------------------------------------------- */

static void fault_key(struct ctx *c, const char *key, yaml_node_t *v, void *obj)
{
    struct sdf_component *comp = obj;
    uint64_t x;
    if (!strcmp(key, "policy")) {
        if (!expect(c, v, YAML_SCALAR_NODE, "fault policy"))
            return;
        const char *s = scalar(v);
        if (!strcmp(s, "restart"))
            comp->fault = SDF_FAULT_RESTART;
        else if (!strcmp(s, "halt"))
            comp->fault = SDF_FAULT_HALT;
        else if (!strcmp(s, "shutdown"))
            comp->fault = SDF_FAULT_SHUTDOWN;
        else
            sdf_error(c->errs, loc_of(v),
                      "fault policy '%s' is unknown; expected restart, halt or shutdown", s);
    } else if (!strcmp(key, "backoff_min_ms")) {
        if (get_u64(c, v, "backoff_min_ms", 3600000, &x))
            comp->backoff_min_ms = (uint32_t)x;
    } else if (!strcmp(key, "backoff_max_ms")) {
        if (get_u64(c, v, "backoff_max_ms", 3600000, &x))
            comp->backoff_max_ms = (uint32_t)x;
    }
}

static void config_key(struct ctx *c, const char *key, yaml_node_t *v, void *obj)
{
    struct sdf_component *comp = obj;
    char *val = NULL;
    if (v->type == YAML_SCALAR_NODE) {
        val = xstrdup(scalar(v));
    } else if (v->type == YAML_SEQUENCE_NODE) {
        /* Lists become comma-separated strings: enough for flat configs. */
        size_t len = 0;
        val = xstrdup("");
        for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
             it++) {
            yaml_node_t *e = yaml_document_get_node(c->doc, *it);
            if (!expect(c, e, YAML_SCALAR_NODE, "config list element"))
                continue;
            size_t el = strlen(scalar(e));
            val = xrealloc(val, len + el + 2);
            if (len)
                val[len++] = ',';
            memcpy(val + len, scalar(e), el + 1);
            len += el;
        }
    } else {
        sdf_error(c->errs, loc_of(v),
                  "config value of '%s' is a mapping; expected a scalar or a list of scalars", key);
        return;
    }
    comp->config = xrealloc(comp->config, (comp->nconfig + 1) * sizeof(*comp->config));
    comp->config[comp->nconfig].key = xstrdup(key);
    comp->config[comp->nconfig].value = val;
    comp->nconfig++;
}

static void component_key(struct ctx *c, const char *key, yaml_node_t *v, void *obj)
{
    struct sdf_component *comp = obj;
    if (!strcmp(key, "name")) {
        comp->name = get_name(c, v, "component name");
    } else if (!strcmp(key, "program")) {
        comp->program = get_str(c, v, "program");
        comp->program_loc = loc_of(v);
    } else if (!strcmp(key, "config")) {
        if (!expect(c, v, YAML_MAPPING_NODE, "config"))
            return;
        /* Any key is allowed in a config; for_keys still rejects repeats. */
        for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top;
             p++) {
            yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
            if (!expect(c, k, YAML_SCALAR_NODE, "a config key"))
                continue;
            bool dup = false;
            for (size_t i = 0; i < comp->nconfig; i++)
                dup |= !strcmp(comp->config[i].key, scalar(k));
            if (dup)
                sdf_error(c->errs, loc_of(k), "config key '%s' repeated; expected each key once",
                          scalar(k));
            else
                config_key(c, scalar(k), yaml_document_get_node(c->doc, p->value), comp);
        }
    } else if (!strcmp(key, "fault")) {
        if (v->type == YAML_SCALAR_NODE) {
            fault_key(c, "policy", v, comp);
        } else if (expect(c, v, YAML_MAPPING_NODE, "fault")) {
            static const char *const keys[] = {"policy", "backoff_min_ms", "backoff_max_ms", NULL};
            for_keys(c, v, "fault", keys, fault_key, comp);
        }
    }
}

static void parse_components(struct ctx *c, yaml_node_t *seq, struct sdf_system *sys)
{
    if (!expect(c, seq, YAML_SEQUENCE_NODE, "components"))
        return;
    for (yaml_node_item_t *it = seq->data.sequence.items.start; it < seq->data.sequence.items.top;
         it++) {
        yaml_node_t *n = yaml_document_get_node(c->doc, *it);
        if (!expect(c, n, YAML_MAPPING_NODE, "a component"))
            continue;
        sys->comps = xrealloc(sys->comps, (sys->ncomps + 1) * sizeof(*sys->comps));
        struct sdf_component *comp = &sys->comps[sys->ncomps++];
        memset(comp, 0, sizeof(*comp));
        comp->loc = loc_of(n);
        comp->fault = SDF_FAULT_RESTART;
        comp->backoff_min_ms = 100;
        comp->backoff_max_ms = 10000;
        static const char *const keys[] = {"name", "program", "config", "fault", NULL};
        static const char *const req[] = {"name", "program", NULL};
        require(c, n, "component", req);
        for_keys(c, n, "component", keys, component_key, comp);
    }
}

/* ---- regions ----------------------------------------------------------- */

static void item_key(struct ctx *c, const char *key, yaml_node_t *v, void *obj)
{
    struct sdf_item *item = obj;
    uint64_t x;
    if (!strcmp(key, "name")) {
        item->name = get_name(c, v, "item name");
    } else if (!strcmp(key, "queue")) {
        item->kind = SDF_ITEM_QUEUE;
        if (get_u64(c, v, "queue capacity", 1u << 24, &x)) {
            if (x == 0 || (x & (x - 1)))
                sdf_error(c->errs, loc_of(v),
                          "queue capacity %" PRIu64 " is not a power of two; expected 1, 2, 4, "
                          "... up to 16777216",
                          x);
            item->count = (uint32_t)x;
        }
    } else if (!strcmp(key, "buffers")) {
        item->kind = SDF_ITEM_BUFFERS;
        if (get_u64(c, v, "buffer count", 1u << 24, &x))
            item->count = (uint32_t)x;
    } else if (!strcmp(key, "buffer_size")) {
        if (get_u64(c, v, "buffer_size", 1u << 30, &x))
            item->elem = (uint32_t)x;
    } else if (!strcmp(key, "bytes")) {
        item->kind = SDF_ITEM_BYTES;
        if (get_u64(c, v, "bytes", 1ull << 40, &x))
            item->size = x;
    }
}

static void map_key(struct ctx *c, const char *key, yaml_node_t *v, void *obj)
{
    struct sdf_mapping *m = obj;
    if (!strcmp(key, "component")) {
        m->component = get_name(c, v, "component");
    } else if (!strcmp(key, "perms")) {
        if (!expect(c, v, YAML_SCALAR_NODE, "perms"))
            return;
        if (!strcmp(scalar(v), "rw"))
            m->writable = true;
        else if (!strcmp(scalar(v), "r"))
            m->writable = false;
        else
            sdf_error(c->errs, loc_of(v), "perms '%s' is unknown; expected r or rw", scalar(v));
    } else if (!strcmp(key, "vaddr")) {
        uint64_t x;
        if (get_u64(c, v, "vaddr", 0x7fffffffffffull, &x)) {
            if (x % SDF_PAGE)
                sdf_error(c->errs, loc_of(v),
                          "vaddr 0x%" PRIx64 " is not page aligned; expected a multiple of %u", x,
                          SDF_PAGE);
            m->vaddr = x;
        }
    } else if (!strcmp(key, "setvar_vaddr")) {
        m->setvar = get_str(c, v, "setvar_vaddr");
    }
}

static void region_key(struct ctx *c, const char *key, yaml_node_t *v, void *obj)
{
    struct sdf_region *r = obj;
    if (!strcmp(key, "name")) {
        r->name = get_name(c, v, "region name");
    } else if (!strcmp(key, "size")) {
        r->size_loc = loc_of(v);
        if (get_u64(c, v, "region size", 1ull << 40, &r->size) &&
            (r->size == 0 || r->size % SDF_PAGE))
            sdf_error(c->errs, loc_of(v),
                      "region size %" PRIu64 " is not a positive multiple of the page size; "
                      "expected a multiple of %u",
                      r->size, SDF_PAGE);
    } else if (!strcmp(key, "layout")) {
        if (!expect(c, v, YAML_SEQUENCE_NODE, "layout"))
            return;
        for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
             it++) {
            yaml_node_t *n = yaml_document_get_node(c->doc, *it);
            if (!expect(c, n, YAML_MAPPING_NODE, "a layout item"))
                continue;
            r->items = xrealloc(r->items, (r->nitems + 1) * sizeof(*r->items));
            struct sdf_item *item = &r->items[r->nitems++];
            memset(item, 0, sizeof(*item));
            item->loc = loc_of(n);
            item->kind = (enum sdf_item_kind) - 1;
            static const char *const keys[] = {"name",        "queue", "buffers",
                                               "buffer_size", "bytes", NULL};
            static const char *const req[] = {"name", NULL};
            require(c, n, "layout item", req);
            int kinds = has_key(c, n, "queue") + has_key(c, n, "buffers") + has_key(c, n, "bytes");
            if (kinds != 1)
                sdf_error(c->errs, loc_of(n),
                          "layout item has %d kinds; expected exactly one of 'queue', "
                          "'buffers' or 'bytes'",
                          kinds);
            if (has_key(c, n, "buffers") != has_key(c, n, "buffer_size"))
                sdf_error(c->errs, loc_of(n),
                          "layout item has 'buffers' without 'buffer_size' or the reverse; "
                          "expected both together");
            for_keys(c, n, "layout item", keys, item_key, item);
        }
    } else if (!strcmp(key, "map")) {
        if (!expect(c, v, YAML_SEQUENCE_NODE, "map"))
            return;
        for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
             it++) {
            yaml_node_t *n = yaml_document_get_node(c->doc, *it);
            if (!expect(c, n, YAML_MAPPING_NODE, "a mapping of the region"))
                continue;
            r->maps = xrealloc(r->maps, (r->nmaps + 1) * sizeof(*r->maps));
            struct sdf_mapping *m = &r->maps[r->nmaps++];
            memset(m, 0, sizeof(*m));
            m->loc = loc_of(n);
            m->comp = -1;
            static const char *const keys[] = {"component", "perms", "vaddr", "setvar_vaddr", NULL};
            static const char *const req[] = {"component", "perms", NULL};
            require(c, n, "region mapping", req);
            for_keys(c, n, "region mapping", keys, map_key, m);
        }
    }
}

static void parse_regions(struct ctx *c, yaml_node_t *seq, struct sdf_system *sys)
{
    if (!expect(c, seq, YAML_SEQUENCE_NODE, "regions"))
        return;
    for (yaml_node_item_t *it = seq->data.sequence.items.start; it < seq->data.sequence.items.top;
         it++) {
        yaml_node_t *n = yaml_document_get_node(c->doc, *it);
        if (!expect(c, n, YAML_MAPPING_NODE, "a region"))
            continue;
        sys->regions = xrealloc(sys->regions, (sys->nregions + 1) * sizeof(*sys->regions));
        struct sdf_region *r = &sys->regions[sys->nregions++];
        memset(r, 0, sizeof(*r));
        r->loc = loc_of(n);
        static const char *const keys[] = {"name", "size", "layout", "map", NULL};
        static const char *const req[] = {"name", "size", NULL};
        require(c, n, "region", req);
        for_keys(c, n, "region", keys, region_key, r);
    }
}

/* ---- channels ---------------------------------------------------------- */

static void end_key(struct ctx *c, const char *key, yaml_node_t *v, void *obj)
{
    struct sdf_end *e = obj;
    uint64_t x;
    if (!strcmp(key, "component")) {
        e->component = get_name(c, v, "component");
    } else if (!strcmp(key, "id")) {
        if (get_u64(c, v, "channel id", SDF_MAX_CHANNEL, &x))
            e->id = (uint32_t)x;
    } else if (!strcmp(key, "pp")) {
        get_bool(c, v, "pp", &e->pp);
    }
}

static void channel_key(struct ctx *c, const char *key, yaml_node_t *v, void *obj)
{
    struct sdf_channel *ch = obj;
    if (!strcmp(key, "name")) {
        ch->name = get_name(c, v, "channel name");
    } else if (!strcmp(key, "ends")) {
        if (!expect(c, v, YAML_SEQUENCE_NODE, "ends"))
            return;
        size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
        if (n != 2) {
            sdf_error(c->errs, loc_of(v), "channel has %zu ends; expected exactly 2", n);
            return;
        }
        for (size_t i = 0; i < 2; i++) {
            yaml_node_t *e = yaml_document_get_node(c->doc, v->data.sequence.items.start[i]);
            if (!expect(c, e, YAML_MAPPING_NODE, "a channel end"))
                continue;
            ch->end[i].loc = loc_of(e);
            static const char *const keys[] = {"component", "id", "pp", NULL};
            static const char *const req[] = {"component", "id", NULL};
            require(c, e, "channel end", req);
            for_keys(c, e, "channel end", keys, end_key, &ch->end[i]);
        }
    }
}

static void parse_channels(struct ctx *c, yaml_node_t *seq, struct sdf_system *sys)
{
    if (!expect(c, seq, YAML_SEQUENCE_NODE, "channels"))
        return;
    for (yaml_node_item_t *it = seq->data.sequence.items.start; it < seq->data.sequence.items.top;
         it++) {
        yaml_node_t *n = yaml_document_get_node(c->doc, *it);
        if (!expect(c, n, YAML_MAPPING_NODE, "a channel"))
            continue;
        sys->channels = xrealloc(sys->channels, (sys->nchannels + 1) * sizeof(*sys->channels));
        struct sdf_channel *ch = &sys->channels[sys->nchannels++];
        memset(ch, 0, sizeof(*ch));
        ch->loc = loc_of(n);
        ch->end[0].comp = ch->end[1].comp = -1;
        static const char *const keys[] = {"name", "ends", NULL};
        static const char *const req[] = {"ends", NULL};
        require(c, n, "channel", req);
        for_keys(c, n, "channel", keys, channel_key, ch);
    }
}

static void top_key(struct ctx *c, const char *key, yaml_node_t *v, void *obj)
{
    struct sdf_system *sys = obj;
    if (!strcmp(key, "system"))
        sys->name = get_name(c, v, "system name");
    else if (!strcmp(key, "components"))
        parse_components(c, v, sys);
    else if (!strcmp(key, "regions"))
        parse_regions(c, v, sys);
    else if (!strcmp(key, "channels"))
        parse_channels(c, v, sys);
}

/* Where byte `offset` of buf is, for errors libyaml reports by offset. */
static struct sdf_loc loc_at(const char *buf, size_t len, size_t offset)
{
    struct sdf_loc l = {1, 1};
    for (size_t i = 0; i < offset && i < len; i++) {
        if (buf[i] == '\n') {
            l.line++;
            l.col = 1;
        } else {
            l.col++;
        }
    }
    return l;
}

static void syntax_error(yaml_parser_t *p, const char *buf, size_t len, struct sdf_errors *errs)
{
    /* Reader errors (bad UTF-8, control bytes) carry an offset, not a mark. */
    struct sdf_loc l =
        p->error == YAML_READER_ERROR
            ? loc_at(buf, len, p->problem_offset)
            : (struct sdf_loc){(int)p->problem_mark.line + 1, (int)p->problem_mark.column + 1};
    if (p->error == YAML_READER_ERROR && p->problem_value >= 0)
        sdf_error(errs, l, "YAML syntax: %s (byte 0x%02x); expected UTF-8 text",
                  p->problem ? p->problem : "unreadable input", (unsigned)p->problem_value & 0xff);
    else
        sdf_error(errs, l, "YAML syntax: %s%s%s; expected well-formed YAML",
                  p->problem ? p->problem : "malformed document", p->context ? " " : "",
                  p->context ? p->context : "");
}

/* A pass over the events before building the document, to refuse what a
 * hostile file could use to cost minutes and gigabytes: aliases (which
 * expand), deep nesting (libyaml slows down with depth), and further
 * documents that would otherwise be ignored. */
static bool prescan(const char *buf, size_t len, struct sdf_errors *errs)
{
    yaml_parser_t p;
    yaml_event_t ev;
    int depth = 0, docs = 0;
    bool ok = true;
    yaml_parser_initialize(&p);
    yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
    while (ok) {
        if (!yaml_parser_parse(&p, &ev)) {
            syntax_error(&p, buf, len, errs);
            ok = false;
            break;
        }
        struct sdf_loc l = {(int)ev.start_mark.line + 1, (int)ev.start_mark.column + 1};
        yaml_event_type_t type = ev.type;
        if (type == YAML_ALIAS_EVENT) {
            sdf_error(errs, l,
                      "YAML alias '*%.64s' is not supported; expected every value "
                      "written out",
                      (const char *)ev.data.alias.anchor);
            ok = false;
        } else if (type == YAML_DOCUMENT_START_EVENT && ++docs > 1) {
            sdf_error(errs, l, "a second YAML document; expected exactly one");
            ok = false;
        } else if (type == YAML_MAPPING_START_EVENT || type == YAML_SEQUENCE_START_EVENT) {
            if (++depth > SDF_MAX_DEPTH) {
                sdf_error(errs, l,
                          "nesting deeper than %d levels; expected the flat structure "
                          "of a system description",
                          SDF_MAX_DEPTH);
                ok = false;
            }
        } else if (type == YAML_MAPPING_END_EVENT || type == YAML_SEQUENCE_END_EVENT) {
            depth--;
        }
        yaml_event_delete(&ev);
        if (type == YAML_STREAM_END_EVENT)
            break;
    }
    yaml_parser_delete(&p);
    return ok;
}

/* The whole file, or NULL with an error; descriptions are small by nature. */
static char *read_file(const char *file, size_t *len, struct sdf_errors *errs)
{
    struct sdf_loc top = {1, 1};
    FILE *f = fopen(file, "rb");
    if (!f) {
        sdf_error(errs, top, "cannot open system description: %s", strerror(errno));
        return NULL;
    }
    char *buf = xmalloc(SDF_MAX_FILE + 1);
    *len = fread(buf, 1, SDF_MAX_FILE + 1, f);
    bool failed = ferror(f);
    fclose(f);
    if (failed || *len > SDF_MAX_FILE) {
        if (failed)
            sdf_error(errs, top, "cannot read system description: %s", strerror(errno));
        else
            sdf_error(errs, top,
                      "the file is larger than %d bytes; expected a system "
                      "description of at most that size",
                      SDF_MAX_FILE);
        free(buf);
        return NULL;
    }
    return buf;
}

struct sdf_system *sdf_load(const char *file, const struct sdf_options *opt,
                            struct sdf_errors *errs)
{
    size_t len;
    char *buf = read_file(file, &len, errs);
    if (!buf)
        return NULL;
    if (!prescan(buf, len, errs)) {
        free(buf);
        return NULL;
    }
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
    if (!yaml_parser_load(&parser, &doc)) {
        syntax_error(&parser, buf, len, errs);
        yaml_parser_delete(&parser);
        free(buf);
        return NULL;
    }
    struct sdf_system *sys = xcalloc(1, sizeof(*sys));
    sys->file = xstrdup(file);
    struct ctx c = {&doc, errs};
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root) {
        struct sdf_loc top = {1, 1};
        sdf_error(errs, top,
                  "the file is empty; expected a mapping with 'system', "
                  "'components', 'regions' and 'channels'");
    } else if (expect(&c, root, YAML_MAPPING_NODE, "the document")) {
        static const char *const keys[] = {"system", "components", "regions", "channels", NULL};
        static const char *const req[] = {"system", "components", NULL};
        require(&c, root, "the system description", req);
        for_keys(&c, root, "the system description", keys, top_key, sys);
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    free(buf);

    if (!errs->n)
        sdf_validate(sys, opt, errs);
    if (errs->n) {
        sdf_free(sys);
        return NULL;
    }
    return sys;
}

void sdf_free(struct sdf_system *sys)
{
    if (!sys)
        return;
    for (size_t i = 0; i < sys->ncomps; i++) {
        struct sdf_component *c = &sys->comps[i];
        free(c->name);
        free(c->program);
        free(c->program_path);
        for (size_t k = 0; k < c->nconfig; k++) {
            free(c->config[k].key);
            free(c->config[k].value);
        }
        free(c->config);
    }
    for (size_t i = 0; i < sys->nregions; i++) {
        struct sdf_region *r = &sys->regions[i];
        free(r->name);
        for (size_t k = 0; k < r->nitems; k++)
            free(r->items[k].name);
        free(r->items);
        for (size_t k = 0; k < r->nmaps; k++) {
            free(r->maps[k].component);
            free(r->maps[k].setvar);
        }
        free(r->maps);
    }
    for (size_t i = 0; i < sys->nchannels; i++) {
        free(sys->channels[i].name);
        free(sys->channels[i].end[0].component);
        free(sys->channels[i].end[1].component);
    }
    free(sys->comps);
    free(sys->regions);
    free(sys->channels);
    free(sys->name);
    free(sys->file);
    free(sys);
}
