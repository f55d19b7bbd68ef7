/*
 * The QMP client, twice over.  Against a fake QEMU on a socket pair: the
 * line parser refuses what the protocol does not allow (non-JSON, non-
 * objects, over-long lines, replies nobody asked for), survives an event
 * flood within its bounds, and never waits past a deadline.  Against a
 * real QEMU: greeting, status, USB and PCI hot-plug and unplug (the PCI one
 * through our ACPI eject), QEMU's error texts, and a killed QEMU as -EPIPE.
 */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "hw/qemu/machine.h"
#include "machine_fixture.h"
#include "hw/qemu/qmp.h"

static const char greeting[] =
    "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 22, \"minor\": 2, \"major\": 7}, "
    "\"package\": \"test 1\"}, \"capabilities\": [\"oob\"]}}\r\n";

static int64_t ms_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void put(int fd, const char *s)
{
    size_t n = strlen(s);
    assert_int_equal(write(fd, s, n), (ssize_t)n);
}

/* One line the client sent, parsed (the fake QEMU's side). */
static json_t *sent_line(int fd)
{
    char buf[4096];
    size_t len = 0;
    while (!memchr(buf, '\n', len)) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        assert_int_equal(poll(&p, 1, 2000), 1);
        ssize_t r = recv(fd, buf + len, sizeof(buf) - len, 0);
        assert_true(r > 0);
        len += (size_t)r;
    }
    char *nl = memchr(buf, '\n', len);
    assert_ptr_equal(nl, buf + len - 1); /* one command at a time */
    json_t *v = json_loadb(buf, len - 1, 0, NULL);
    assert_non_null(v);
    return v;
}

/* A negotiated client on q; *peer is the fake QEMU's end. */
static void fake_init(struct qmp *q, int *peer)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    put(sv[1], greeting);
    put(sv[1], "{\"return\": {}, \"id\": 1}\r\n");
    assert_int_equal(qmp_init(q, sv[0], 1000), 0);
    json_decref(sent_line(sv[1]));
    *peer = sv[1];
}

static void fake_done(struct qmp *q, int peer)
{
    qmp_close(q);
    close(peer);
}

/* A child that writes n bytes of a repeated pattern (or forever with n 0),
 * then tail; for volumes larger than a socket buffer. */
static pid_t writer(int fd, const char *pattern, size_t n, const char *tail)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid)
        return pid;
    size_t pl = strlen(pattern);
    for (size_t done = 0; !n || done < n; done += pl)
        if (write(fd, pattern, pl) != (ssize_t)pl)
            _exit(1);
    if (tail && write(fd, tail, strlen(tail)) < 0)
        _exit(1);
    _exit(0);
}

