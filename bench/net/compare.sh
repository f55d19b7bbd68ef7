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
# For devmux it also reports the CPU time of its components during each
# test.  Not a test: numbers depend on the machine.
#
#   bench/net/compare.sh [BUILD_DIR]      as root; RUNS (default 2), SECS (5)
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
DEVMUX=$BUILD/devmux
RUNS=${RUNS:-2}
SECS=${SECS:-5}
SERVER=10.77.0.1
LAB=scripts/net-lab
# Our own net-lab prefix: other people's labs (dm, ...) may run meanwhile.
P=${PREFIX:-dmc}

if [ "$(id -u)" != 0 ]; then
    echo "bench/net/compare.sh: needs root (namespaces, veth, bridge)" >&2
    exit 1
fi
for p in iperf3 ping ethtool jq; do
    command -v $p >/dev/null || { echo "missing $p" >&2; exit 1; }
done

T=$(mktemp -d /tmp/devmux-netcmp.XXXXXX)
SUP=
export DEVMUX_RUNDIR=$T/run

stop_devmux() {
    if [ -n "$SUP" ]; then
        kill -TERM "$SUP" 2>/dev/null || true
        wait "$SUP" 2>/dev/null || true
        SUP=
    fi
}
bridge_down() {
    ip netns del "$P-x" 2>/dev/null || true
    ip netns del "$P-br" 2>/dev/null || true # takes the wire and its peer with it
}
cleanup() {
    stop_devmux
    bridge_down
    "$LAB" down "$P"
    rm -rf "$T"
}
trap cleanup EXIT

# offloads on|off IFACE [NETNS]: tx checksum, TSO and GSO; GRO stays off,
# which is both what net-lab sets on the wire and a fresh veth's default.
offloads() {
    local v=$1 dev=$2 ns=${3:-}
    if [ -n "$ns" ]; then
        ip netns exec "$ns" ethtool -K "$dev" tx "$v" tso "$v" gso "$v" gro off >/dev/null 2>&1 || true
    else
        ethtool -K "$dev" tx "$v" tso "$v" gso "$v" gro off >/dev/null 2>&1 || true
    fi
}

# CPU seconds (utime + stime) of every devmux component, summed.
devmux_cpu() {
    [ -n "$SUP" ] || { echo 0; return; }
    local hz
    hz=$(getconf CLK_TCK)
    "$DEVMUX" ctl --ctl "$T/ctl.sock" status |
        awk 'NR > 2 && $1 != "ch" && $1 != "OK" && $3 > 0 { print $3 }' |
        while read -r pid; do sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null || true; done |
        awk -v hz="$hz" '{ s += $12 + $13 } END { printf "%.2f\n", s / hz }'
}

