/*
 * The TAP frontend: a client's virtual NIC shown to an unmodified Linux
 * network stack as a TAP interface in the client's network namespace.  The
 * supervisor created the interface (name, MAC, namespace from the system
 * description) and keeps it across our restarts; we only move frames.
 *
 * Backpressure instead of loss: when all our transmit buffers are in flight
 * we stop reading the TAP (its interrupt stays unacknowledged) until the tx
 * virtualiser hands buffers back, and the kernel's queue in front of the
 * interface absorbs the burst, as it would for a slow NIC.
 */
#include <errno.h>
#include <string.h>
#include <stdlib.h>
#include <unistd.h>

#include "devmux/microkit.h"
#include "devmux/net_client.h"

static struct net_client cl;
static int tap_fd = -1;
static microkit_channel irq;
static bool tx_blocked;
static uint64_t rx_write_errors;

/* Frames from the client OS, out to the network. */
static void from_tap(void)
{
    if (!net_client_ready(&cl)) {
        tx_blocked = true;
        return;
    }
    tx_blocked = false;
    for (unsigned n = 0; n < 256; n++) {
        uint32_t h;
        uint8_t *buf = net_client_tx_buffer(&cl, &h);
        if (!buf) {
            tx_blocked = true;
            break;
        }
        ssize_t r = read(tap_fd, buf, cl.buf_size);
        if (r <= 0) {
            net_client_tx_unget(&cl, h);
            break;
        }
        net_client_tx_send(&cl, h, (uint32_t)r);
    }
    net_client_tx_flush(&cl);
    if (!tx_blocked)
        microkit_irq_ack(irq);
}

/* Frames from the network, into the client OS. */
static void to_tap(void)
{
    do {
        const uint8_t *f;
        uint32_t len, h;
        for (unsigned n = 0; n < 256 && net_client_rx(&cl, &f, &len, &h); n++) {
            if (write(tap_fd, f, len) != (ssize_t)len && rx_write_errors++ == 0)
                devmux_log("writing a frame to the TAP interface: %s", strerror(errno));
            net_client_rx_done(&cl, h);
        }
    } while (net_client_rx_flush(&cl));
}

void init(void)
{
    tap_fd = devmux_device("tap", &irq);
    if (tap_fd < 0 || net_client_init(&cl)) {
        devmux_log("TAP frontend: no TAP device or client regions granted");
        abort();
    }
}

void notified(microkit_channel ch)
{
    if (ch == irq) {
        from_tap();
        return;
    }
    bool was_ready = net_client_ready(&cl);
    net_client_notified(&cl, ch);
    /* Whichever acknowledgement completed a restart handshake, the TAP's
     * interrupt may be waiting unacknowledged since before it. */
    if ((ch == NET_CLIENT_CH_TX && tx_blocked) || (!was_ready && net_client_ready(&cl)))
        from_tap();
    if (ch == NET_CLIENT_CH_RX)
        to_tap();
}