static void reap(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

static void fake_greeting_and_negotiation(void **state)
{
    int sv[2];
    struct qmp q;
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    put(sv[1], greeting);
    put(sv[1], "{\"return\": {}, \"id\": 1}\r\n");
    assert_int_equal(qmp_init(&q, sv[0], 1000), 0);
    assert_int_equal(q.version.major, 7);
    assert_int_equal(q.version.minor, 2);
    assert_int_equal(q.version.micro, 22);
    assert_string_equal(q.version.package, "test 1");
    json_t *cmd = sent_line(sv[1]);
    assert_string_equal(json_string_value(json_object_get(cmd, "execute")), "qmp_capabilities");
    assert_int_equal(json_integer_value(json_object_get(cmd, "id")), 1);
    assert_null(json_object_get(cmd, "arguments"));
    json_decref(cmd);
    fake_done(&q, sv[1]);
}

static void fake_bad_greetings(void **state)
{
    static const struct {
        const char *text;
        int err;
    } cases[] = {
        {"hello\n", -EPROTO},
        {"{\"return\": {}}\n", -EPROTO},
        {"[1]\n", -EPROTO},
        {"{\"QMP\": {\"version\": {\"qemu\": {\"major\": \"7\", \"minor\": 2, \"micro\": 0}}}}\n",
         -EPROTO},
        {"{\"QMP\": {}, \"QMP\": {}}\n", -EPROTO}, /* duplicate keys */
        {NULL, -EPIPE},                            /* closed before greeting */
        {"", -ETIMEDOUT},                          /* silent */
        {greeting, -ETIMEDOUT},                    /* greets, never negotiates */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int sv[2];
        struct qmp q;
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        if (cases[i].text)
            put(sv[1], cases[i].text);
        else
            shutdown(sv[1], SHUT_WR);
        int64_t t0 = ms_now();
        assert_int_equal(qmp_init(&q, sv[0], 200), cases[i].err);
        assert_true(ms_now() - t0 < 1000);
        fake_done(&q, sv[1]);
    }
}

static void fake_non_json_is_eproto_and_sticky(void **state)
{
    static const char *const junk[] = {"this is not json\r\n",
                                       "[1, 2, 3]\n",
                                       "\"str\"\n",
                                       "42\n",
                                       "{\"return\": {}, \"id\": 2} trailing\n",
                                       "\n"};
    for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
        struct qmp q;
        int peer;
        fake_init(&q, &peer);
        put(peer, junk[i]);
        put(peer, "{\"return\": {}, \"id\": 2}\n"); /* a good reply after it must not count */
        char err[128];
        assert_int_equal(qmp_call(&q, "query-status", NULL, NULL, err, sizeof(err)), -EPROTO);
        uint64_t sent = q.sent;
        assert_int_equal(qmp_call(&q, "query-status", NULL, NULL, err, sizeof(err)), -EPROTO);
        assert_int_equal(q.sent, sent); /* refused before sending */
        assert_int_equal(qmp_poll_events(&q), -EPROTO);
        fake_done(&q, peer);
    }
}

static void fake_line_over_limit(void **state)
{
    struct qmp q;
    int peer;
    fake_init(&q, &peer);
    /* A well-formed start that never ends within the limit. */
    put(peer, "{\"event\": \"X\", \"data\": {\"s\": \"");
    pid_t w = writer(peer, "aaaaaaaaaaaaaaaa", QMP_LINE_MAX + 4096, "\"}}\n");
    int64_t t0 = ms_now();
    assert_int_equal(qmp_call(&q, "query-status", NULL, NULL, NULL, 0), -EPROTO);
    assert_true(ms_now() - t0 < 2000);
    assert_int_equal(json_array_size(q.events), 0);
    reap(w);
    fake_done(&q, peer);
}

static void fake_wrong_or_missing_id(void **state)
{
    static const char *const replies[] = {
        "{\"return\": {}, \"id\": 999}\n",
        "{\"return\": {}}\n",
        "{\"return\": {}, \"id\": \"2\"}\n",
        "{\"id\": 2}\n", /* neither return nor error */
        "{\"return\": {}, \"error\": {\"desc\": \"x\"}, \"id\": 2}\n", /* both */
        "{\"error\": {\"class\": \"GenericError\"}, \"id\": 2}\n",     /* no desc */
        "{\"event\": 5}\n", /* event not named by a string */
    };
    for (size_t i = 0; i < sizeof(replies) / sizeof(replies[0]); i++) {
        struct qmp q;
        int peer;
        fake_init(&q, &peer);
        put(peer, replies[i]);
        json_t *ret = (json_t *)1;
        assert_int_equal(qmp_call(&q, "query-status", NULL, &ret, NULL, 0), -EPROTO);
        assert_null(ret);
        fake_done(&q, peer);
    }
}