# measure LABEL NETNS: prints one line, and the same as "key=value" in $T/LABEL
measure() {
    local label=$1 ns=$2 c0 c1 tcp udp_pps udp_sent_pps rtt
    # Warm up ARP and the path.
    ip netns exec "$ns" ping -c 3 -i 0.2 -W 1 "$SERVER" >/dev/null 2>&1 || true

    c0=$(devmux_cpu)
    ip netns exec "$ns" iperf3 -c "$SERVER" -t "$SECS" -J > "$T/tcp.json" 2>&1 || true
    c1=$(devmux_cpu)
    tcp=$(jq -r '(.end.sum_received.bits_per_second // 0) / 1e6' "$T/tcp.json" 2>/dev/null || echo 0)
    local tcp_cpu
    tcp_cpu=$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.2f", b - a }')

    c0=$(devmux_cpu)
    ip netns exec "$ns" iperf3 -c "$SERVER" -u -b 0 -l 64 -t "$SECS" -J > "$T/udp.json" 2>&1 || true
    c1=$(devmux_cpu)
    # Receiver side: what the server got (sum_received in iperf3 >= 3.9,
    # else the server's report folded into sum).
    udp_pps=$(jq -r '(.end.sum_received // .end.sum) as $r |
        (($r.packets // 0) - ($r.lost_packets // 0)) / ($r.seconds // 1)' "$T/udp.json" 2>/dev/null || echo 0)
    udp_sent_pps=$(jq -r '(.end.sum_sent // .end.sum) as $s | ($s.packets // 0) / ($s.seconds // 1)' \
        "$T/udp.json" 2>/dev/null || echo 0)
    local udp_cpu
    udp_cpu=$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.2f", b - a }')

    rtt=$(ip netns exec "$ns" ping -q -c 50 -i 0.02 "$SERVER" 2>&1 | awk -F'[ /]+' '/^rtt|^round-trip/ {
        for (i = 1; i <= NF; i++) if ($i == "=") { printf "%s %s %s", $(i + 2), $(i + 1), $(i + 3); exit } }')
    [ -n "$rtt" ] || rtt="0 0 0"
    set -- $rtt
    printf '%-16s TCP %8.1f Mbit/s | UDP-64 %9.0f datagrams/s received (%9.0f sent) | ping avg %.3f min %.3f max %.3f ms' \
        "$label" "$tcp" "$udp_pps" "$udp_sent_pps" "$1" "$2" "$3"
    if [ "$label" = devmux ]; then
        printf ' | devmux CPU s: TCP %s, UDP %s' "$tcp_cpu" "$udp_cpu"
    fi
    printf '\n'
    printf 'tcp=%s udp=%s avg=%s min=%s max=%s\n' "$tcp" "$udp_pps" "$1" "$2" "$3" > "$T/r.$label"
}

ratio() { # ratio A B KEY
    awk -v k="$3" '
        FNR == 1 { f++ }
        { for (i = 1; i <= NF; i++) { split($i, a, "="); v[f, a[1]] = a[2] } }
        END { if (v[2, k] > 0) printf "%.2f", v[1, k] / v[2, k]; else printf "-" }' "$T/r.$1" "$T/r.$2"
}

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) CPUs, kernel $(uname -r), $(iperf3 --version | head -1)"

for run in $(seq "$RUNS"); do
    echo "--- run $run"
    "$LAB" up "$P"

    # devmux: examples/net-lan.yaml with our prefix's names; client a.
    sed -e "s/dm-wire/$P-wire/" -e "s/netns: dm-a/netns: $P-a/" -e "s/netns: dm-b/netns: $P-b/" \
        -e "s/^system: net-lan/system: net-lan-$P/" examples/net-lan.yaml > "$T/net-lan.yaml"
    "$DEVMUX" run "$T/net-lan.yaml" --ctl "$T/ctl.sock" > "$T/devmux.log" 2>&1 &
    SUP=$!
    "$LAB" addr "$P-a" 10.77.0.10/24
    sleep 1
    measure devmux "$P-a"
    # Where frames were lost on the devmux path, over all three tests.
    "$DEVMUX" ctl --ctl "$T/ctl.sock" net lan0 | grep -E '^(driver|wire|client a) ' |
        sed -e 's/^/    devmux ctl net: /' -e 's/ rx_bytes=[0-9]*//g; s/ tx_bytes=[0-9]*//g'
    stop_devmux
    if grep -q "fault\|killed\|exited" "$T/devmux.log"; then
        grep "fault\|killed\|exited" "$T/devmux.log" | head -5 | sed 's/^/    devmux log: /'
    fi

    # The bridge: dm-wire moves into a bridge namespace; a fresh namespace
    # gets a veth into the same bridge.
    bridge_down
    ip netns add "$P-br"
    ip netns add "$P-x"
    ip -n "$P-x" link set lo up
    ip link set "$P-wire" netns "$P-br"
    ip -n "$P-br" link add br0 type bridge
    ip -n "$P-br" link set "$P-wire" master br0
    ip -n "$P-br" link add veth-x type veth peer name eth0 netns "$P-x"
    ip -n "$P-br" link set veth-x master br0
    for i in br0 "$P-wire" veth-x; do ip -n "$P-br" link set "$i" up; done
    ip -n "$P-x" addr add 10.77.0.20/24 dev eth0
    ip -n "$P-x" link set eth0 up
    sleep 1

    offloads off eth0 "$P-x"
    offloads off veth-x "$P-br"
    offloads off "$P-wire" "$P-br"
    offloads off eth0 "$P-lan"
    measure bridge-offl-off "$P-x"

    offloads on eth0 "$P-x"
    offloads on veth-x "$P-br"
    offloads on "$P-wire" "$P-br"
    offloads on eth0 "$P-lan"
    measure bridge-default "$P-x"

    echo "devmux / bridge (offloads off): TCP $(ratio devmux bridge-offl-off tcp)," \
        "UDP $(ratio devmux bridge-offl-off udp), ping avg $(ratio devmux bridge-offl-off avg)"
    echo "devmux / bridge (defaults):     TCP $(ratio devmux bridge-default tcp)," \
        "UDP $(ratio devmux bridge-default udp), ping avg $(ratio devmux bridge-default avg)"
    bridge_down
    "$LAB" down "$P"
done
