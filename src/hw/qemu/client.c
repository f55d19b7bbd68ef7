/*
 * The qemu backend, component side: each access becomes one message to the
 * supervisor (src/hw/qemu/wire.h), which owns the machine's qtest socket.
 * Writes are posted: they return once sent, and the socket keeps them in
 * order with the reads that follow.
 */
#include <errno.h>
#include <sys/socket.h>

#include "hw/backend.h"
#include "hw/qemu/wire.h"

static int post(struct hw_device *d, uint32_t op, unsigned width, uint64_t addr, uint64_t value)
{
    struct hw_wire_req q = {.op = op, .width = width, .addr = addr, .value = value};
    ssize_t n;
    do
        n = send(d->fd, &q, sizeof(q), MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return n == (ssize_t)sizeof(q) ? 0 : -EIO;
}

static int call(struct hw_device *d, uint32_t op, unsigned width, uint64_t addr, uint64_t value,
                uint64_t *out)
{
    int err = post(d, op, width, addr, value);
    if (err)
        return err;
    struct hw_wire_rep r;
    ssize_t n;
    do
        n = recv(d->fd, &r, sizeof(r), 0);
    while (n < 0 && errno == EINTR);
    /* The supervisor answers every call, in order; anything else means the
     * machine (or the supervisor's side of it) is gone. */
    if (n != (ssize_t)sizeof(r) || r.op != op)
        return -EIO;
    if (out)
        *out = r.value;
    return r.err;
}

static int q_cfg_read(struct hw_device *d, unsigned off, unsigned width, uint32_t *val)
{
    uint64_t v = 0;
    int err = call(d, HW_OP_CFG_READ, width, off, 0, &v);
    *val = (uint32_t)v;
    return err;
}

static int q_cfg_write(struct hw_device *d, unsigned off, unsigned width, uint32_t val)
{
    return post(d, HW_OP_CFG_WRITE, width, off, val);
}

static int q_read(struct hw_device *d, unsigned bar, uint64_t off, unsigned width, uint64_t *val)
{
    const struct hw_bar *b = &d->info.bar[bar];
    return call(d, b->kind == HW_BAR_IO ? HW_OP_IO_READ : HW_OP_MEM_READ, width, b->addr + off, 0,
                val);
}

static int q_write(struct hw_device *d, unsigned bar, uint64_t off, unsigned width, uint64_t val)
{
    const struct hw_bar *b = &d->info.bar[bar];
    return post(d, b->kind == HW_BAR_IO ? HW_OP_IO_WRITE : HW_OP_MEM_WRITE, width, b->addr + off,
                val);
}

static int q_enable(struct hw_device *d)
{
    return call(d, HW_OP_ENABLE, 0, 0, 0, NULL);
}

static int q_reset(struct hw_device *d)
{
    return call(d, HW_OP_RESET, 0, 0, 0, NULL);
}

static int q_irq_mode(struct hw_device *d, enum hw_irq_mode mode)
{
    (void)d;
    /* qtest sees only the IOAPIC's input lines; an MSI is a memory write
     * it never reports. */
    return mode == HW_IRQ_INTX ? 0 : -ENOTSUP;
}

const struct hw_backend_ops hw_qemu_ops = {
    .cfg_read = q_cfg_read,
    .cfg_write = q_cfg_write,
    .read = q_read,
    .write = q_write,
    .enable = q_enable,
    .reset = q_reset,
    .irq_mode = q_irq_mode,
};