static void fake_late_reply_is_dropped_once(void **state)
{
    struct qmp q;
    int peer;
    fake_init(&q, &peer);
    q.timeout_ms = 100;
    int64_t t0 = ms_now();
    assert_int_equal(qmp_call(&q, "query-status", NULL, NULL, NULL, 0), -ETIMEDOUT);
    assert_true(ms_now() - t0 < 1000);
    json_decref(sent_line(peer));
    put(peer, "{\"return\": \"late\", \"id\": 2}\n{\"return\": \"mine\", \"id\": 3}\n");
    json_t *ret;
    assert_int_equal(qmp_call(&q, "query-status", NULL, &ret, NULL, 0), 0);
    assert_string_equal(json_string_value(ret), "mine");
    json_decref(ret);
    assert_int_equal(q.stale_dropped, 1);
    /* The same late id twice is no longer a late reply. */
    put(peer, "{\"return\": \"late\", \"id\": 2}\n");
    assert_int_equal(qmp_call(&q, "query-status", NULL, NULL, NULL, 0), -EPROTO);
    fake_done(&q, peer);
}

static void fake_error_reply_text(void **state)
{
    struct qmp q;
    int peer;
    fake_init(&q, &peer);
    put(peer, "{\"error\": {\"class\": \"GenericError\", \"desc\": \"it broke\"}, \"id\": 2}\n");
    char err[64];
    json_t *ret;
    assert_int_equal(qmp_call(&q, "x", json_pack("{s:i}", "a", 1), &ret, err, sizeof(err)),
                     -EREMOTEIO);
    assert_string_equal(err, "it broke");
    assert_null(ret);
    json_t *cmd = sent_line(peer);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(cmd, "arguments"), "a")),
                     1);
    json_decref(cmd);
    /* An error reply leaves the stream usable. */
    put(peer, "{\"return\": {\"ok\": true}, \"id\": 3}\n");
    assert_int_equal(qmp_call(&q, "y", NULL, &ret, err, sizeof(err)), 0);
    assert_true(json_is_true(json_object_get(ret, "ok")));
    json_decref(ret);
    /* A non-object argument is refused (and still released). */
    assert_int_equal(qmp_call(&q, "y", json_integer(3), NULL, err, sizeof(err)), -EINVAL);
    fake_done(&q, peer);
}

static void fake_event_flood_is_bounded(void **state)
{
    struct qmp q;
    int peer;
    fake_init(&q, &peer);
    enum { N = 20000 };
    /* Sequence numbers tell which events survived. */
    pid_t w = fork();
    assert_true(w >= 0);
    if (!w) {
        char line[128];
        for (int i = 0; i < N; i++) {
            int l = snprintf(line, sizeof(line),
                             "{\"event\": \"FLOOD\", \"data\": {\"seq\": %d}}\n", i);
            if (write(peer, line, (size_t)l) != l)
                _exit(1);
        }
        const char *r = "{\"return\": {}, \"id\": 2}\n";
        _exit(write(peer, r, strlen(r)) < 0);
    }
    assert_int_equal(qmp_call(&q, "query-status", NULL, NULL, NULL, 0), 0);
    int status;
    assert_int_equal(waitpid(w, &status, 0), w);
    assert_int_equal(status, 0);
    assert_int_equal(json_array_size(q.events), QMP_EVENT_MAX);
    assert_int_equal(q.events_dropped, N - QMP_EVENT_MAX);
    json_t *ev = qmp_take_event(&q);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(ev, "data"), "seq")),
                     N - QMP_EVENT_MAX);
    json_decref(ev);
    json_t *data;
    assert_int_equal(qmp_wait_event(&q, "FLOOD", NULL, 0, &data), 0);
    assert_int_equal(json_integer_value(json_object_get(data, "seq")), N - QMP_EVENT_MAX + 1);
    json_decref(data);
    fake_done(&q, peer);
}

static void fake_endless_flood_times_out(void **state)
{
    struct qmp q;
    int peer;
    fake_init(&q, &peer);
    pid_t w = writer(peer, "{\"event\": \"FLOOD\"}\n", 0, NULL);
    q.timeout_ms = 300;
    int64_t t0 = ms_now();
    assert_int_equal(qmp_call(&q, "query-status", NULL, NULL, NULL, 0), -ETIMEDOUT);
    int64_t took = ms_now() - t0;
    assert_true(took >= 290 && took < 2000);
    t0 = ms_now();
    assert_int_equal(qmp_wait_event(&q, "NEVER", NULL, 200, NULL), -ETIMEDOUT);
    assert_true(ms_now() - t0 < 2000);
    t0 = ms_now();
    assert_int_equal(qmp_poll_events(&q), QMP_EVENT_MAX); /* returns despite the flood */
    assert_true(ms_now() - t0 < 2000);
    reap(w);
    fake_done(&q, peer);
}

