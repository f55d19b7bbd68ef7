/*
 * System description parser: YAML (through libyaml's document API) into the
 * model of sdf.h.  This file checks shape only: known keys, the right node
 * types, well-formed scalars.  Cross-references are validate.c's job.
 * Errors are collected, not fatal, so one run reports all of them.
 */
#include "sdf/sdf.h"
#include "sdf/internal.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include "common/util.h"
#include "devmux/net.h"

struct ctx {
    yaml_document_t *doc;
    struct sdf_errors *errs;
    struct sdf_net_specs *nets;
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
    uint64_t seen = 0;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
        if (!expect(c, k, YAML_SCALAR_NODE, "a key"))
            continue;
        const char *key = scalar(k);
        const char *const *a = allowed;
        while (*a && strcmp(*a, key))
            a++;
        if (!*a) {
            char list[512] = "";
            for (const char *const *b = allowed; *b; b++)
                snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
                         b == allowed ? "" : ", ", *b);
            sdf_error(c->errs, loc_of(k), "unknown key '%s' in %s; expected one of: %s", key, what,
                      list);
            continue;
        }
        /* Only an allowed key can repeat meaningfully, and there are few of
         * them: one bit each keeps a map of any size linear. */
        uint64_t bit = 1ull << ((a - allowed) & 63);
        if (seen & bit) {
            sdf_error(c->errs, loc_of(k), "key '%s' repeated in %s; expected each key once", key,
                      what);
            continue;
        }
        seen |= bit;
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

/* A duration: an integer with a unit, us, ms or s.  Microseconds out. */
static bool parse_duration_us(const char *s, uint64_t *out)
{
    if (!isdigit((unsigned char)*s))
        return false;
    errno = 0;
    char *end;
    uint64_t v = strtoull(s, &end, 10);
    uint64_t mul;
    if (errno)
        return false;
    if (!strcmp(end, "us"))
        mul = 1;
    else if (!strcmp(end, "ms"))
        mul = 1000;
    else if (!strcmp(end, "s"))
        mul = 1000000;
    else
        return false;
    if (v > UINT32_MAX / mul)
        return false;
    *out = v * mul;
    return true;
}

/* The bounds cgroups accept for a CFS period and quota. */
#define LIMIT_MIN_PERIOD_US 1000u
#define LIMIT_MAX_PERIOD_US 1000000u
#define LIMIT_MIN_BUDGET_US 1000u
#define LIMIT_DEF_PERIOD_US 10000u

static bool get_duration(struct ctx *c, yaml_node_t *v, const char *what, uint64_t min,
                         uint64_t max, uint32_t *out)
{
    if (!expect(c, v, YAML_SCALAR_NODE, what))
        return false;
    uint64_t x;
    if (!parse_duration_us(scalar(v), &x)) {
        sdf_error(c->errs, loc_of(v),
                  "%s '%s' is not a duration; expected an integer with a unit: us, ms or s "
                  "(like 2ms)",
                  what, scalar(v));
        return false;
    }
    if (x < min || x > max) {
        sdf_error(c->errs, loc_of(v),
                  "%s %s is out of range; expected %" PRIu64 "us to %" PRIu64 "us", what, scalar(v),
                  min, max);
        return false;
    }
    *out = (uint32_t)x;
    return true;
}

static void cpu_key(struct ctx *c, const char *key, yaml_node_t *v, void *obj)
{
    struct sdf_limits *l = obj;
    if (!strcmp(key, "budget"))
        get_duration(c, v, "cpu budget", LIMIT_MIN_BUDGET_US, LIMIT_MAX_PERIOD_US,
                     &l->cpu_budget_us);
    else if (!strcmp(key, "period"))
        get_duration(c, v, "cpu period", LIMIT_MIN_PERIOD_US, LIMIT_MAX_PERIOD_US,
                     &l->cpu_period_us);
}

/* cpu: 20%  or  cpu: {budget: 2ms, period: 10ms} (period 10 ms if left out). */
static void parse_cpu(struct ctx *c, yaml_node_t *v, struct sdf_limits *l)
{
    l->cpu_period_us = LIMIT_DEF_PERIOD_US;
    l->cpu_budget_us = 0;
    if (v->type == YAML_SCALAR_NODE && !has_nul(v)) {
        const char *s = scalar(v);
        char *end;
        errno = 0;
        unsigned long pct = isdigit((unsigned char)*s) ? strtoul(s, &end, 10) : 0;
        if (!isdigit((unsigned char)*s) || errno || strcmp(end, "%") || pct < 10 || pct > 100) {
            sdf_error(c->errs, loc_of(v),
                      "cpu '%s' is not a budget; expected a percentage of one CPU from 10%% to "
                      "100%% (like 20%%) or {budget: 2ms, period: 10ms}",
                      s);
            return;
        }
        l->cpu_budget_us = (uint32_t)(LIMIT_DEF_PERIOD_US * pct / 100);
        l->has_cpu = true;
        return;
    }
    if (!expect(c, v, YAML_MAPPING_NODE, "cpu"))
        return;
    static const char *const keys[] = {"budget", "period", NULL};
    static const char *const req[] = {"budget", NULL};
    require(c, v, "cpu", req);
    size_t before = c->errs->n;
    for_keys(c, v, "cpu", keys, cpu_key, l);
    if (c->errs->n != before || !l->cpu_budget_us)
        return;
    if (l->cpu_budget_us > l->cpu_period_us) {
        sdf_error(c->errs, loc_of(v),
                  "cpu budget %uus is longer than its period %uus; expected a budget of at most "
                  "one period",
                  l->cpu_budget_us, l->cpu_period_us);
        return;
    }
    l->has_cpu = true;
}

