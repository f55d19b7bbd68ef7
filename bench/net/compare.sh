#!/bin/bash
# devmux against a Linux bridge, same run, same workload.  From a client
# namespace to the "lan" namespace of `scripts/net-lab up P` (10.77.0.1,
# iperf3 server), over the same wire (the veth P-wire); P is $PREFIX,
# default dmc, so that labs others run with other prefixes are left alone:
#
#   devmux  P-a: TAP eth0 -> net-tap -> tx virt -> net-packet (AF_PACKET
#           on P-wire) -> P-lan, and back through rx virt and a copier
#           (examples/net-lan.yaml with P- for dm- in its names)
#   bridge  P-x: veth eth0 -> br0 in namespace P-br -> P-wire -> P-lan
#           once with the offloads devmux's path has (tx, tso, gso, gro off
#           on every veth end), once with the veth defaults everywhere
#
# Workload, each: iperf3 TCP for 5 s; iperf3 UDP, 64-byte datagrams, no rate
# limit, 5 s (datagrams/s the receiver got); ping -c 50 -i 0.02 (rtt).
# For devmux it also reports the CPU time of its components (and of the
# supervisor and QEMU) during each test.  The code is shared with
# compare-virtio.sh (bench/net/compare-lib.sh).  Not a test: numbers depend
# on the machine.
#
#   bench/net/compare.sh [BUILD_DIR]      as root; RUNS (default 2), SECS (5)
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
DEFAULT_PREFIX=dmc
. bench/net/compare-lib.sh

bench_begin

for run in $(seq "$RUNS"); do
    echo "--- run $run"
    "$LAB" up "$P"

    # devmux: examples/net-lan.yaml with our prefix's names; client a.
    # Twice: with every component's limits (CPU budget and weight, memory
    # quota, task bound) as the description gives them, and with none
    # (DEVMUX_LIMITS=off), to show what they cost.
    for limits in auto off; do
        label=devmux
        [ $limits = off ] && label=devmux-nolimits
        export DEVMUX_LIMITS=$limits
        start_devmux examples/net-lan.yaml
        "$LAB" addr "$P-a" 10.77.0.10/24
        sleep 1
        measure $label "$P-a"
        # Where frames were lost on the devmux path, over all three tests.
        ctl net lan0 | grep -E '^(driver|wire|client a) ' |
            sed -e "s/^/    $label ctl net: /" -e 's/ rx_bytes=[0-9]*//g; s/ tx_bytes=[0-9]*//g'
        stop_devmux
        devmux_log_faults
    done

    unset DEVMUX_LIMITS
    bridge_baseline
    ratios devmux devmux-nolimits "with limits / without"
    ratios devmux bridge-offl-off "offloads off"
    ratios devmux bridge-default "defaults"
    "$LAB" down "$P"
done