static void fake_wait_event_matches_device_or_path(void **state)
{
    struct qmp q;
    int peer;
    fake_init(&q, &peer);
    put(peer,
        "{\"event\": \"OTHER\", \"data\": {\"device\": \"k2\"}}\n"
        "{\"event\": \"DEVICE_DELETED\", \"data\": {\"path\": \"/machine/peripheral/k2/x\"}}\n"
        "{\"event\": \"DEVICE_DELETED\", \"data\": {\"device\": \"k1\"}}\n"
        "{\"event\": \"DEVICE_DELETED\", \"data\": {\"path\": \"/machine/peripheral/k2\"}}\n"
        "{\"event\": \"RESET\"}\n");
    json_t *data;
    assert_int_equal(qmp_wait_event(&q, "DEVICE_DELETED", "/machine/peripheral/k2", 1000, &data),
                     0);
    assert_string_equal(json_string_value(json_object_get(data, "path")), "/machine/peripheral/k2");
    json_decref(data);
    assert_int_equal(qmp_wait_event(&q, "DEVICE_DELETED", "k1", 0, NULL), 0); /* queued */
    assert_int_equal(qmp_wait_event(&q, "DEVICE_DELETED", "k2", 100, NULL), -ETIMEDOUT);
    assert_int_equal(qmp_poll_events(&q), 3); /* OTHER, the k2/x one, RESET */
    assert_int_equal(qmp_wait_event(&q, "RESET", NULL, 0, &data), 0);
    assert_true(json_is_object(data) && json_object_size(data) == 0);
    json_decref(data);
    json_t *ev = qmp_take_event(&q);
    assert_string_equal(json_string_value(json_object_get(ev, "event")), "OTHER");
    json_decref(ev);
    ev = qmp_take_event(&q);
    assert_string_equal(json_string_value(json_object_get(ev, "event")), "DEVICE_DELETED");
    json_decref(ev);
    assert_null(qmp_take_event(&q));
    assert_int_equal(qmp_poll_events(&q), 0);
    fake_done(&q, peer);
}

static void fake_device_add_property_types(void **state)
{
    struct qmp q;
    int peer;
    fake_init(&q, &peer);
    static const char *const props[] = {
        "port=1", "mrg_rxbuf=true", "mac=52:54:00:00:00:01", "x=0x10", "y=", "z=null",
        "w=1.5",  "v=1x",           "bus=xhci0.0",           NULL};
    put(peer, "{\"return\": {}, \"id\": 2}\n");
    char err[128];
    assert_int_equal(qmp_device_add(&q, "usb-kbd", "k1", props, err, sizeof(err)), 0);
    json_t *cmd = sent_line(peer);
    assert_string_equal(json_string_value(json_object_get(cmd, "execute")), "device_add");
    json_t *a = json_object_get(cmd, "arguments");
    assert_string_equal(json_string_value(json_object_get(a, "driver")), "usb-kbd");
    assert_string_equal(json_string_value(json_object_get(a, "id")), "k1");
    assert_int_equal(json_integer_value(json_object_get(a, "port")), 1);
    assert_true(json_is_true(json_object_get(a, "mrg_rxbuf")));
    assert_string_equal(json_string_value(json_object_get(a, "mac")), "52:54:00:00:00:01");
    assert_string_equal(json_string_value(json_object_get(a, "x")), "0x10");
    assert_string_equal(json_string_value(json_object_get(a, "y")), "");
    assert_string_equal(json_string_value(json_object_get(a, "z")), "null");
    assert_true(json_is_real(json_object_get(a, "w")));
    assert_string_equal(json_string_value(json_object_get(a, "v")), "1x");
    assert_int_equal(json_object_size(a), 11);
    json_decref(cmd);

    static const char *const bad1[] = {"noequals", NULL}, *const bad2[] = {"=v", NULL},
                             *const bad3[] = {"id=other", NULL},
                             *const bad4[] = {"a=1", "a=2", NULL},
                             *const bad5[] = {"driver=e1000", NULL};
    const char *const *bad[] = {bad1, bad2, bad3, bad4, bad5};
    uint64_t sent = q.sent;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(qmp_device_add(&q, "usb-kbd", "k2", bad[i], err, sizeof(err)), -EINVAL);
    assert_int_equal(qmp_device_add(&q, "", "k2", NULL, err, sizeof(err)), -EINVAL);
    assert_int_equal(qmp_device_add(&q, "usb-kbd", "", NULL, err, sizeof(err)), -EINVAL);
    assert_int_equal(q.sent, sent);
    fake_done(&q, peer);
}