static void limits_key(struct ctx *c, const char *key, yaml_node_t *v, void *obj)
{
    struct sdf_limits *l = obj;
    uint64_t x;
    if (!strcmp(key, "cpu")) {
        parse_cpu(c, v, l);
    } else if (!strcmp(key, "weight")) {
        if (!get_u64(c, v, "weight", 10000, &x))
            return;
        if (x < 1)
            sdf_error(c->errs, loc_of(v), "weight 0 is too small; expected 1 to 10000");
        else {
            l->weight = (uint32_t)x;
            l->has_weight = true;
        }
    } else if (!strcmp(key, "memory")) {
        if (!get_u64(c, v, "memory", 1ull << 40, &x))
            return;
        if (x < (1u << 20))
            sdf_error(c->errs, loc_of(v),
                      "memory %" PRIu64 " is too small; expected at least 1M (a private "
                      "allowance on top of the component's regions)",
                      x);
        else {
            l->memory = x;
            l->has_memory = true;
        }
    } else if (!strcmp(key, "threads")) {
        if (!get_u64(c, v, "threads", 4096, &x))
            return;
        if (x < 1)
            sdf_error(c->errs, loc_of(v), "threads 0 is too small; expected 1 to 4096");
        else {
            l->threads = (uint32_t)x;
            l->has_threads = true;
        }
    }
}

static void parse_limits(struct ctx *c, yaml_node_t *v, struct sdf_limits *l)
{
    if (!expect(c, v, YAML_MAPPING_NODE, "limits"))
        return;
    l->loc = loc_of(v);
    static const char *const keys[] = {"cpu", "weight", "memory", "threads", NULL};
    for_keys(c, v, "limits", keys, limits_key, l);
}

