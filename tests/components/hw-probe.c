/*
 * hw-probe: a driver component for the hardware-layer tests.  It opens the
 * device granted as "dev", reports what the layer says about it, checks
 * config space and a register against that, and then, as a hostile driver
 * would, tries to reach beyond its device:
 *   - through the API: a BAR it does not have, past the end of a BAR, a
 *     config write to a BAR register (all must fail with -EPERM or -EINVAL);
 *   - around the API, with raw requests on the wire socket: reads of every
 *     page of the machine's BAR window, config offsets past 256, a
 *     malformed message (all must be refused by the supervisor; only its
 *     own BARs may answer).
 * It logs one line "hw-probe: RESULT ..." per check, which the test reads,
 * and keeps running (a refusal must not kill the driver).
 *
 * config:  expect_vendor, expect_device (hex)   the IDs the test expects
 *          irq_test: 1                          (virtio-net only) make the
 *                                               device interrupt and wait
 */
#include <devmux/hw.h>
#include <devmux/microkit.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "hw/backend.h"
#include "hw/qemu/wire.h"

static struct hw_device *dev;
static microkit_channel irq;
static unsigned irqs_seen;

#define RESULT(ok, ...)                                                                            \
    do {                                                                                           \
        char m_[300];                                                                              \
        snprintf(m_, sizeof(m_), __VA_ARGS__);                                                     \
        devmux_log("hw-probe: %s %s", (ok) ? "PASS" : "FAIL", m_);                                 \
    } while (0)

static bool own_addr(uint64_t a)
{
    const struct hw_pci_info *in = hw_info(dev);
    for (unsigned i = 0; i < HW_MAX_BARS; i++)
        if (in->bar[i].kind != HW_BAR_NONE && in->bar[i].kind != HW_BAR_IO &&
            a >= in->bar[i].addr && a - in->bar[i].addr < in->bar[i].size)
            return true;
    return false;
}

static int raw(uint32_t op, unsigned width, uint64_t addr, uint64_t *val)
{
    struct hw_wire_req q = {.op = op, .width = width, .addr = addr};
    if (send(dev->fd, &q, sizeof(q), MSG_NOSIGNAL) != sizeof(q))
        return -EIO;
    struct hw_wire_rep r;
    if (recv(dev->fd, &r, sizeof(r), 0) != sizeof(r))
        return -EIO;
    *val = r.value;
    return r.err;
}

/* A posted request: the supervisor never answers a write. */
static void raw_post(uint32_t op, unsigned width, uint64_t addr, uint64_t val)
{
    struct hw_wire_req q = {.op = op, .width = width, .addr = addr, .value = val};
    send(dev->fd, &q, sizeof(q), MSG_NOSIGNAL);
}