static void fake_peer_gone_is_epipe(void **state)
{
    struct qmp q;
    int peer;
    fake_init(&q, &peer);
    close(peer);
    assert_int_equal(qmp_call(&q, "query-status", NULL, NULL, NULL, 0), -EPIPE);
    assert_int_equal(qmp_wait_event(&q, "X", NULL, 1000, NULL), -EPIPE);
    qmp_close(&q);
}

/* ---- against QEMU ---- */

static const char *const devices[] = {"-device", "qemu-xhci,id=xhci0,addr=04.0", "-device",
                                      "pcie-root-port,id=rp1,chassis=1,slot=1,addr=06.0", NULL};

static uint32_t cfg_read(struct qemu_machine *m, unsigned bus, unsigned dev, unsigned reg)
{
    uint32_t v = 0;
    assert_int_equal(qtest_out(&m->qt, 4, 0xcf8, 0x80000000u | bus << 16 | dev << 11 | reg), 0);
    assert_int_equal(qtest_in(&m->qt, 4, 0xcfc, &v), 0);
    return v;
}

static void cfg_write(struct qemu_machine *m, unsigned bus, unsigned dev, unsigned reg, uint32_t v)
{
    assert_int_equal(qtest_out(&m->qt, 4, 0xcf8, 0x80000000u | bus << 16 | dev << 11 | reg), 0);
    assert_int_equal(qtest_out(&m->qt, 4, 0xcfc, v), 0);
}

static int setup(void **state)
{
    return machine_fixture_start(state, devices);
}

static int teardown(void **state)
{
    return machine_fixture_stop(state);
}

static void qemu_greeting_and_version(void **state)
{
    struct qemu_machine *m = *state;
    json_t *v;
    assert_true(m->qmp.version.major >= 2);
    assert_int_equal(qmp_call(&m->qmp, "query-version", NULL, &v, NULL, 0), 0);
    json_t *qemu = json_object_get(v, "qemu");
    assert_int_equal(json_integer_value(json_object_get(qemu, "major")), m->qmp.version.major);
    assert_int_equal(json_integer_value(json_object_get(qemu, "minor")), m->qmp.version.minor);
    assert_int_equal(json_integer_value(json_object_get(qemu, "micro")), m->qmp.version.micro);
    json_decref(v);
}

static void qemu_status_running(void **state)
{
    struct qemu_machine *m = *state;
    json_t *r;
    assert_int_equal(qmp_call(&m->qmp, "query-status", NULL, &r, NULL, 0), 0);
    assert_string_equal(json_string_value(json_object_get(r, "status")), "running");
    assert_true(json_is_true(json_object_get(r, "running")));
    json_decref(r);
    /* The largest reply QEMU has fits under the line limit. */
    assert_int_equal(qmp_call(&m->qmp, "query-qmp-schema", NULL, &r, NULL, 0), 0);
    assert_true(json_array_size(r) > 100);
    json_decref(r);
}