void sdf_limits_inherit(struct sdf_limits *dst, const struct sdf_limits *src)
{
    if (!dst->has_cpu && src->has_cpu) {
        dst->has_cpu = true;
        dst->cpu_budget_us = src->cpu_budget_us;
        dst->cpu_period_us = src->cpu_period_us;
    }
    if (!dst->has_weight && src->has_weight) {
        dst->weight = src->weight;
        dst->has_weight = true;
    }
    if (!dst->has_memory && src->has_memory) {
        dst->memory = src->memory;
        dst->has_memory = true;
    }
    if (!dst->has_threads && src->has_threads) {
        dst->threads = src->threads;
        dst->has_threads = true;
    }
    if (!dst->loc.line)
        dst->loc = src->loc;
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

/* ---- devices ----------------------------------------------------------- */

/* Linux refuses other interface names (dev_valid_name); so do we, early. */
static char *get_ifname(struct ctx *c, yaml_node_t *v, const char *what)
{
    if (!expect(c, v, YAML_SCALAR_NODE, what))
        return NULL;
    const char *s = scalar(v);
    size_t n = strlen(s);
    bool ok = n >= 1 && n <= 15 && strcmp(s, ".") && strcmp(s, "..");
    for (size_t i = 0; ok && i < n; i++)
        ok = s[i] != '/' && s[i] != ':' && (unsigned char)s[i] > 0x20 &&
             (unsigned char)s[i] < 0x7f; /* Linux takes 0xa0 for a blank, too */
    if (!ok) {
        sdf_error(c->errs, loc_of(v),
                  "%s '%s' is not a valid interface name; expected 1 to 15 printable ASCII "
                  "characters other than '/' and ':', and not '.' or '..'",
                  what, s);
        return NULL;
    }
    return xstrdup(s);
}

/* A namespace is opened as /run/netns/NAME: a name, never a path. */
static char *get_netns(struct ctx *c, yaml_node_t *v)
{
    char *s = get_name(c, v, "netns");
    if (s && (!strcmp(s, ".") || !strcmp(s, ".."))) {
        sdf_error(c->errs, loc_of(v),
                  "netns '%s' is not a valid name; expected the name of a namespace in "
                  "/run/netns, not '.' or '..'",
                  s);
        free(s);
        return NULL;
    }
    return s;
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* A unicast, non-zero MAC address written as six hex pairs. */
static bool get_mac(struct ctx *c, yaml_node_t *v, const char *what, uint8_t mac[6])
{
    if (!expect(c, v, YAML_SCALAR_NODE, what))
        return false;
    const char *s = scalar(v);
    bool ok = strlen(s) == 17;
    for (int i = 0; ok && i < 6; i++) {
        int hi = hexval(s[3 * i]), lo = hexval(s[3 * i + 1]);
        ok = hi >= 0 && lo >= 0 && (i == 5 || s[3 * i + 2] == ':');
        if (ok)
            mac[i] = (uint8_t)(hi << 4 | lo);
    }
    if (!ok) {
        sdf_error(c->errs, loc_of(v),
                  "%s '%s' is not a MAC address; expected six hex pairs separated by ':', like "
                  "02:00:00:00:00:0a",
                  what, s);
        return false;
    }
    if (mac[0] & 1) {
        sdf_error(c->errs, loc_of(v),
                  "%s %s is a multicast address; expected a unicast address (lowest bit of the "
                  "first byte clear)",
                  what, s);
        return false;
    }
    if (!(mac[0] | mac[1] | mac[2] | mac[3] | mac[4] | mac[5])) {
        sdf_error(c->errs, loc_of(v), "%s %s is all zeros; expected a non-zero unicast address",
                  what, s);
        return false;
    }
    return true;
}

static void packet_key(struct ctx *c, const char *key, yaml_node_t *v, void *obj)
{
    struct sdf_device *d = obj;
    /* A device given both kinds (an error already) comes here twice. */
    if (!strcmp(key, "interface")) {
        free(d->ifname);
        d->ifname = get_ifname(c, v, "interface");
    } else if (!strcmp(key, "netns")) {
        free(d->netns);
        d->netns = get_netns(c, v);
    }
}

static void tap_key(struct ctx *c, const char *key, yaml_node_t *v, void *obj)
{
    struct sdf_device *d = obj;
    if (!strcmp(key, "ifname")) {
        free(d->ifname);
        d->ifname = get_ifname(c, v, "ifname");
    } else if (!strcmp(key, "netns")) {
        free(d->netns);
        d->netns = get_netns(c, v);
    } else if (!strcmp(key, "mac")) {
        d->has_mac = get_mac(c, v, "mac", d->mac);
    }
}

static void parse_packet(struct ctx *c, yaml_node_t *v, struct sdf_device *d)
{
    d->kind = SDF_DEV_PACKET;
    if (!expect(c, v, YAML_MAPPING_NODE, "packet"))
        return;
    static const char *const keys[] = {"interface", "netns", NULL};
    static const char *const req[] = {"interface", NULL};
    require(c, v, "packet", req);
    for_keys(c, v, "packet", keys, packet_key, d);
}

/* A TAP client's `tap:` has no mac: the client's own is used. */
static void parse_tap(struct ctx *c, yaml_node_t *v, struct sdf_device *d, bool with_mac)
{
    d->kind = SDF_DEV_TAP;
    if (!expect(c, v, YAML_MAPPING_NODE, "tap"))
        return;
    static const char *const keys[] = {"ifname", "netns", "mac", NULL};
    static const char *const keys_nomac[] = {"ifname", "netns", NULL};
    static const char *const req[] = {"ifname", NULL};
    require(c, v, "tap", req);
    for_keys(c, v, "tap", with_mac ? keys : keys_nomac, tap_key, d);
}

static void pci_key(struct ctx *c, const char *key, yaml_node_t *v, void *obj)
{
    struct sdf_device *d = obj;
    if (!strcmp(key, "machine")) {
        free(d->machine);
        d->machine = get_name(c, v, "machine");
    } else if (!strcmp(key, "device")) {
        free(d->mdevice);
        d->mdevice = get_name(c, v, "device");
    }
}

/* A grant of one device of a machine: `pci: {machine: M, device: D}`. */
static void parse_pci(struct ctx *c, yaml_node_t *v, struct sdf_device *d, const char *what)
{
    d->kind = SDF_DEV_PCI;
    d->mach = d->mdev = -1;
    if (!expect(c, v, YAML_MAPPING_NODE, what))
        return;
    static const char *const keys[] = {"machine", "device", NULL};
    require(c, v, what, keys);
    for_keys(c, v, what, keys, pci_key, d);
}

static void device_key(struct ctx *c, const char *key, yaml_node_t *v, void *obj)
{
    struct sdf_device *d = obj;
    uint64_t x;
    if (!strcmp(key, "name")) {
        d->name = get_name(c, v, "device name");
    } else if (!strcmp(key, "packet")) {
        parse_packet(c, v, d);
    } else if (!strcmp(key, "tap")) {
        parse_tap(c, v, d, true);
    } else if (!strcmp(key, "pci")) {
        parse_pci(c, v, d, "pci");
    } else if (!strcmp(key, "irq")) {
        if (get_u64(c, v, "irq", SDF_MAX_CHANNEL, &x))
            d->irq = (uint32_t)x;
    }
}

static void parse_devices(struct ctx *c, yaml_node_t *v, struct sdf_component *comp)
{
    if (!expect(c, v, YAML_SEQUENCE_NODE, "devices"))
        return;
    size_t count = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    if (count > SDF_MAX_DEVICES) {
        sdf_error(c->errs, loc_of(v), "component has %zu devices; expected at most %d", count,
                  SDF_MAX_DEVICES);
        return;
    }
    for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
         it++) {
        yaml_node_t *n = yaml_document_get_node(c->doc, *it);
        if (!expect(c, n, YAML_MAPPING_NODE, "a device"))
            continue;
        comp->devices = xrealloc(comp->devices, (comp->ndevices + 1) * sizeof(*comp->devices));
        struct sdf_device *d = &comp->devices[comp->ndevices++];
        memset(d, 0, sizeof(*d));
        d->loc = loc_of(n);
        static const char *const keys[] = {"name", "packet", "tap", "pci", "irq", NULL};
        static const char *const req[] = {"name", "irq", NULL};
        require(c, n, "device", req);
        int kinds = has_key(c, n, "packet") + has_key(c, n, "tap") + has_key(c, n, "pci");
        if (kinds != 1)
            sdf_error(c->errs, loc_of(n),
                      "device has %d kinds; expected exactly one of 'packet', 'tap' or 'pci'",
                      kinds);
        for_keys(c, n, "device", keys, device_key, d);
    }
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
        size_t npairs = (size_t)(v->data.mapping.pairs.top - v->data.mapping.pairs.start);
        if (npairs > SDF_MAX_CONFIG_KEYS) {
            sdf_error(c->errs, loc_of(v), "config has %zu keys; expected at most %d", npairs,
                      SDF_MAX_CONFIG_KEYS);
            return;
        }
        /* Any key is allowed in a config; repeats are still rejected. */
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
    } else if (!strcmp(key, "devices")) {
        parse_devices(c, v, comp);
    } else if (!strcmp(key, "limits")) {
        parse_limits(c, v, &comp->limits);
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
        static const char *const keys[] = {"name",    "program", "config", "fault",
                                           "devices", "limits",  NULL};
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
    } else if (!strcmp(key, "machine")) {
        r->machine = get_name(c, v, "machine");
        r->machine_loc = loc_of(v);
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
        size_t nmaps = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
        if (nmaps > SDF_MAX_COMPONENTS) {
            sdf_error(c->errs, loc_of(v),
                      "map has %zu entries; expected at most %d (one per component)", nmaps,
                      SDF_MAX_COMPONENTS);
            return;
        }
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
        r->mach = -1;
        static const char *const keys[] = {"name", "size", "machine", "layout", "map", NULL};
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

/* ---- networks ---------------------------------------------------------- */

/* Bits per second take SI multiples, as link speeds do: K = 1000. */
static bool parse_bits(const char *s, uint64_t *out)
{
    if (!isdigit((unsigned char)*s))
        return false;
    errno = 0;
    char *end;
    uint64_t v = strtoull(s, &end, 10);
    if (errno)
        return false;
    uint64_t mul = 1;
    if (*end) {
        if (*end == 'K' || *end == 'k')
            mul = 1000;
        else if (*end == 'M')
            mul = 1000000;
        else if (*end == 'G')
            mul = 1000000000;
        else
            return false;
        if (end[1])
            return false;
    }
    if (v > UINT64_MAX / mul)
        return false;
    *out = v * mul;
    return true;
}

#define NET_MIN_BUFFER_SIZE (((NET_MAX_FRAME + 63) / 64) * 64)
#define NET_MAX_BITS        1000000000000ull /* 1 Tbit/s */

static bool get_range(struct ctx *c, yaml_node_t *v, const char *what, uint64_t min, uint64_t max,
                      uint32_t *out)
{
    uint64_t x;
    if (!get_u64(c, v, what, max, &x))
        return false;
    if (x < min) {
        sdf_error(c->errs, loc_of(v),
                  "%s %" PRIu64 " is too small; expected %" PRIu64 " to %" PRIu64, what, x, min,
                  max);
        return false;
    }
    *out = (uint32_t)x;
    return true;
}

/* rate: and rx_rate: have one shape; this is where one of them goes. */
struct rate_target {
    const char *what; /* "rate" or "rx_rate" */
    uint64_t *bits, *burst;
    struct sdf_loc *burst_loc;
};

static void rate_key(struct ctx *c, const char *key, yaml_node_t *v, void *obj)
{
    struct rate_target *t = obj;
    if (!strcmp(key, "bits")) {
        if (!expect(c, v, YAML_SCALAR_NODE, "rate bits"))
            return;
        uint64_t x;
        if (!parse_bits(scalar(v), &x))
            sdf_error(c->errs, loc_of(v),
                      "%s bits '%s' is not a rate; expected bits per second as a decimal "
                      "integer with an optional K, M or G suffix (10^3, 10^6, 10^9)",
                      t->what, scalar(v));
        else if (x < 8000 || x > NET_MAX_BITS)
            sdf_error(c->errs, loc_of(v),
                      "%s bits %" PRIu64 " is out of range; expected 8000 (8K) to %llu "
                      "bits per second",
                      t->what, x, NET_MAX_BITS);
        else
            *t->bits = x;
    } else if (!strcmp(key, "burst")) {
        *t->burst_loc = loc_of(v);
        get_u64(c, v, "burst", 1ull << 30, t->burst);
    }
}

static void parse_rate(struct ctx *c, yaml_node_t *v, struct rate_target *t)
{
    if (!expect(c, v, YAML_MAPPING_NODE, t->what))
        return;
    static const char *const keys[] = {"bits", "burst", NULL};
    require(c, v, t->what, keys);
    for_keys(c, v, t->what, keys, rate_key, t);
}

/* One entry of ipv4: or ipv6:, an address or a prefix ("10.77.0.10",
 * "10.77.0.0/24", "fd00::10", "fd00::/64"). */
static void get_addr(struct ctx *c, yaml_node_t *v, int family, struct sdf_net_client_spec *cl)
{
    const char *what = family == AF_INET ? "ipv4 address" : "ipv6 address";
    if (!expect(c, v, YAML_SCALAR_NODE, what))
        return;
    const char *s = scalar(v);
    unsigned max = family == AF_INET ? 32 : 128, prefix = max;
    char host[INET6_ADDRSTRLEN + 1];
    const char *slash = strchr(s, '/');
    size_t n = slash ? (size_t)(slash - s) : strlen(s);
    bool ok = n < sizeof(host);
    if (ok) {
        memcpy(host, s, n);
        host[n] = 0;
    }
    if (ok && slash) {
        char *end;
        errno = 0;
        unsigned long p = strtoul(slash + 1, &end, 10);
        ok = isdigit((unsigned char)slash[1]) && !*end && !errno && p <= max;
        prefix = (unsigned)p;
    }
    struct sdf_net_addr a = {.family = family, .prefix = prefix, .loc = loc_of(v)};
    if (!ok || inet_pton(family, host, a.addr) != 1) {
        sdf_error(c->errs, loc_of(v),
                  "%s '%s' is not valid; expected %s, optionally with /prefix (0 to %u)", what, s,
                  family == AF_INET ? "a dotted IPv4 address like 10.77.0.10"
                                    : "an IPv6 address like fd00::10",
                  max);
        return;
    }
    /* Bits below the prefix must be zero, as in a route: "10.77.0.10/24"
     * is more likely a mistake than a wish for the whole /24. */
    for (unsigned b = prefix; b < max; b++)
        if (a.addr[b / 8] >> (7 - b % 8) & 1u) {
            sdf_error(c->errs, loc_of(v),
                      "%s '%s' has bits set below its /%u prefix; expected the prefix's first "
                      "address, or no /prefix for a single address",
                      what, s, prefix);
            return;
        }
    if (prefix == 0) {
        sdf_error(c->errs, loc_of(v),
                  "%s '%s' would allow every address; expected a prefix of at least /1", what, s);
        return;
    }
    cl->addrs = xrealloc(cl->addrs, (cl->naddrs + 1) * sizeof(*cl->addrs));
    cl->addrs[cl->naddrs++] = a;
}

static void parse_addrs(struct ctx *c, yaml_node_t *v, int family, struct sdf_net_client_spec *cl)
{
    const char *what = family == AF_INET ? "ipv4" : "ipv6";
    if (!expect(c, v, YAML_SEQUENCE_NODE, what))
        return;
    size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    if (n > NET_MAX_ADDRS) {
        sdf_error(c->errs, loc_of(v), "%s lists %zu addresses; expected at most %d", what, n,
                  NET_MAX_ADDRS);
        return;
    }
    for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++)
        get_addr(c, yaml_document_get_node(c->doc, *it), family, cl);
}

/* Keys of a client's config that the network sets itself. */
static const char *const net_reserved_config[] = {"net", "client", "mac", NULL};

static void client_key(struct ctx *c, const char *key, yaml_node_t *v, void *obj)
{
    struct sdf_net_client_spec *cl = obj;
    if (!strcmp(key, "name")) {
        cl->comp.name = get_name(c, v, "client name");
        cl->name_loc = loc_of(v);
    } else if (!strcmp(key, "tap")) {
        cl->has_tap = true;
        parse_tap(c, v, &cl->tap, false);
    } else if (!strcmp(key, "program") || !strcmp(key, "fault") || !strcmp(key, "limits")) {
        component_key(c, key, v, &cl->comp);
    } else if (!strcmp(key, "config")) {
        cl->has_config = true;
        cl->config_loc = loc_of(v);
        component_key(c, key, v, &cl->comp);
        if (v->type != YAML_MAPPING_NODE)
            return;
        for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top;
             p++) {
            yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
            for (const char *const *r = net_reserved_config; *r; r++)
                if (k->type == YAML_SCALAR_NODE && !strcmp(scalar(k), *r))
                    sdf_error(c->errs, loc_of(k),
                              "config key '%s' is set by the network; expected other keys "
                              "(net, client and mac are given to every client)",
                              *r);
        }
    } else if (!strcmp(key, "mac")) {
        cl->mac_loc = loc_of(v);
        cl->has_mac = get_mac(c, v, "client mac", cl->mac);
    } else if (!strcmp(key, "buffers")) {
        cl->buffers_loc = loc_of(v);
        get_range(c, v, "client buffers", 8, 16384, &cl->buffers);
    } else if (!strcmp(key, "rx_share")) {
        cl->rx_share_loc = loc_of(v);
        get_range(c, v, "rx_share", 1, 65536, &cl->rx_share);
    } else if (!strcmp(key, "ipv4")) {
        parse_addrs(c, v, AF_INET, cl);
    } else if (!strcmp(key, "ipv6")) {
        parse_addrs(c, v, AF_INET6, cl);
    } else if (!strcmp(key, "dhcp")) {
        get_bool(c, v, "dhcp", &cl->dhcp);
    } else if (!strcmp(key, "broadcast")) {
        get_bool(c, v, "broadcast", &cl->broadcast);
    } else if (!strcmp(key, "multicast")) {
        get_bool(c, v, "multicast", &cl->multicast);
    } else if (!strcmp(key, "peers")) {
        if (!expect(c, v, YAML_SEQUENCE_NODE, "peers"))
            return;
        if (v->data.sequence.items.top - v->data.sequence.items.start >= NET_MAX_CLIENTS) {
            sdf_error(c->errs, loc_of(v), "peers lists %d names; expected at most %d",
                      (int)(v->data.sequence.items.top - v->data.sequence.items.start),
                      NET_MAX_CLIENTS - 1);
            return;
        }
        for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
             it++) {
            yaml_node_t *e = yaml_document_get_node(c->doc, *it);
            char *peer = get_name(c, e, "peer");
            if (!peer)
                continue;
            cl->peers = xrealloc(cl->peers, (cl->npeers + 1) * sizeof(*cl->peers));
            cl->peer_locs = xrealloc(cl->peer_locs, (cl->npeers + 1) * sizeof(*cl->peer_locs));
            cl->peers[cl->npeers] = peer;
            cl->peer_locs[cl->npeers++] = loc_of(e);
        }
    } else if (!strcmp(key, "rate")) {
        cl->has_rate = true;
        struct rate_target t = {"rate", &cl->rate_bits, &cl->burst, &cl->burst_loc};
        parse_rate(c, v, &t);
    } else if (!strcmp(key, "rx_rate")) {
        cl->has_rx_rate = true;
        struct rate_target t = {"rx_rate", &cl->rx_rate_bits, &cl->rx_burst, &cl->rx_burst_loc};
        parse_rate(c, v, &t);
    }
}

