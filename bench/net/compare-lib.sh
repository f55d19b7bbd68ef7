# Shared by bench/net/compare.sh and bench/net/compare-virtio.sh: the lab,
# the devmux systems, the Linux bridge baseline and the measurement, so
# that every path in both scripts is measured by the same code.  Sourced
# after `cd` to the top of the tree, with BUILD set.
#
# Environment: RUNS (default 2), SECS (5), PREFIX (the net-lab prefix,
# default $DEFAULT_PREFIX), TCP_REVERSE=1 (also iperf3 -R: lan -> client).
DEVMUX=$BUILD/devmux
RUNS=${RUNS:-2}
SECS=${SECS:-5}
SERVER=10.77.0.1
LAB=scripts/net-lab
# Our own net-lab prefix: other people's labs (dm, ...) may run meanwhile.
P=${PREFIX:-${DEFAULT_PREFIX:-dmc}}
TCP_REVERSE=${TCP_REVERSE:-0}
# For cycles per datagram (0 if the tool is not built: no cycle figures).
TSC_HZ=$("$BUILD/bench/net/net-tsc-hz" 2>/dev/null || echo 0)
. bench/net/quiet.sh

if [ "$(id -u)" != 0 ]; then
    echo "$0: needs root (namespaces, veth, bridge)" >&2
    exit 1
fi
for p in iperf3 ping ethtool jq; do
    command -v $p >/dev/null || { echo "missing $p" >&2; exit 1; }
done
[ -x "$DEVMUX" ] || { echo "missing $DEVMUX; run ninja -C $BUILD" >&2; exit 1; }

T=$(mktemp -d /tmp/devmux-netcmp.XXXXXX)
SUP=
QEMU_PID=
export DEVMUX_RUNDIR=$T/run

stop_devmux() {
    if [ -n "$SUP" ]; then
        kill -TERM "$SUP" 2>/dev/null || true
        wait "$SUP" 2>/dev/null || true
        SUP=
    fi
    QEMU_PID=
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

ctl() { "$DEVMUX" ctl --ctl "$T/ctl.sock" "$@"; }

# start_devmux EXAMPLE: the example with our prefix's names (dm-X -> P-X,
# system NAME -> NAME-P), started in the background; client a addressed.
start_devmux() {
    local name
    name=$(basename "$1" .yaml)
    sed -e "s/dm-wire/$P-wire/" -e "s/netns: dm-\(lan\|a\|b\)\([,}]\)/netns: $P-\1\2/" \
        -e "s/^system: $name\$/system: $name-$P/" "$1" > "$T/$name.yaml"
    "$DEVMUX" run "$T/$name.yaml" --ctl "$T/ctl.sock" > "$T/devmux.log" 2>&1 &
    SUP=$!
}

# devmux_log_faults: faults during the measurement, from the supervisor's log.
devmux_log_faults() {
    if grep -q "fault\|killed\|exited" "$T/devmux.log"; then
        grep "fault\|killed\|exited" "$T/devmux.log" | head -5 | sed 's/^/    devmux log: /'
    fi
}

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

# CPU seconds (utime + stime) of one process, all its threads.
proc_cpu() {
    local hz stat
    hz=$(getconf CLK_TCK)
    if [ -n "${1:-}" ] && stat=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null); then
        echo "$stat" | awk -v hz="$hz" '{ printf "%.2f\n", ($12 + $13) / hz }'
    else
        echo 0
    fi
}

# CPU seconds (utime + stime) of every devmux component, summed.
devmux_cpu() {
    [ -n "$SUP" ] || { echo 0; return; }
    local hz
    hz=$(getconf CLK_TCK)
    ctl status |
        awk 'NR > 2 && $1 != "ch" && $1 != "OK" && $3 > 0 { print $3 }' |
        while read -r pid; do sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null || true; done |
        awk -v hz="$hz" '{ s += $12 + $13 } END { printf "%.2f\n", s / hz }'
}

# cpu_snap: "components supervisor qemu" CPU seconds so far.
cpu_snap() { echo "$(devmux_cpu) $(proc_cpu "$SUP") $(proc_cpu "$QEMU_PID")"; }
# cpu_diff "A" "B": the same three, used between two snapshots.
cpu_diff() {
    awk -v a="$1" -v b="$2" 'BEGIN { split(a, x, " "); split(b, y, " ")
        printf "%.2f/%.2f/%.2f", y[1] - x[1], y[2] - x[2], y[3] - x[3] }'
}