/* The QOM type of /machine/peripheral/id, or NULL when there is none. */
static char *peripheral(struct qemu_machine *m, const char *id)
{
    json_t *list;
    assert_int_equal(qmp_call(&m->qmp, "qom-list",
                              json_pack("{s:s}", "path", "/machine/peripheral"), &list, NULL, 0),
                     0);
    assert_true(json_is_array(list));
    char *type = NULL;
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e) if (!strcmp(json_string_value(json_object_get(e, "name")), id))
        type = strdup(json_string_value(json_object_get(e, "type")));
    json_decref(list);
    return type;
}

static void qemu_usb_hotplug(void **state)
{
    struct qemu_machine *m = *state;
    static const char *const props[] = {"bus=xhci0.0", "port=1", NULL};
    char err[256];
    assert_null(peripheral(m, "kbd1"));
    assert_int_equal(qmp_device_add(&m->qmp, "usb-kbd", "kbd1", props, err, sizeof(err)), 0);
    char *type = peripheral(m, "kbd1");
    assert_non_null(type);
    assert_string_equal(type, "child<usb-kbd>");
    free(type);
    json_t *port;
    assert_int_equal(
        qmp_call(&m->qmp, "qom-get",
                 json_pack("{s:s, s:s}", "path", "/machine/peripheral/kbd1", "property", "port"),
                 &port, err, sizeof(err)),
        0);
    assert_string_equal(json_string_value(port), "1");
    json_decref(port);
    assert_int_equal(qmp_device_del(&m->qmp, "kbd1", 2000, err, sizeof(err)), 0);
    assert_null(peripheral(m, "kbd1"));
    /* The same port is free again. */
    assert_int_equal(qmp_device_add(&m->qmp, "usb-kbd", "kbd1", props, err, sizeof(err)), 0);
    assert_int_equal(qmp_device_del(&m->qmp, "kbd1", 2000, err, sizeof(err)), 0);
}

static void qemu_errors_carry_qemu_text(void **state)
{
    struct qemu_machine *m = *state;
    char err[256];
    assert_int_equal(qmp_device_add(&m->qmp, "no-such-device", "x1", NULL, err, sizeof(err)),
                     -EREMOTEIO);
    assert_string_equal(err, "'no-such-device' is not a valid device model name");
    uint32_t v;
    assert_int_equal(qtest_in(&m->qt, 4, 0xcfc, &v), 0); /* the machine lives */

    static const char *const props[] = {"bus=xhci0.0", "port=2", NULL}, *const props3[] = {
                                                                            "bus=xhci0.0", "port=3",
                                                                            NULL};
    assert_int_equal(qmp_device_add(&m->qmp, "usb-kbd", "kbd2", props, err, sizeof(err)), 0);
    assert_int_equal(qmp_device_add(&m->qmp, "usb-kbd", "kbd2", props3, err, sizeof(err)),
                     -EREMOTEIO);
    assert_string_equal(err, "Duplicate device ID 'kbd2'");
    assert_int_equal(qmp_device_del(&m->qmp, "kbd2", 2000, err, sizeof(err)), 0);
    assert_int_equal(qmp_device_del(&m->qmp, "kbd2", 2000, err, sizeof(err)), -EREMOTEIO);
    assert_string_equal(err, "Device 'kbd2' not found");
    assert_int_equal(qmp_call(&m->qmp, "no-such-command", NULL, NULL, err, sizeof(err)),
                     -EREMOTEIO);
    assert_string_equal(err, "The command no-such-command has not been found");
    assert_int_equal(qtest_in(&m->qt, 4, 0xcfc, &v), 0);
}

