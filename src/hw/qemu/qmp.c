#include "hw/qemu/qmp.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A deadline of -1 means "do not wait at all". */
static int64_t deadline_after(int timeout_ms)
{
    return timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
}

static int remaining(int64_t deadline)
{
    if (deadline < 0)
        return 0;
    int64_t r = deadline - now_ms();
    return r < 0 ? 0 : r > INT32_MAX ? INT32_MAX : (int)r;
}

static int fail(struct qmp *q, int err)
{
    if (err == -EPIPE || err == -EPROTO)
        q->broken = err;
    return err;
}

void qmp_close(struct qmp *q)
{
    if (q->fd >= 0)
        close(q->fd);
    q->fd = -1;
    free(q->buf);
    q->buf = NULL;
    q->len = 0;
    json_decref(q->events);
    q->events = NULL;
    if (!q->broken)
        q->broken = -EPIPE;
}

static void queue_event(struct qmp *q, json_t *ev)
{
    if (json_array_size(q->events) >= QMP_EVENT_MAX) {
        json_array_remove(q->events, 0);
        q->events_dropped++;
    }
    json_array_append_new(q->events, ev);
}

/* Parses one line (without its newline).  Only an object may be a QMP
 * message; a stray '\r' before the newline is QEMU's normal line end. */
static int parse_line(const char *line, size_t len, json_t **msg)
{
    if (len && line[len - 1] == '\r')
        len--;
    json_error_t jerr;
    json_t *v = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!v)
        return -EPROTO;
    if (!json_is_object(v)) {
        json_decref(v);
        return -EPROTO;
    }
    *msg = v;
    return 0;
}

/* The next message, waiting until deadline.  -ETIMEDOUT when none came in
 * time (-EAGAIN when deadline is -1). */