static void hostile(void)
{
    const struct hw_pci_info *in = hw_info(dev);
    uint64_t v;
    unsigned missing = HW_MAX_BARS;
    for (unsigned i = 0; i < HW_MAX_BARS; i++)
        if (in->bar[i].kind == HW_BAR_NONE) {
            missing = i;
            break;
        }
    if (missing < HW_MAX_BARS) {
        int err = hw_read(dev, missing, 0, 4, &v);
        RESULT(err == -EPERM, "api-missing-bar BAR%u err %d", missing, err);
    }
    for (unsigned i = 0; i < HW_MAX_BARS; i++) {
        if (in->bar[i].kind == HW_BAR_NONE || in->bar[i].kind == HW_BAR_IO)
            continue;
        int err = hw_read(dev, i, in->bar[i].size, 4, &v);
        RESULT(err == -EPERM, "api-past-bar BAR%u+%#" PRIx64 " err %d", i, in->bar[i].size, err);
        err = hw_read(dev, i, 2, 4, &v);
        RESULT(err == -EINVAL, "api-unaligned err %d", err);
        break;
    }
    int err = hw_cfg_write(dev, 0x10, 4, 0xfee00000u);
    RESULT(err == -EPERM, "api-bar-write err %d", err);

    /* Around the API: every page of the BAR window, as raw bus addresses. */
    unsigned refused = 0, answered_own = 0, leaked = 0;
    for (uint64_t a = 0xc0000000ull; a < 0xc0200000ull; a += 0x1000) {
        err = raw(HW_OP_MEM_READ, 4, a, &v);
        if (own_addr(a))
            answered_own += err == 0;
        else if (err == -EPERM)
            refused++;
        else
            leaked++;
    }
    RESULT(leaked == 0 && refused > 0 && answered_own > 0, "raw-window refused %u own %u leaked %u",
           refused, answered_own, leaked);
    err = raw(HW_OP_CFG_READ, 4, 0x100, &v);
    RESULT(err == -EPERM, "raw-cfg-beyond err %d", err);
    /* Posted writes get no reply: the supervisor's refusals show in its log
     * and counters, and the read after them must still be answered. */
    raw_post(HW_OP_CFG_WRITE, 4, 0x14, 0xc0064000u); /* move a BAR onto another device's */
    raw_post(HW_OP_MEM_WRITE, 4, 0xc0064000ull, 0);  /* another device's registers */
    uint32_t id;
    err = hw_cfg_read(dev, 0, 4, &id);
    RESULT(err == 0 && (id & 0xffff) == in->vendor, "after-refusals id %08x err %d", id, err);
    /* The command register is the driver's only for decode, bus mastering
     * and INTx masking, and only as a whole: SERR# (bit 8) never sticks. */
    raw_post(HW_OP_CFG_WRITE, 1, 0x05, 0xff);
    raw_post(HW_OP_CFG_WRITE, 2, 0x04, 0xffff);
    uint32_t cmd = 0;
    err = hw_cfg_read(dev, 0x04, 2, &cmd);
    RESULT(err == 0 && !(cmd & 0x0100) && (cmd & 0x0004), "cmd-filter command %04x err %d", cmd,
           err);
    raw_post(HW_OP_CFG_WRITE, 2, 0x04, 0x0002); /* bus mastering off again */
    char junk[5] = "junk";
    send(dev->fd, junk, sizeof(junk), MSG_NOSIGNAL);
    err = hw_cfg_read(dev, 0, 4, &id);
    RESULT(err == 0 && (id & 0xffff) == in->vendor, "after-malformed id %08x err %d", id, err);
}

void init(void)
{
    dev = hw_open("dev", &irq);
    if (!dev) {
        RESULT(false, "open");
        return;
    }
    const struct hw_pci_info *in = hw_info(dev);
    devmux_log("hw-probe: device %04x:%04x class %06x slot %02x gsi %u", in->vendor, in->device,
               in->class_code, in->slot, in->gsi);
    for (unsigned i = 0; i < HW_MAX_BARS; i++)
        if (in->bar[i].kind != HW_BAR_NONE)
            devmux_log("hw-probe: bar %u kind %u addr %#" PRIx64 " size %#" PRIx64, i,
                       in->bar[i].kind, in->bar[i].addr, in->bar[i].size);
    uint64_t ev = devmux_config_u64("expect_vendor", 0), ed = devmux_config_u64("expect_device", 0);
    RESULT(in->vendor == ev && in->device == ed, "ids %04x:%04x expected %04x:%04x", in->vendor,
           in->device, (unsigned)ev, (unsigned)ed);
    uint32_t id = 0;
    int err = hw_cfg_read(dev, 0, 4, &id);
    RESULT(!err && id == ((uint32_t)in->device << 16 | in->vendor), "cfg-id %08x err %d", id, err);
    /* The BARs the layer reports are the ones the device decodes. */
    bool bars_ok = true;
    for (unsigned i = 0; i < HW_MAX_BARS; i++) {
        if (in->bar[i].kind == HW_BAR_NONE)
            continue;
        uint32_t lo = 0;
        hw_cfg_read(dev, 0x10 + 4 * i, 4, &lo);
        bars_ok &= (lo & ~0xfu) == (uint32_t)(in->bar[i].addr & ~0xfull) ||
                   (in->bar[i].kind == HW_BAR_IO && (lo & ~3u) == (uint32_t)in->bar[i].addr);
        if (in->bar[i].kind == HW_BAR_MEM64)
            i++;
    }
    RESULT(bars_ok, "cfg-bars match");
    hostile();
    const struct hw_stats *st = hw_stats(dev);
    devmux_log("hw-probe: done reads %" PRIu64 " writes %" PRIu64 " refused %" PRIu64, st->reads,
               st->writes, st->refused);
}

void notified(microkit_channel ch)
{
    if (ch == irq) {
        irqs_seen++;
        microkit_irq_ack(ch);
    }
}