static void parse_client(struct ctx *c, yaml_node_t *n, struct sdf_net_client_spec *cl)
{
    memset(cl, 0, sizeof(*cl));
    cl->loc = cl->name_loc = cl->comp.loc = loc_of(n);
    cl->comp.fault = SDF_FAULT_RESTART;
    cl->comp.backoff_min_ms = 50;
    cl->comp.backoff_max_ms = 1000;
    cl->buffers = 256;
    cl->broadcast = cl->multicast = true;
    static const char *const keys[] = {"name",   "tap",  "program", "config",    "fault",
                                       "limits", "mac",  "buffers", "broadcast", "multicast",
                                       "peers",  "rate", "rx_rate", "rx_share",  "ipv4",
                                       "ipv6",   "dhcp", NULL};
    static const char *const req[] = {"name", NULL};
    require(c, n, "client", req);
    bool tap = has_key(c, n, "tap"), program = has_key(c, n, "program");
    if (tap == program)
        sdf_error(c->errs, loc_of(n),
                  "client has %s; expected exactly one of 'tap' (a TAP interface) or 'program' "
                  "(its own component)",
                  tap ? "both 'tap' and 'program'" : "neither 'tap' nor 'program'");
    for_keys(c, n, "client", keys, client_key, cl);
    if (tap && !program && cl->has_config)
        sdf_error(c->errs, cl->config_loc,
                  "config given to a TAP client; expected config only with 'program'");
}

