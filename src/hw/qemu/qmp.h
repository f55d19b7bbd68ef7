/*
 * A client of QEMU's machine protocol (QMP) over a connected stream socket:
 * commands with ids, asynchronous events queued while a reply is awaited,
 * and device hot-plug.  docs/research/qemu-machine.md §6 has the facts.
 *
 * QEMU is trusted less than we are: every line must be one JSON object of
 * at most QMP_LINE_MAX bytes, every wait is bounded by a timeout and polls
 * the socket, and a QEMU that dies mid-call gives -EPIPE.  Once the stream
 * is broken (-EPIPE, or -EPROTO for a line that breaks the protocol) the
 * error is sticky: every later call returns it, because nothing read after
 * such a line can be matched to a request with confidence.
 *
 * Not thread-safe: one caller at a time.  Errors are negative errno values:
 *   -EPIPE      QEMU closed the connection (or died)
 *   -EPROTO     QEMU sent something the protocol does not allow
 *   -ETIMEDOUT  no answer in time (a late reply is recognised and dropped)
 *   -EREMOTEIO  QEMU answered with an error; err holds its "desc" text
 *   -EINVAL     a bad argument, refused before anything was sent
 *   -ENOMEM
 */
#ifndef DEVMUX_HW_QEMU_QMP_H
#define DEVMUX_HW_QEMU_QMP_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* The longest line accepted.  query-qmp-schema, the largest reply QEMU 7.2
 * sends, is well under this. */
#define QMP_LINE_MAX (1u << 20)
/* Events held for qmp_wait_event/qmp_take_event; beyond this the oldest
 * are dropped (and counted), so a flood cannot exhaust memory. */
#define QMP_EVENT_MAX 256
/* Timed-out calls whose late replies are still expected (and dropped). */
#define QMP_STALE_MAX  8
#define QMP_TIMEOUT_MS 5000

struct qmp;

/* Called by qmp_device_del after QEMU accepted device_del, to complete an
 * unplug QEMU leaves to the guest (an ACPI eject).  Returns 0 when it did
 * what was needed or nothing was, else -errno with err filled in. */
typedef int (*qmp_unplug_fn)(void *ctx, struct qmp *q, const char *id, char *err, size_t errlen);

struct qmp {
    int fd;
    int broken; /* sticky error, 0 while the stream is usable */
    char *buf;  /* QMP_LINE_MAX bytes: received, not yet parsed */
    size_t len;
    json_t *events; /* array of whole event messages, oldest first */
    uint64_t next_id;
    uint64_t stale[QMP_STALE_MAX]; /* ids of timed-out calls, 0 = free */
    int timeout_ms;                /* for qmp_call; QMP_TIMEOUT_MS by default */
    struct {
        int major, minor, micro;
        char package[64];
    } version; /* from the greeting */
    qmp_unplug_fn unplug;
    void *unplug_ctx;
    uint64_t sent, events_dropped, stale_dropped;
};

/* Takes over fd (closed by qmp_close, even when this fails), reads the
 * greeting within timeout_ms, checks it is QMP's and records the version,
 * then negotiates (qmp_capabilities). */
int qmp_init(struct qmp *q, int fd, int timeout_ms);
/* Closes the socket and drops queued events.  Safe on a zeroed struct with
 * fd = -1, and twice. */
void qmp_close(struct qmp *q);

/* Runs one command and waits (q->timeout_ms) for the reply with its id;
 * events arriving meanwhile are queued.  args (an object, or NULL) is
 * stolen: its reference is released whatever happens, so json_pack() can
 * be passed inline.  On success *ret (if ret) gets a new reference to the
 * "return" value, which the caller must json_decref; on failure *ret is
 * NULL.  err (if errlen) gets QEMU's error text, or a description of a
 * local failure. */
int qmp_call(struct qmp *q, const char *cmd, json_t *args, json_t **ret, char *err, size_t errlen);

/* Waits up to timeout_ms for an event named event, taking it from the
 * queue first.  With device, only an event whose data.device or data.path
 * equals it matches.  On success *data (if data) gets a new reference to
 * the event's data (an empty object when it had none).  Other events stay
 * queued in order. */
int qmp_wait_event(struct qmp *q, const char *event, const char *device, int timeout_ms,
                   json_t **data);
/* Reads whatever has arrived without blocking, queueing events.  Returns
 * the number of queued events, or -errno. */
int qmp_poll_events(struct qmp *q);
/* The oldest queued event (the whole message, caller owns it), or NULL. */
json_t *qmp_take_event(struct qmp *q);

/* device_add driver with id and props, NULL-terminated "key=value" strings
 * (NULL for none).  A value that is a JSON number or true/false goes as
 * that JSON type, anything else as a string.  QEMU 7.2 turns every
 * device_add property into a string and parses it by the property's type,
 * so "port=1", "vectors=2", "mrg_rxbuf=true" and "addr=0" all work either
 * way; on/off/auto properties need "on"/"off", not true/false.  A key
 * without '=', an empty key, driver/id among props or a repeated key is
 * -EINVAL before anything is sent. */
int qmp_device_add(struct qmp *q, const char *driver, const char *id, const char *const *props,
                   char *err, size_t errlen);
/* device_del id, then q->unplug (if set) for what QEMU leaves to a guest,
 * then waits up to timeout_ms for DEVICE_DELETED of id. */
int qmp_device_del(struct qmp *q, const char *id, int timeout_ms, char *err, size_t errlen);

#endif