# measure LABEL NETNS: prints one line, and the same as "key=value" in $T/r.LABEL
measure() {
    local label=$1 ns=$2 c0 c1 tcp tcp_r=0 udp_pps udp_sent_pps rtt
    local tcp_cpu tcp_r_cpu= udp_cpu
    # Warm up ARP and the path.
    ip netns exec "$ns" ping -c 3 -i 0.2 -W 1 "$SERVER" >/dev/null 2>&1 || true

    c0=$(cpu_snap)
    ip netns exec "$ns" iperf3 -c "$SERVER" -t "$SECS" -J > "$T/tcp.json" 2>&1 || true
    c1=$(cpu_snap)
    tcp=$(jq -r '(.end.sum_received.bits_per_second // 0) / 1e6' "$T/tcp.json" 2>/dev/null || echo 0)
    tcp_cpu=$(cpu_diff "$c0" "$c1")

    if [ "$TCP_REVERSE" = 1 ]; then
        c0=$(cpu_snap)
        ip netns exec "$ns" iperf3 -c "$SERVER" -t "$SECS" -R -J > "$T/tcp-r.json" 2>&1 || true
        c1=$(cpu_snap)
        tcp_r=$(jq -r '(.end.sum_received.bits_per_second // 0) / 1e6' "$T/tcp-r.json" 2>/dev/null || echo 0)
        tcp_r_cpu=$(cpu_diff "$c0" "$c1")
    fi

    c0=$(cpu_snap)
    ip netns exec "$ns" iperf3 -c "$SERVER" -u -b 0 -l 64 -t "$SECS" -J > "$T/udp.json" 2>&1 || true
    c1=$(cpu_snap)
    # Receiver side: what the server got (sum_received in iperf3 >= 3.9,
    # else the server's report folded into sum).
    udp_pps=$(jq -r '(.end.sum_received // .end.sum) as $r |
        (($r.packets // 0) - ($r.lost_packets // 0)) / ($r.seconds // 1)' "$T/udp.json" 2>/dev/null || echo 0)
    udp_sent_pps=$(jq -r '(.end.sum_sent // .end.sum) as $s | ($s.packets // 0) / ($s.seconds // 1)' \
        "$T/udp.json" 2>/dev/null || echo 0)
    udp_cpu=$(cpu_diff "$c0" "$c1")

    rtt=$(ip netns exec "$ns" ping -q -c 50 -i 0.02 "$SERVER" 2>&1 | awk -F'[ /]+' '/^rtt|^round-trip/ {
        for (i = 1; i <= NF; i++) if ($i == "=") { printf "%s %s %s", $(i + 2), $(i + 1), $(i + 3); exit } }')
    [ -n "$rtt" ] || rtt="0 0 0"
    set -- $rtt
    printf '%-16s TCP %8.1f Mbit/s' "$label" "$tcp"
    [ "$TCP_REVERSE" = 1 ] && printf ' (lan->client %8.1f)' "$tcp_r"
    printf ' | UDP-64 %9.0f datagrams/s received (%9.0f sent) | ping avg %.3f min %.3f max %.3f ms' \
        "$udp_pps" "$udp_sent_pps" "$1" "$2" "$3"
    if [ -n "$SUP" ]; then
        # components/supervisor/qemu, CPU seconds during each test
        printf ' | CPU s comp/sup/qemu: TCP %s' "$tcp_cpu"
        [ -z "$tcp_r_cpu" ] || printf ', TCP-R %s' "$tcp_r_cpu"
        printf ', UDP %s' "$udp_cpu"
        # TSC cycles per datagram sent, the way the Network section counts
        awk -v c="$udp_cpu" -v n="$udp_sent_pps" -v s="$SECS" -v hz="$TSC_HZ" 'BEGIN {
            split(c, x, "/"); if (n > 0 && hz > 0) printf " (cycles/datagram sent %.0f/%.0f/%.0f)",
                x[1] * hz / (n * s), x[2] * hz / (n * s), x[3] * hz / (n * s) }'
    fi
    printf '\n'
    printf 'tcp=%s tcp_r=%s udp=%s avg=%s min=%s max=%s\n' "$tcp" "$tcp_r" "$udp_pps" "$1" "$2" "$3" \
        > "$T/r.$label"
}

ratio() { # ratio A B KEY
    awk -v k="$3" '
        FNR == 1 { f++ }
        { for (i = 1; i <= NF; i++) { split($i, a, "="); v[f, a[1]] = a[2] } }
        END { if (v[2, k] > 0) printf "%.2f", v[1, k] / v[2, k]; else printf "-" }' "$T/r.$1" "$T/r.$2"
}

# ratios A B WHAT: one line of A / B for every key measured.
ratios() {
    local r="$1 / $2 ($3):"
    r="$r TCP $(ratio "$1" "$2" tcp),"
    [ "$TCP_REVERSE" = 1 ] && r="$r TCP lan->client $(ratio "$1" "$2" tcp_r),"
    echo "$r UDP $(ratio "$1" "$2" udp), ping avg $(ratio "$1" "$2" avg)"
}

# bridge_baseline: P-wire (with its far end in P-lan, as `net-lab up`
# leaves it) moves into a bridge namespace; a fresh namespace gets a veth
# into the same bridge.  Measured with the offloads devmux's path has, then
# with the veth defaults.
bridge_baseline() {
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
    bridge_down
}

machine_line() {
    echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) CPUs, kernel $(uname -r), $(iperf3 --version | head -1)"
}

# bench_begin: wait for a quiet machine, then say what it is and whether the
# runs below are measured under load after all.
bench_begin() {
    wait_quiet "${QUIET_MAX:-1200}"
    machine_busy
    machine_line
    [ "$BENCH_UNDER_LOAD" = 0 ] || echo "WARNING: measured while a test suite ran"
}