static void nic_key(struct ctx *c, const char *key, yaml_node_t *v, void *obj)
{
    struct sdf_net_spec *net = obj;
    if (!strcmp(key, "packet")) {
        net->has_nic = true;
        parse_packet(c, v, &net->nic);
    } else if (!strcmp(key, "virtio")) {
        net->has_nic = true;
        parse_pci(c, v, &net->nic, "virtio");
    }
}

static void driver_key(struct ctx *c, const char *key, yaml_node_t *v, void *obj)
{
    struct sdf_net_spec *net = obj;
    component_key(c, key, v, &net->driver);
    if (strcmp(key, "config") || v->type != YAML_MAPPING_NODE)
        return;
    for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        if (k->type == YAML_SCALAR_NODE &&
            (!strcmp(scalar(k), "net") || !strcmp(scalar(k), "interface")))
            sdf_error(c->errs, loc_of(k),
                      "config key '%s' is set by the network; expected other keys (net and "
                      "interface are given to the driver)",
                      scalar(k));
    }
}

/* A network's limits: {core: ..., clients: ...}: defaults for its trusted
 * components and for its clients. */
static void net_limits_key(struct ctx *c, const char *key, yaml_node_t *v, void *obj)
{
    struct sdf_net_spec *net = obj;
    parse_limits(c, v, !strcmp(key, "core") ? &net->core_limits : &net->client_limits);
}

