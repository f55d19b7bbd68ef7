#!/bin/bash
# The shared network with a virtio-net NIC of a QEMU machine, against the
# same network on a host interface and against a Linux bridge, all in the
# same run, same workload (bench/net/compare-lib.sh, shared with
# compare.sh).  From client namespace P-a to the iperf3 server 10.77.0.1 in
# P-lan of `scripts/net-lab up P` (P is $PREFIX, default bh):
#
#   virtio  P-a: TAP eth0 -> net-tap -> tx virt -> net-virtio -> (register
#           accesses through the supervisor over qtest) QEMU's virtio-net
#           device (TCG) -> its TAP vnic0 in P-lan -> br0 (net-lab wire)
#           (examples/net-virtio.yaml with P- for dm- in its names)
#   packet  P-a: ... -> net-packet (AF_PACKET on P-wire) -> P-lan
#           (examples/net-lan.yaml, as compare.sh)
#   bridge  P-x: veth -> br0 in P-br -> P-wire -> P-lan, offloads off as on
#           the devmux paths, then the veth defaults (as compare.sh)
#
# Each path gets a fresh lab.  Workload, each: iperf3 TCP client -> lan and
# lan -> client (-R), 5 s each; iperf3 UDP 64-byte datagrams, no rate limit,
# 5 s; ping -c 50 -i 0.02.  For the devmux paths it reports the CPU seconds
# of the components, the supervisor and QEMU during each test.
#
#   bench/net/compare-virtio.sh [BUILD_DIR]   as root; RUNS (default 3), SECS (5)
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
DEFAULT_PREFIX=bh
RUNS=${RUNS:-3}
TCP_REVERSE=1
. bench/net/compare-lib.sh
command -v qemu-system-x86_64 >/dev/null || { echo "missing qemu-system-x86_64" >&2; exit 1; }
UP_RE='^\[lan0\.driver\] virtio-net [0-9a-f:]* up: '

# virtio_up: the system's control socket, the device driven, its wire
# bridged into the lan and client a addressed; QEMU_PID set.
virtio_up() {
    local deadline=$((SECONDS + 30))
    until grep -q "$UP_RE" "$T/devmux.log"; do
        if ! kill -0 "$SUP" 2>/dev/null || [ $SECONDS -gt $deadline ]; then
            echo "the virtio system did not come up; log:" >&2
            tail -20 "$T/devmux.log" >&2
            return 1
        fi
        sleep 0.1
    done
    "$LAB" wire "$P" vnic0
    "$LAB" addr "$P-a" 10.77.0.10/24
    QEMU_PID=$(ctl machine board | awk 'NR == 1 { for (i = 1; i < NF; i++) if ($i == "pid") print $(i + 1) }')
}

bench_begin

for run in $(seq "$RUNS"); do
    echo "--- run $run"
    "$LAB" up "$P"
    start_devmux examples/net-lan.yaml
    "$LAB" addr "$P-a" 10.77.0.10/24
    sleep 1
    measure packet "$P-a"
    stop_devmux
    devmux_log_faults

    "$LAB" up "$P" # fresh: net-lab wire rearranges the lan
    start_devmux examples/net-virtio.yaml
    if virtio_up; then
        sleep 1
        measure virtio "$P-a"
        # Losses and the register traffic, over all the tests of this path.
        ctl net lan0 | grep -E '^(driver|wire|client a) ' |
            sed -e 's/^/    virtio ctl net: /' -e 's/ rx_bytes=[0-9]*//g; s/ tx_bytes=[0-9]*//g'
        ctl machine board | grep ' device ' | sed 's/^ */    virtio ctl machine: /'
        # Which QEMU threads used the CPU: the main loop (thread id = pid:
        # qtest, the TAP and the device model run there) or the others
        # (the vCPU, halted; RCU; workers).
        for t in /proc/"$QEMU_PID"/task/*; do
            printf '%s %s\n' "${t##*/}" "$(sed 's/.*) //' "$t/stat" | awk '{ print $12 + $13 }')"
        done 2>/dev/null | awk -v pid="$QEMU_PID" -v hz="$(getconf CLK_TCK)" '
            { if ($1 == pid) m += $2; else o += $2 }
            END { printf "    qemu CPU s since start: main loop %.2f, other threads %.2f\n", m / hz, o / hz }'
    else
        printf 'tcp=0 tcp_r=0 udp=0 avg=0 min=0 max=0\n' > "$T/r.virtio"
    fi
    stop_devmux
    devmux_log_faults

    "$LAB" up "$P"
    bridge_baseline
    ratios virtio packet "devmux paths"
    ratios virtio bridge-offl-off "offloads off"
    ratios virtio bridge-default "defaults"
    ratios packet bridge-offl-off "offloads off"
    "$LAB" down "$P"
done
