#include "hw/qemu/qtest.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

void qtest_init(struct qtest *q, int fd, qtest_irq_fn on_irq, void *ctx)
{
    memset(q, 0, sizeof(*q));
    q->fd = fd;
    q->on_irq = on_irq;
    q->irq_ctx = ctx;
}

void qtest_close(struct qtest *q)
{
    if (q->fd >= 0)
        close(q->fd);
    q->fd = -1;
}

/* An asynchronous line: "IRQ raise N" / "IRQ lower N".  True if it was one. */
static bool irq_line(struct qtest *q, const char *line)
{
    unsigned n;
    char what[8];
    if (sscanf(line, "IRQ %7s %u", what, &n) != 2)
        return false;
    q->irq_events++;
    if (q->on_irq)
        q->on_irq(q->irq_ctx, n, !strcmp(what, "raise"));
    return true;
}

/* Next complete line from the socket into out (NUL-terminated, no newline).
 * block: wait for one; else return -EAGAIN if none is complete. */
static int next_line(struct qtest *q, char *out, size_t n, bool block)
{
    for (;;) {
        char *nl = memchr(q->buf, '\n', q->len);
        if (nl) {
            size_t l = (size_t)(nl - q->buf);
            if (l >= n)
                return -EPROTO;
            memcpy(out, q->buf, l);
            out[l] = 0;
            q->len -= l + 1;
            memmove(q->buf, nl + 1, q->len);
            return 0;
        }
        if (q->len == sizeof(q->buf))
            return -EPROTO; /* a line longer than any reply the protocol has */
        if (q->fd < 0)
            return -EPIPE;
        if (block) {
            /* A QEMU that stops answering (stopped, wedged) must not hang
             * its caller; a late reply would pair with the wrong request,
             * so the connection is given up. */
            struct pollfd p = {.fd = q->fd, .events = POLLIN};
            int pr = poll(&p, 1, QTEST_TIMEOUT_MS);
            if (pr < 0 && errno == EINTR)
                continue;
            if (pr == 0) {
                close(q->fd);
                q->fd = -1;
                return -EPIPE;
            }
        }
        ssize_t r = recv(q->fd, q->buf + q->len, sizeof(q->buf) - q->len, block ? 0 : MSG_DONTWAIT);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && !block && (errno == EAGAIN || errno == EWOULDBLOCK))
            return -EAGAIN;
        if (r <= 0)
            return -EPIPE;
        q->len += (size_t)r;
    }
}

/* Sends one request line and waits for its reply, dispatching interrupt
 * lines on the way.  reply gets the text after "OK" (may be empty). */
static int request(struct qtest *q, char *reply, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int request(struct qtest *q, char *reply, size_t n, const char *fmt, ...)
{
    char line[160];
    va_list ap;
    va_start(ap, fmt);
    int l = vsnprintf(line, sizeof(line) - 1, fmt, ap);
    va_end(ap);
    if (l <= 0 || (size_t)l >= sizeof(line) - 1)
        return -EINVAL;
    line[l++] = '\n';
    if (q->fd < 0)
        return -EPIPE;
    for (size_t off = 0; off < (size_t)l;) {
        ssize_t w = send(q->fd, line + off, (size_t)l - off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -EPIPE;
        off += (size_t)w;
    }
    q->requests++;
    char in[256];
    for (;;) {
        int err = next_line(q, in, sizeof(in), true);
        if (err)
            return err;
        if (irq_line(q, in))
            continue;
        if (!strncmp(in, "OK", 2) && (in[2] == 0 || in[2] == ' ')) {
            const char *text = in[2] ? in + 3 : "";
            size_t tl = strlen(text);
            if (tl >= n)
                return -EPROTO; /* longer than any reply to this request */
            memcpy(reply, text, tl + 1);
            /* Interrupt lines that came in the same read as the reply sit
             * in our buffer, where the caller's poll on the socket would
             * never see them: deliver them now. */
            while (memchr(q->buf, '\n', q->len) && !next_line(q, in, sizeof(in), false) &&
                   irq_line(q, in))
                ;
            return 0;
        }
        return -EPROTO; /* FAIL ..., or anything else */
    }
}

static int parse_hex(const char *s, uint64_t *v)
{
    char *end;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 16);
    if (errno || end == s || *end)
        return -EPROTO;
    *v = x;
    return 0;
}

static const char *suffix(unsigned width)
{
    switch (width) {
    case 1:
        return "b";
    case 2:
        return "w";
    case 4:
        return "l";
    case 8:
        return "q";
    default:
        return NULL;
    }
}

int qtest_in(struct qtest *q, unsigned width, uint16_t port, uint32_t *value)
{
    const char *s = suffix(width);
    if (!s || width == 8)
        return -EINVAL;
    char r[64];
    int err = request(q, r, sizeof(r), "in%s 0x%x", s, port);
    uint64_t v = 0;
    if (!err)
        err = parse_hex(r, &v);
    *value = (uint32_t)v;
    return err;
}

int qtest_out(struct qtest *q, unsigned width, uint16_t port, uint32_t value)
{
    const char *s = suffix(width);
    if (!s || width == 8 || (width < 4 && value >> (8 * width)))
        return -EINVAL;
    char r[64];
    return request(q, r, sizeof(r), "out%s 0x%x 0x%" PRIx32, s, port, value);
}

int qtest_read(struct qtest *q, unsigned width, uint64_t addr, uint64_t *value)
{
    const char *s = suffix(width);
    if (!s || addr % width)
        return -EINVAL;
    char r[64];
    int err = request(q, r, sizeof(r), "read%s 0x%" PRIx64, s, addr);
    *value = 0;
    return err ? err : parse_hex(r, value);
}

int qtest_write(struct qtest *q, unsigned width, uint64_t addr, uint64_t value)
{
    const char *s = suffix(width);
    if (!s || addr % width || (width < 8 && value >> (8 * width)))
        return -EINVAL;
    char r[64];
    return request(q, r, sizeof(r), "write%s 0x%" PRIx64 " 0x%" PRIx64, s, addr, value);
}

int qtest_intercept_irqs(struct qtest *q)
{
    char r[64];
    return request(q, r, sizeof(r), "irq_intercept_in ioapic");
}

int qtest_poll(struct qtest *q)
{
    char in[256];
    for (;;) {
        int err = next_line(q, in, sizeof(in), false);
        if (err == -EAGAIN)
            return 0;
        if (err)
            return err;
        if (!irq_line(q, in))
            return -EPROTO; /* a reply nobody asked for */
    }
}