static void network_key(struct ctx *c, const char *key, yaml_node_t *v, void *obj)
{
    struct sdf_net_spec *net = obj;
    if (!strcmp(key, "name")) {
        net->name = get_name(c, v, "network name");
        net->name_loc = loc_of(v);
    } else if (!strcmp(key, "nic")) {
        if (!expect(c, v, YAML_MAPPING_NODE, "nic"))
            return;
        /* One key per kind of NIC: a host interface, or a virtio-net
         * device of a machine. */
        static const char *const kinds[] = {"packet", "virtio", NULL};
        int n = 0;
        for (const char *const *k = kinds; *k; k++)
            n += has_key(c, v, *k);
        if (n != 1)
            sdf_error(c->errs, loc_of(v),
                      "nic has %d kinds; expected exactly one of: packet, virtio", n);
        for_keys(c, v, "nic", kinds, nic_key, net);
    } else if (!strcmp(key, "driver")) {
        if (!expect(c, v, YAML_MAPPING_NODE, "driver"))
            return;
        net->driver.loc = loc_of(v);
        static const char *const keys[] = {"program", "config", "fault", "limits", NULL};
        for_keys(c, v, "driver", keys, driver_key, net);
    } else if (!strcmp(key, "buffers")) {
        net->buffers_loc = loc_of(v);
        get_range(c, v, "network buffers", 16, 65536, &net->buffers);
    } else if (!strcmp(key, "limits")) {
        if (!expect(c, v, YAML_MAPPING_NODE, "limits"))
            return;
        static const char *const keys[] = {"core", "clients", NULL};
        for_keys(c, v, "network limits", keys, net_limits_key, net);
    } else if (!strcmp(key, "buffer_size")) {
        uint32_t x;
        if (!get_range(c, v, "buffer_size", NET_MIN_BUFFER_SIZE, 65536, &x))
            return;
        if (x % 64)
            sdf_error(c->errs, loc_of(v),
                      "buffer_size %u is not a multiple of 64; expected a multiple of the cache "
                      "line",
                      x);
        else
            net->buffer_size = x;
    } else if (!strcmp(key, "clients")) {
        if (!expect(c, v, YAML_SEQUENCE_NODE, "clients"))
            return;
        net->clients_loc = loc_of(v);
        size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
        if (n < 1 || n > NET_MAX_CLIENTS) {
            sdf_error(c->errs, loc_of(v), "network has %zu clients; expected 1 to %d", n,
                      NET_MAX_CLIENTS);
            return;
        }
        for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
             it++) {
            yaml_node_t *e = yaml_document_get_node(c->doc, *it);
            if (!expect(c, e, YAML_MAPPING_NODE, "a client"))
                continue;
            net->clients = xrealloc(net->clients, (net->nclients + 1) * sizeof(*net->clients));
            parse_client(c, e, &net->clients[net->nclients++]);
        }
    }
}

static void parse_networks(struct ctx *c, yaml_node_t *seq)
{
    if (!expect(c, seq, YAML_SEQUENCE_NODE, "networks"))
        return;
    struct sdf_net_specs *nets = c->nets;
    for (yaml_node_item_t *it = seq->data.sequence.items.start; it < seq->data.sequence.items.top;
         it++) {
        yaml_node_t *n = yaml_document_get_node(c->doc, *it);
        if (!expect(c, n, YAML_MAPPING_NODE, "a network"))
            continue;
        nets->v = xrealloc(nets->v, (nets->n + 1) * sizeof(*nets->v));
        struct sdf_net_spec *net = &nets->v[nets->n++];
        memset(net, 0, sizeof(*net));
        net->loc = net->name_loc = net->driver.loc = loc_of(n);
        net->driver.fault = SDF_FAULT_RESTART;
        net->driver.backoff_min_ms = 50;
        net->driver.backoff_max_ms = 1000;
        net->buffers = 512;
        net->buffer_size = 2048;
        static const char *const keys[] = {"name",        "nic",     "driver", "buffers",
                                           "buffer_size", "clients", "limits", NULL};
        static const char *const req[] = {"name", "nic", "clients", NULL};
        require(c, n, "network", req);
        for_keys(c, n, "network", keys, network_key, net);
    }
}

/* ---- machines ---------------------------------------------------------- */

/* QEMU reads -device as KEY=VALUE pairs split on ','; a name that could
 * carry a ',' or '=' would let the description inject options. */
