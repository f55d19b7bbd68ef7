/*
 * The qemu backend's wire: what a driver component's hardware layer sends
 * to the supervisor, which owns the machine's qtest socket.  One
 * SOCK_SEQPACKET socket per granted device; one message per request.
 *
 * The supervisor trusts nothing in a request: the device is implied by the
 * socket, and every address is checked against that device's own BARs and
 * config space before a qtest line is built.  Writes are posted (no reply);
 * reads and resets get one reply each, in order.  A refused request is
 * logged and counted; a refused read replies -EPERM.
 */
#ifndef DEVMUX_HW_QEMU_WIRE_H
#define DEVMUX_HW_QEMU_WIRE_H

#include <stdint.h>

enum hw_wire_op {
    HW_OP_CFG_READ = 1, /* addr = config offset */
    HW_OP_CFG_WRITE,
    HW_OP_MEM_READ, /* addr = bus address (inside a memory BAR of this device) */
    HW_OP_MEM_WRITE,
    HW_OP_IO_READ, /* addr = port (inside an I/O BAR of this device) */
    HW_OP_IO_WRITE,
    HW_OP_ENABLE, /* decoding and bus mastering on */
    HW_OP_RESET,  /* quiesce and restore the BAR assignment */
};

struct hw_wire_req {
    uint32_t op;
    uint32_t width; /* 1, 2, 4 or 8 bytes */
    uint64_t addr;
    uint64_t value;
};

struct hw_wire_rep {
    int32_t err; /* 0 or -errno */
    uint32_t op; /* echoes the request's op */
    uint64_t value;
};

#endif