static void qemu_pci_hotplug_behind_root_port(void **state)
{
    struct qemu_machine *m = *state;
    char err[256];
    /* The root port at 00:06.0 forwards to bus 1 once given its numbers. */
    assert_int_equal(cfg_read(m, 0, 6, 0) & 0xffff, 0x1b36);
    cfg_write(m, 0, 6, 0x18, 0x00010100);
    assert_int_equal(cfg_read(m, 1, 0, 0), 0xffffffff);
    assert_int_equal(qemu_pci_eject(m, "rp1", 0, err, sizeof(err)), -ENOENT); /* empty */
    static const char *const props[] = {"bus=rp1", "addr=0", "disable-legacy=on", NULL};
    for (int round = 0; round < 3; round++) {
        assert_int_equal(qmp_device_add(&m->qmp, "virtio-net-pci", "vn1", props, err, sizeof(err)),
                         0);
        assert_int_equal(cfg_read(m, 1, 0, 0), 0x10411af4);
        /* Present but nobody asked for its removal: no eject. */
        assert_int_equal(qemu_pci_eject(m, "rp1", 0, err, sizeof(err)), -ENOENT);
        assert_int_equal(cfg_read(m, 1, 0, 0), 0x10411af4);
        int64_t t0 = ms_now();
        assert_int_equal(qmp_device_del(&m->qmp, "vn1", 2000, err, sizeof(err)), 0);
        assert_true(ms_now() - t0 < 1000);
        assert_int_equal(cfg_read(m, 1, 0, 0), 0xffffffff);
        assert_null(peripheral(m, "vn1"));
    }
    assert_int_equal(qemu_pci_eject(m, "nope", 0, err, sizeof(err)), -EREMOTEIO);
    /* Not hot-pluggable at all: QEMU says so. */
    static const char *const root[] = {"bus=pcie.0", "addr=09.0", NULL};
    assert_int_equal(qmp_device_add(&m->qmp, "virtio-net-pci", "vn2", root, err, sizeof(err)),
                     -EREMOTEIO);
    assert_non_null(strstr(err, "does not support hotplugging"));
}

static void qemu_killed_is_epipe(void **state)
{
    struct qemu_machine *m = *state;
    kill(m->pid, SIGKILL);
    waitpid(m->pid, NULL, 0);
    m->pid = -1;
    int64_t t0 = ms_now();
    char err[128];
    assert_int_equal(qmp_call(&m->qmp, "query-status", NULL, NULL, err, sizeof(err)), -EPIPE);
    assert_true(ms_now() - t0 < 500);
    assert_int_equal(qmp_device_del(&m->qmp, "vn1", 1000, err, sizeof(err)), -EPIPE);
}

int main(void)
{
    const struct CMUnitTest fake[] = {
        cmocka_unit_test(fake_greeting_and_negotiation),
        cmocka_unit_test(fake_bad_greetings),
        cmocka_unit_test(fake_non_json_is_eproto_and_sticky),
        cmocka_unit_test(fake_line_over_limit),
        cmocka_unit_test(fake_wrong_or_missing_id),
        cmocka_unit_test(fake_late_reply_is_dropped_once),
        cmocka_unit_test(fake_error_reply_text),
        cmocka_unit_test(fake_event_flood_is_bounded),
        cmocka_unit_test(fake_endless_flood_times_out),
        cmocka_unit_test(fake_wait_event_matches_device_or_path),
        cmocka_unit_test(fake_device_add_property_types),
        cmocka_unit_test(fake_peer_gone_is_epipe),
    };
    const struct CMUnitTest qemu[] = {
        cmocka_unit_test(qemu_greeting_and_version),
        cmocka_unit_test(qemu_status_running),
        cmocka_unit_test(qemu_usb_hotplug),
        cmocka_unit_test(qemu_errors_carry_qemu_text),
        cmocka_unit_test(qemu_pci_hotplug_behind_root_port),
        cmocka_unit_test(qemu_killed_is_epipe),
    };
    signal(SIGPIPE, SIG_IGN); /* the writers outlive their reader */
    int failed = cmocka_run_group_tests_name("qmp-fake", fake, NULL, NULL);
    return failed | cmocka_run_group_tests_name("qmp-qemu", qemu, setup, teardown);
}