static char *get_word(struct ctx *c, yaml_node_t *v, const char *what)
{
    if (!expect(c, v, YAML_SCALAR_NODE, what))
        return NULL;
    const char *s = scalar(v);
    size_t n = strlen(s);
    bool ok = n > 0 && n <= 64;
    for (size_t i = 0; ok && i < n; i++)
        ok = (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
             (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-' || s[i] == '.';
    if (!ok) {
        sdf_error(c->errs, loc_of(v),
                  "%s '%s' is not valid; expected 1 to 64 characters of [A-Za-z0-9_.-]", what, s);
        return NULL;
    }
    return xstrdup(s);
}

/* "SS.F": slot and function on bus 0, in hex, as QEMU's addr= takes it. */
static void get_pci_addr(struct ctx *c, yaml_node_t *v, struct sdf_machine_device *d)
{
    if (!expect(c, v, YAML_SCALAR_NODE, "pci"))
        return;
    const char *s = scalar(v);
    unsigned slot, fn;
    int used = -1;
    if (sscanf(s, "%2x.%1x%n", &slot, &fn, &used) != 2 || used != (int)strlen(s) ||
        !isxdigit((unsigned char)s[0]) || slot < 1 || slot > 0x1e || fn != 0) {
        sdf_error(c->errs, loc_of(v),
                  "pci address '%s' is not usable; expected SLOT.0 with SLOT in hex from 01 to "
                  "1e (00 is the host bridge, 1f the chipset; function 0 only)",
                  s);
        return;
    }
    d->slot = (int)slot;
    d->func = (int)fn;
}

static void wire_tap_key(struct ctx *c, const char *key, yaml_node_t *v, void *obj)
{
    struct sdf_machine_device *d = obj;
    if (!strcmp(key, "netns")) {
        free(d->wire_netns);
        d->wire_netns = get_netns(c, v);
    } else if (!strcmp(key, "ifname")) {
        free(d->wire_ifname);
        d->wire_ifname = get_ifname(c, v, "ifname");
    }
}

static void wire_key(struct ctx *c, const char *key, yaml_node_t *v, void *obj)
{
    struct sdf_machine_device *d = obj;
    if (!strcmp(key, "tap")) {
        d->wire = SDF_WIRE_TAP;
        if (!expect(c, v, YAML_MAPPING_NODE, "tap"))
            return;
        static const char *const keys[] = {"netns", "ifname", NULL};
        static const char *const req[] = {"ifname", NULL};
        require(c, v, "tap", req);
        for_keys(c, v, "tap", keys, wire_tap_key, d);
    } else if (!strcmp(key, "user")) {
        d->wire = SDF_WIRE_USER;
        if (v->type != YAML_MAPPING_NODE ||
            v->data.mapping.pairs.top != v->data.mapping.pairs.start)
            sdf_error(c->errs, loc_of(v), "user takes no options; expected user: {}");
    }
}

static void drive_key(struct ctx *c, const char *key, yaml_node_t *v, void *obj)
{
    struct sdf_machine_device *d = obj;
    if (!strcmp(key, "file")) {
        if (!expect(c, v, YAML_SCALAR_NODE, "file"))
            return;
        if (has_nul(v) || scalar(v)[0] != '/') {
            sdf_error(c->errs, loc_of(v),
                      "drive file '%s' is not an absolute path; expected a "
                      "path starting with '/'",
                      scalar(v));
            return;
        }
        d->drive_file = xstrdup(scalar(v));
    } else if (!strcmp(key, "format")) {
        if (!expect(c, v, YAML_SCALAR_NODE, "format"))
            return;
        if (strcmp(scalar(v), "raw") && strcmp(scalar(v), "qcow2"))
            sdf_error(c->errs, loc_of(v), "drive format '%s' is unknown; expected raw or qcow2",
                      scalar(v));
        else
            d->drive_format = xstrdup(scalar(v));
    } else if (!strcmp(key, "readonly")) {
        get_bool(c, v, "readonly", &d->drive_readonly);
    }
}

static void mdevice_key(struct ctx *c, const char *key, yaml_node_t *v, void *obj)
{
    struct sdf_machine_device *d = obj;
    if (!strcmp(key, "name")) {
        d->name = get_name(c, v, "device name");
        d->name_loc = loc_of(v);
    } else if (!strcmp(key, "model")) {
        d->model = get_word(c, v, "model");
    } else if (!strcmp(key, "host")) {
        d->host = get_str(c, v, "host");
    } else if (!strcmp(key, "pci")) {
        get_pci_addr(c, v, d);
    } else if (!strcmp(key, "bus")) {
        d->bus = get_word(c, v, "bus");
    } else if (!strcmp(key, "properties")) {
        if (!expect(c, v, YAML_MAPPING_NODE, "properties"))
            return;
        for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top;
             p++) {
            yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
            yaml_node_t *val = yaml_document_get_node(c->doc, p->value);
            char *kw = get_word(c, k, "property name");
            if (!kw)
                continue;
            static const char *const reserved[] = {"id",    "addr",   "bus", "netdev",
                                                   "drive", "driver", NULL};
            bool bad = false;
            for (const char *const *r = reserved; *r && !bad; r++)
                bad = !strcmp(kw, *r);
            if (bad)
                sdf_error(c->errs, loc_of(k),
                          "property '%s' is set by devmux; expected other properties (name, "
                          "model, pci, bus and wire say what it would)",
                          kw);
            for (size_t i = 0; i < d->nprops && !bad; i++)
                if (!strcmp(d->props[i].key, kw)) {
                    sdf_error(c->errs, loc_of(k),
                              "property '%s' repeated; expected each property once", kw);
                    bad = true;
                }
            if (bad) {
                free(kw);
                continue;
            }
            if (!expect(c, val, YAML_SCALAR_NODE, "a property value") || has_nul(val)) {
                free(kw);
                continue;
            }
            d->props = xrealloc(d->props, (d->nprops + 1) * sizeof(*d->props));
            d->props[d->nprops].key = kw;
            d->props[d->nprops].value = xstrdup(scalar(val));
            d->nprops++;
        }
    } else if (!strcmp(key, "drive")) {
        d->drive_loc = loc_of(v);
        if (!expect(c, v, YAML_MAPPING_NODE, "drive"))
            return;
        static const char *const keys[] = {"file", "format", "readonly", NULL};
        static const char *const req[] = {"file", NULL};
        require(c, v, "drive", req);
        for_keys(c, v, "drive", keys, drive_key, d);
    } else if (!strcmp(key, "wire")) {
        if (!expect(c, v, YAML_MAPPING_NODE, "wire"))
            return;
        static const char *const kinds[] = {"tap", "user", NULL};
        int n = has_key(c, v, "tap") + has_key(c, v, "user");
        if (n != 1)
            sdf_error(c->errs, loc_of(v), "wire has %d kinds; expected exactly one of: tap, user",
                      n);
        for_keys(c, v, "wire", kinds, wire_key, d);
    }
}

static void machine_key(struct ctx *c, const char *key, yaml_node_t *v, void *obj)
{
    struct sdf_machine *m = obj;
    if (!strcmp(key, "name")) {
        m->name = get_name(c, v, "machine name");
        m->name_loc = loc_of(v);
    } else if (!strcmp(key, "backend")) {
        if (!expect(c, v, YAML_SCALAR_NODE, "backend"))
            return;
        if (!strcmp(scalar(v), "qemu"))
            m->backend = SDF_BACKEND_QEMU;
        else if (!strcmp(scalar(v), "vfio"))
            m->backend = SDF_BACKEND_VFIO;
        else
            sdf_error(c->errs, loc_of(v), "backend '%s' is unknown; expected qemu or vfio",
                      scalar(v));
    } else if (!strcmp(key, "memory")) {
        m->memory_loc = loc_of(v);
        uint64_t x;
        if (!get_u64(c, v, "memory", 2ull << 30, &x))
            return;
        if (x < (16u << 20) || x % (1u << 20))
            sdf_error(c->errs, loc_of(v),
                      "memory %" PRIu64 " is not usable; expected whole MiB from 16M to 2G", x);
        else
            m->memory = x;
    } else if (!strcmp(key, "fault")) {
        if (!expect(c, v, YAML_SCALAR_NODE, "fault"))
            return;
        if (!strcmp(scalar(v), "restart"))
            m->fault = SDF_FAULT_RESTART;
        else if (!strcmp(scalar(v), "shutdown"))
            m->fault = SDF_FAULT_SHUTDOWN;
        else
            sdf_error(c->errs, loc_of(v),
                      "machine fault policy '%s' is unknown; expected restart or shutdown",
                      scalar(v));
    } else if (!strcmp(key, "devices")) {
        if (!expect(c, v, YAML_SEQUENCE_NODE, "devices"))
            return;
        size_t count = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
        if (count > SDF_MAX_MACHINE_DEVICES) {
            sdf_error(c->errs, loc_of(v), "machine has %zu devices; expected at most %d", count,
                      SDF_MAX_MACHINE_DEVICES);
            return;
        }
        for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
             it++) {
            yaml_node_t *n = yaml_document_get_node(c->doc, *it);
            if (!expect(c, n, YAML_MAPPING_NODE, "a machine device"))
                continue;
            m->devices = xrealloc(m->devices, (m->ndevices + 1) * sizeof(*m->devices));
            struct sdf_machine_device *d = &m->devices[m->ndevices++];
            memset(d, 0, sizeof(*d));
            d->loc = d->name_loc = loc_of(n);
            d->slot = d->func = -1;
            static const char *const keys[] = {"name",       "model", "host",  "pci", "bus",
                                               "properties", "wire",  "drive", NULL};
            static const char *const req[] = {"name", NULL};
            require(c, n, "machine device", req);
            for_keys(c, n, "machine device", keys, mdevice_key, d);
        }
    }
}