static int read_msg(struct qmp *q, int64_t deadline, json_t **msg)
{
    *msg = NULL;
    if (q->broken)
        return q->broken;
    /* Checked per message, not only in poll(): a flood of events would
     * otherwise keep every wait busy past its deadline. */
    if (deadline >= 0 && now_ms() > deadline)
        return -ETIMEDOUT;
    for (;;) {
        char *nl = memchr(q->buf, '\n', q->len);
        if (nl) {
            size_t l = (size_t)(nl - q->buf);
            int err = parse_line(q->buf, l, msg);
            q->len -= l + 1;
            memmove(q->buf, nl + 1, q->len);
            return err ? fail(q, err) : 0;
        }
        if (q->len >= QMP_LINE_MAX)
            return fail(q, -EPROTO);
        struct pollfd p = {.fd = q->fd, .events = POLLIN};
        int n = poll(&p, 1, remaining(deadline));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return fail(q, -errno);
        if (n == 0)
            return deadline < 0 ? -EAGAIN : -ETIMEDOUT;
        ssize_t r = recv(q->fd, q->buf + q->len, QMP_LINE_MAX - q->len, MSG_DONTWAIT);
        if (r < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
            continue;
        if (r <= 0)
            return fail(q, -EPIPE); /* EOF, or ECONNRESET from a killed peer */
        q->len += (size_t)r;
    }
}

static int send_all(struct qmp *q, const char *s, size_t n, int64_t deadline)
{
    for (size_t off = 0; off < n;) {
        ssize_t w = send(q->fd, s + off, n - off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            off += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            /* A QEMU that stops reading must not stall us forever. */
            struct pollfd p = {.fd = q->fd, .events = POLLOUT};
            int r = poll(&p, 1, remaining(deadline));
            if (r == 0) {
                q->broken = -EPROTO; /* part of a line may be on the wire */
                return -ETIMEDOUT;
            }
            if (r < 0 && errno != EINTR)
                return fail(q, -errno);
            continue;
        }
        return fail(q, -EPIPE);
    }
    return 0;
}

static bool is_event(json_t *msg)
{
    return json_object_get(msg, "event") != NULL;
}

/* An event must name itself with a string; anything else is not QMP. */
static int check_event(json_t *msg)
{
    json_t *data = json_object_get(msg, "data");
    if (!json_is_string(json_object_get(msg, "event")) || (data && !json_is_object(data)))
        return -EPROTO;
    return 0;
}

/* A reply whose id belongs to a call that timed out: drop it (once). */
static bool stale_reply(struct qmp *q, json_t *id)
{
    if (!json_is_integer(id))
        return false;
    json_int_t v = json_integer_value(id);
    for (int i = 0; i < QMP_STALE_MAX; i++)
        if (q->stale[i] && (json_int_t)q->stale[i] == v) {
            q->stale[i] = 0;
            q->stale_dropped++;
            return true;
        }
    return false;
}

static void remember_stale(struct qmp *q, uint64_t id)
{
    for (int i = 0; i < QMP_STALE_MAX; i++)
        if (!q->stale[i]) {
            q->stale[i] = id;
            return;
        }
    /* Too many abandoned calls: QEMU is not answering in any useful way,
     * and a late reply could not be told from a forged one. */
    q->broken = -EPROTO;
}

/* Handles a message that is not the reply awaited: queue an event, drop a
 * late reply, refuse anything else. */
static int side_message(struct qmp *q, json_t *msg)
{
    if (is_event(msg)) {
        if (check_event(msg)) {
            json_decref(msg);
            return fail(q, -EPROTO);
        }
        queue_event(q, msg);
        return 0;
    }
    bool stale = stale_reply(q, json_object_get(msg, "id"));
    json_decref(msg);
    return stale ? 0 : fail(q, -EPROTO);
}

int qmp_call(struct qmp *q, const char *cmd, json_t *args, json_t **ret, char *err, size_t errlen)
{
    if (ret)
        *ret = NULL;
    if (err && errlen)
        err[0] = 0;
    if (!cmd || !*cmd || (args && !json_is_object(args))) {
        json_decref(args);
        errfmt(err, errlen, "invalid QMP command");
        return -EINVAL;
    }
    if (q->broken) {
        json_decref(args);
        errfmt(err, errlen, "QMP connection unusable: %s", strerror(-q->broken));
        return q->broken;
    }
    uint64_t id = ++q->next_id;
    json_t *msg = json_pack("{s:s, s:I}", "execute", cmd, "id", (json_int_t)id);
    if (!msg)
        json_decref(args);
    else if (args && json_object_set_new(msg, "arguments", args)) { /* consumes args */
        json_decref(msg);
        msg = NULL;
    }
    char *text = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
    json_decref(msg);
    if (!text) {
        errfmt(err, errlen, "out of memory");
        return -ENOMEM;
    }
    /* json_dumps escapes control characters, so the newline below is the
     * only one and QEMU sees exactly one command. */
    size_t n = strlen(text);
    char *line = realloc(text, n + 1);
    if (!line) {
        free(text);
        errfmt(err, errlen, "out of memory");
        return -ENOMEM;
    }
    line[n++] = '\n';
    int64_t deadline = deadline_after(q->timeout_ms > 0 ? q->timeout_ms : QMP_TIMEOUT_MS);
    int rc = send_all(q, line, n, deadline);
    free(line);
    if (rc) {
        errfmt(err, errlen, "QMP %s: %s", cmd, strerror(-rc));
        return rc;
    }
    q->sent++;
    for (;;) {
        json_t *reply;
        rc = read_msg(q, deadline, &reply);
        if (rc == -ETIMEDOUT)
            remember_stale(q, id);
        if (rc) {
            errfmt(err, errlen, "QMP %s: %s", cmd, strerror(-rc));
            return rc;
        }
        json_t *rid = json_object_get(reply, "id");
        if (is_event(reply) || !json_is_integer(rid) || (uint64_t)json_integer_value(rid) != id) {
            if ((rc = side_message(q, reply))) {
                errfmt(err, errlen, "QMP %s: unexpected message from QEMU", cmd);
                return rc;
            }
            continue;
        }
        json_t *r = json_object_get(reply, "return");
        json_t *e = json_object_get(reply, "error");
        const char *desc = json_string_value(json_object_get(e, "desc"));
        if (r && !e) {
            if (ret)
                *ret = json_incref(r);
            json_decref(reply);
            return 0;
        }
        if (e && !r && desc) {
            errfmt(err, errlen, "%s", desc);
            json_decref(reply);
            return -EREMOTEIO;
        }
        json_decref(reply);
        errfmt(err, errlen, "QMP %s: malformed reply", cmd);
        return fail(q, -EPROTO);
    }
}

static bool event_matches(json_t *ev, const char *event, const char *device)
{
    const char *name = json_string_value(json_object_get(ev, "event"));
    if (!name || strcmp(name, event))
        return false;
    if (!device)
        return true;
    json_t *data = json_object_get(ev, "data");
    const char *d = json_string_value(json_object_get(data, "device"));
    const char *p = json_string_value(json_object_get(data, "path"));
    return (d && !strcmp(d, device)) || (p && !strcmp(p, device));
}

static void give_data(json_t *ev, json_t **data)
{
    if (data) {
        json_t *d = json_object_get(ev, "data");
        *data = d ? json_incref(d) : json_object();
    }
    json_decref(ev);
}

int qmp_wait_event(struct qmp *q, const char *event, const char *device, int timeout_ms,
                   json_t **data)
{
    if (data)
        *data = NULL;
    if (!event)
        return -EINVAL;
    for (size_t i = 0; i < json_array_size(q->events); i++) {
        json_t *ev = json_array_get(q->events, i);
        if (event_matches(ev, event, device)) {
            json_incref(ev);
            json_array_remove(q->events, i);
            give_data(ev, data);
            return 0;
        }
    }
    int64_t deadline = deadline_after(timeout_ms < 0 ? 0 : timeout_ms);
    for (;;) {
        json_t *msg;
        int rc = read_msg(q, deadline, &msg);
        if (rc)
            return rc;
        if (is_event(msg) && !check_event(msg) && event_matches(msg, event, device)) {
            give_data(msg, data);
            return 0;
        }
        if ((rc = side_message(q, msg)))
            return rc;
    }
}

int qmp_poll_events(struct qmp *q)
{
    /* Bounded, so a QEMU that never stops talking cannot keep us here. */
    for (int budget = 4 * QMP_EVENT_MAX; budget > 0; budget--) {
        json_t *msg;
        int rc = read_msg(q, -1, &msg);
        if (rc == -EAGAIN)
            return (int)json_array_size(q->events);
        if (rc)
            return rc;
        if ((rc = side_message(q, msg)))
            return rc;
    }
    return (int)json_array_size(q->events);
}

json_t *qmp_take_event(struct qmp *q)
{
    json_t *ev = json_array_get(q->events, 0);
    if (!ev)
        return NULL;
    json_incref(ev);
    json_array_remove(q->events, 0);
    return ev;
}

static int read_greeting(struct qmp *q, int timeout_ms)
{
    json_t *msg;
    int rc = read_msg(q, deadline_after(timeout_ms), &msg);
    if (rc)
        return rc;
    json_t *qemu = json_object_get(json_object_get(json_object_get(msg, "QMP"), "version"), "qemu");
    json_t *maj = json_object_get(qemu, "major"), *min = json_object_get(qemu, "minor"),
           *mic = json_object_get(qemu, "micro");
    if (!json_is_integer(maj) || !json_is_integer(min) || !json_is_integer(mic)) {
        json_decref(msg);
        return fail(q, -EPROTO);
    }
    q->version.major = (int)json_integer_value(maj);
    q->version.minor = (int)json_integer_value(min);
    q->version.micro = (int)json_integer_value(mic);
    const char *pkg = json_string_value(
        json_object_get(json_object_get(json_object_get(msg, "QMP"), "version"), "package"));
    snprintf(q->version.package, sizeof(q->version.package), "%s", pkg ? pkg : "");
    json_decref(msg);
    return 0;
}

int qmp_init(struct qmp *q, int fd, int timeout_ms)
{
    memset(q, 0, sizeof(*q));
    q->fd = fd;
    q->timeout_ms = QMP_TIMEOUT_MS;
    q->buf = malloc(QMP_LINE_MAX);
    q->events = json_array();
    if (!q->buf || !q->events) {
        q->broken = -ENOMEM;
        return -ENOMEM;
    }
    int rc = read_greeting(q, timeout_ms);
    if (rc)
        return rc;
    int saved = q->timeout_ms;
    q->timeout_ms = timeout_ms > 0 ? timeout_ms : QMP_TIMEOUT_MS;
    rc = qmp_call(q, "qmp_capabilities", NULL, NULL, NULL, 0);
    q->timeout_ms = saved;
    return rc == -EREMOTEIO ? -EPROTO : rc;
}

/* A string that jansson reads as exactly one number or boolean goes typed;
 * json_loads refuses leading/trailing junk, so "1x" or "0x10" stay strings. */
static json_t *prop_value(const char *v)
{
    json_t *j = json_loads(v, JSON_DECODE_ANY, NULL);
    if (j && (json_is_number(j) || json_is_boolean(j)))
        return j;
    json_decref(j);
    return json_string(v);
}

int qmp_device_add(struct qmp *q, const char *driver, const char *id, const char *const *props,
                   char *err, size_t errlen)
{
    if (!driver || !*driver || (id && !*id)) {
        errfmt(err, errlen, "device_add needs a driver and a non-empty id");
        return -EINVAL;
    }
    json_t *args = json_pack("{s:s}", "driver", driver);
    if (!args || (id && json_object_set_new(args, "id", json_string(id))))
        goto nomem;
    for (size_t i = 0; props && props[i]; i++) {
        const char *eq = strchr(props[i], '=');
        char key[128];
        size_t kl = eq ? (size_t)(eq - props[i]) : 0;
        if (!kl || kl >= sizeof(key)) {
            errfmt(err, errlen, "device_add: bad property '%s'", props[i]);
            json_decref(args);
            return -EINVAL;
        }
        memcpy(key, props[i], kl);
        key[kl] = 0;
        if (json_object_get(args, key)) {
            errfmt(err, errlen, "device_add: property '%s' given twice (or is driver/id)", key);
            json_decref(args);
            return -EINVAL;
        }
        json_t *v = prop_value(eq + 1);
        if (!v || json_object_set_new(args, key, v))
            goto nomem;
    }
    return qmp_call(q, "device_add", args, NULL, err, errlen);
nomem:
    json_decref(args);
    errfmt(err, errlen, "out of memory");
    return -ENOMEM;
}

int qmp_device_del(struct qmp *q, const char *id, int timeout_ms, char *err, size_t errlen)
{
    if (!id || !*id) {
        errfmt(err, errlen, "device_del needs an id");
        return -EINVAL;
    }
    int rc = qmp_call(q, "device_del", json_pack("{s:s}", "id", id), NULL, err, errlen);
    if (rc)
        return rc;
    if (q->unplug && (rc = q->unplug(q->unplug_ctx, q, id, err, errlen)))
        return rc;
    rc = qmp_wait_event(q, "DEVICE_DELETED", id, timeout_ms, NULL);
    if (rc)
        errfmt(err, errlen, "device_del %s: no DEVICE_DELETED (%s)", id, strerror(-rc));
    return rc;
}
