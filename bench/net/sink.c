/*
 * net-sink: a benchmark client of a shared network.  It counts the frames
 * and bytes it receives and gives each buffer back at once, so the
 * multiplexer, not the client, sets the pace.
 *
 * Config (besides net/client/mac, which the networks: section sets):
 *   echo: 1     send each frame back with the MAC addresses swapped, to
 *               measure the transmit path too; a frame that finds no free
 *               transmit buffer is not echoed (counted as echo_nobuf)
 *   report: 1   log a line with the counters every second
 */
#include <devmux/microkit.h>
#include <devmux/net_client.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define BATCH     256u
#define REPORT_NS 1000000000u

static struct net_client cl;
static bool echo, report;
static uint64_t rx_packets, rx_bytes, echoed, echo_nobuf;

static void echo_frame(const uint8_t *f, uint32_t len)
{
    uint32_t h;
    uint8_t *b = net_client_tx_buffer(&cl, &h);
    if (!b) {
        echo_nobuf++;
        return;
    }
    if (len > cl.buf_size)
        len = cl.buf_size;
    memcpy(b, f + NET_MAC_LEN, NET_MAC_LEN);
    memcpy(b + NET_MAC_LEN, cl.mac, NET_MAC_LEN);
    memcpy(b + 2 * NET_MAC_LEN, f + 2 * NET_MAC_LEN, len - 2 * NET_MAC_LEN);
    net_client_tx_send(&cl, h, len);
    echoed++;
}

static void drain(void)
{
    do {
        const uint8_t *f;
        uint32_t len, h;
        for (unsigned n = 0; n < BATCH && net_client_rx(&cl, &f, &len, &h); n++) {
            rx_packets++;
            rx_bytes += len;
            if (echo && len >= NET_MIN_FRAME)
                echo_frame(f, len);
            net_client_rx_done(&cl, h);
        }
        if (echo)
            net_client_tx_flush(&cl);
    } while (net_client_rx_flush(&cl));
}

void init(void)
{
    if (net_client_init(&cl)) {
        devmux_log("sink: no client regions granted");
        abort();
    }
    echo = devmux_config_u64("echo", 0) != 0;
    report = devmux_config_u64("report", 0) != 0;
    if (report)
        devmux_timeout(REPORT_NS);
    if (net_client_ready(&cl))
        drain();
}

void notified(microkit_channel ch)
{
    if (ch == DEVMUX_TIMER_CHANNEL) {
        devmux_log("SINK rx_packets=%" PRIu64 " rx_bytes=%" PRIu64 " echoed=%" PRIu64
                   " echo_nobuf=%" PRIu64,
                   rx_packets, rx_bytes, echoed, echo_nobuf);
        devmux_timeout(REPORT_NS);
        return;
    }
    net_client_notified(&cl, ch);
    if (net_client_ready(&cl))
        drain();
}