static void parse_machines(struct ctx *c, yaml_node_t *seq, struct sdf_system *sys)
{
    if (!expect(c, seq, YAML_SEQUENCE_NODE, "machines"))
        return;
    for (yaml_node_item_t *it = seq->data.sequence.items.start; it < seq->data.sequence.items.top;
         it++) {
        yaml_node_t *n = yaml_document_get_node(c->doc, *it);
        if (!expect(c, n, YAML_MAPPING_NODE, "a machine"))
            continue;
        sys->machines = xrealloc(sys->machines, (sys->nmachines + 1) * sizeof(*sys->machines));
        struct sdf_machine *m = &sys->machines[sys->nmachines++];
        memset(m, 0, sizeof(*m));
        m->loc = m->name_loc = m->memory_loc = loc_of(n);
        m->memory = 256u << 20;
        m->fault = SDF_FAULT_SHUTDOWN;
        static const char *const keys[] = {"name", "backend", "memory", "fault", "devices", NULL};
        static const char *const req[] = {"name", "devices", NULL};
        require(c, n, "machine", req);
        for_keys(c, n, "machine", keys, machine_key, m);
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
    else if (!strcmp(key, "networks"))
        parse_networks(c, v);
    else if (!strcmp(key, "machines"))
        parse_machines(c, v, sys);
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
    struct sdf_net_specs nets = {0};
    struct ctx c = {&doc, errs, &nets};
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root) {
        struct sdf_loc top = {1, 1};
        sdf_error(errs, top,
                  "the file is empty; expected a mapping with 'system', "
                  "'components', 'regions' and 'channels'");
    } else if (expect(&c, root, YAML_MAPPING_NODE, "the document")) {
        static const char *const keys[] = {"system",   "components", "regions", "channels",
                                           "networks", "machines",   NULL};
        static const char *const req[] = {"system", NULL};
        require(&c, root, "the system description", req);
        for_keys(&c, root, "the system description", keys, top_key, sys);
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    free(buf);

    /* Networks become ordinary components, regions and channels, so that
     * everything below checks them like the rest. */
    if (!errs->n && nets.n)
        sdf_net_expand(sys, &nets, errs);
    sdf_net_specs_free(&nets);
    if (!errs->n)
        sdf_validate(sys, opt, errs);
    if (errs->n) {
        sdf_free(sys);
        return NULL;
    }
    return sys;
}

void sdf_device_free(struct sdf_device *d)
{
    free(d->name);
    free(d->ifname);
    free(d->netns);
    free(d->machine);
    free(d->mdevice);
}

void sdf_component_free(struct sdf_component *c)
{
    free(c->name);
    free(c->program);
    free(c->program_path);
    for (size_t k = 0; k < c->nconfig; k++) {
        free(c->config[k].key);
        free(c->config[k].value);
    }
    free(c->config);
    for (size_t k = 0; k < c->ndevices; k++)
        sdf_device_free(&c->devices[k]);
    free(c->devices);
}

void sdf_free(struct sdf_system *sys)
{
    if (!sys)
        return;
    for (size_t i = 0; i < sys->ncomps; i++)
        sdf_component_free(&sys->comps[i]);
    for (size_t i = 0; i < sys->nregions; i++) {
        struct sdf_region *r = &sys->regions[i];
        free(r->name);
        free(r->machine);
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
    for (size_t i = 0; i < sys->nnetworks; i++) {
        for (size_t k = 0; k < sys->networks[i].nclients; k++) {
            free(sys->networks[i].clients[k].name);
            free(sys->networks[i].clients[k].addrs);
        }
        free(sys->networks[i].clients);
        free(sys->networks[i].name);
    }
    free(sys->networks);
    for (size_t i = 0; i < sys->nmachines; i++) {
        struct sdf_machine *m = &sys->machines[i];
        for (size_t k = 0; k < m->ndevices; k++) {
            struct sdf_machine_device *d = &m->devices[k];
            free(d->name);
            free(d->model);
            free(d->host);
            free(d->bus);
            for (size_t j = 0; j < d->nprops; j++) {
                free(d->props[j].key);
                free(d->props[j].value);
            }
            free(d->props);
            free(d->wire_netns);
            free(d->wire_ifname);
            free(d->drive_file);
            free(d->drive_format);
        }
        free(m->devices);
        free(m->name);
    }
    free(sys->machines);
    free(sys->comps);
    free(sys->regions);
    free(sys->channels);
    free(sys->name);
    free(sys->file);
    free(sys);
}
