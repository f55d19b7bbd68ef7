#!/bin/bash
# The network multiplexer under a synthetic load: net-synth stands in for the
# NIC driver and floods the rx virtualiser as fast as buffers come back;
# net-sink clients count what they get (and, with echo, send it back).  For
# each case it runs a real `devmux run` system, waits for a warm-up, and over
# a measurement window reads the frames delivered to each client
# (`devmux ctl net`) and the CPU time of every component and of the
# supervisor (/proc).  Not a test: numbers depend on the machine.
#
#   bench/net/run.sh [BUILD_DIR]     as root (it creates a veth pair)
#
# Environment: WARM (s, default 1), WINDOW (s, default 5), RUNS (default 2),
# CASES (default "64:1 64:2 64:4 1500:1 1500:2 1500:4 echo64:1 echo1500:1"),
# LIMITS (default "auto off": each case with the components' limits, then
# without any, DEVMUX_LIMITS=off, so the cost of limits shows in one run).
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
DEVMUX=$BUILD/devmux
WARM=${WARM:-1}
WINDOW=${WINDOW:-5}
RUNS=${RUNS:-2}
CASES=${CASES:-64:1 64:2 64:4 1500:1 1500:2 1500:4 echo64:1 echo1500:1}
LIMITS=${LIMITS:-auto off}
WIRE=dmb-wire
PEER=dmb-peer

if [ "$(id -u)" != 0 ]; then
    echo "bench/net/run.sh: needs root (veth pair for the nic device)" >&2
    exit 1
fi
for p in "$DEVMUX" "$BUILD/bench/net/net-sink" "$BUILD/bench/net/net-tsc-hz"; do
    [ -x "$p" ] || { echo "missing $p; run ninja -C $BUILD" >&2; exit 1; }
done

T=$(mktemp -d /tmp/devmux-netbench.XXXXXX)
SUP=
cleanup() {
    if [ -n "$SUP" ]; then kill -TERM "$SUP" 2>/dev/null || true; wait "$SUP" 2>/dev/null || true; fi
    ip link del "$WIRE" 2>/dev/null || true
    rm -rf "$T"
}
trap cleanup EXIT
export DEVMUX_RUNDIR=$T/run

# The nic device every driver is granted: a veth end that carries nothing
# (net-synth never reads it).
ip link del "$WIRE" 2>/dev/null || true
ip link add "$WIRE" type veth peer name "$PEER"
for i in "$WIRE" "$PEER"; do
    sysctl -qw "net.ipv6.conf.$i.disable_ipv6=1"
    ip link set "$i" up
done

TSC_HZ=$("$BUILD/bench/net/net-tsc-hz")
HZ=$(getconf CLK_TCK)
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) CPUs," \
    "kernel $(uname -r); TSC $(awk -v h="$TSC_HZ" 'BEGIN{printf "%.3f", h/1e9}') GHz measured" \
    "(cpuinfo $(grep -m1 'cpu MHz' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //') MHz); CLK_TCK $HZ"
echo "window ${WINDOW}s after ${WARM}s warm-up; cycles = CPU time of all components and the" \
    "supervisor x TSC Hz, per frame delivered to a client"

ctl() { "$DEVMUX" ctl --ctl "$T/ctl.sock" "$@"; }

# snap FILE: one line per process ("cpu NAME PID TICKS NS"), the network
# counters, and the time.
snap() {
    local f=$1 name pid rest
    : > "$f"
    echo "time $(date +%s%N)" >> "$f"
    awk '$1 == "cpu" { print "stat", $2 + $3 + $4 + $7 + $8, $9 }' /proc/stat >> "$f"
    {
        echo "supervisor x $SUP"
        ctl status | awk 'NR > 2 && $1 != "ch" && $1 != "limits" && $1 != "OK" { print $1, $2, $3 }'
    } | while read -r name _ pid; do
        [ "$pid" -gt 0 ] 2>/dev/null || { echo "cpu $name 0 0 0" >> "$f"; continue; }
        rest=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null) || { echo "cpu $name $pid 0 0" >> "$f"; continue; }
        local ticks ns
        ticks=$(echo "$rest" | awk '{ print $12 + $13 }')
        ns=$(cat /proc/"$pid"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { print s + 0 }')
        echo "cpu $name $pid $ticks $ns" >> "$f"
    done
    ctl net >> "$f"
}

# report CASE RUN START END
report() {
    awk -v name="$1" -v run="$2" -v tsc="$TSC_HZ" -v hz="$HZ" '
    function role(n) {
        if (n == "supervisor") return "supervisor"
        if (n ~ /^nb\.driver$/) return "driver"
        if (n ~ /^nb\.rxvirt$/) return "rxvirt"
        if (n ~ /^nb\.txvirt$/) return "txvirt"
        if (n ~ /^nb\.copy\./) return "copiers"
        return "clients"
    }
    function kv(line, key,   m) {
        if (match(line, " " key "=[0-9]+")) { m = substr(line, RSTART + length(key) + 2, RLENGTH - length(key) - 2); return m + 0 }
        return 0
    }
    FNR == 1 { file++ }
    $1 == "time" { t[file] = $2 }
    $1 == "stat" { busy[file] = $2; steal[file] = $3 }
    $1 == "cpu" { pid[file, $2] = $3; ticks[file, $2] = $4; ns[file, $2] = $5; names[$2] = 1 }
    $1 == "client" { rx[file] += kv($0, "rx_packets"); rxb[file] += kv($0, "rx_bytes")
                     for (k = 3; k <= NF; k++) if ($k ~ /_drop_/) {
                         split($k, a, "="); drop[file] += a[2]; dr[file, a[1]] += a[2]; reasons[a[1]] = 1 } }
    $1 == "driver" { gen[file] = kv($0, "rx_packets"); txp[file] = kv($0, "tx_packets") }
    END {
        secs = (t[2] - t[1]) / 1e9
        pk = rx[2] - rx[1]; echo = txp[2] - txp[1]
        restarted = ""
        for (n in names) {
            if (pid[1, n] != pid[2, n]) restarted = restarted " " n
            r = role(n)
            cns[r] += ns[2, n] - ns[1, n]; ctk[r] += ticks[2, n] - ticks[1, n]
            all_ns += ns[2, n] - ns[1, n]; all_tk += ticks[2, n] - ticks[1, n]
        }
        if (pk <= 0) { printf "%-12s run %d: no frames delivered (see the log)\n", name, run; exit }
        cyc = all_ns / 1e9 * tsc / pk
        printf "%-12s run %d: %.3f Mpps delivered (%.2f Gbit/s of frames), generated %.3f Mpps, dropped %.3f Mpps",
            name, run, pk / secs / 1e6, (rxb[2] - rxb[1]) * 8 / secs / 1e9, (gen[2] - gen[1]) / secs / 1e6,
            (drop[2] - drop[1]) / secs / 1e6
        if (echo > 0) printf ", echoed %.3f Mpps", echo / secs / 1e6
        for (r in reasons) if (dr[2, r] - dr[1, r] > 0) printf " [%s %.3f M/s]", r, (dr[2, r] - dr[1, r]) / secs / 1e6
        printf "\n%-12s        CPU %.2f s in %.2f s (%.2f CPUs); %.0f cycles/frame (ticks: %.0f)", name,
            all_ns / 1e9, secs, all_ns / 1e9 / secs, cyc, all_tk / hz * tsc / pk
        if (echo > 0) printf "; %.0f cycles/echoed frame", all_ns / 1e9 * tsc / echo
        printf "; rest of the machine %.2f CPUs, steal %.2f", (busy[2] - busy[1]) / hz / secs - all_ns / 1e9 / secs,
            (steal[2] - steal[1]) / hz / secs
        printf "\n%-12s        split (cycles/frame):", name
        split("driver rxvirt copiers clients txvirt supervisor", order, " ")
        for (i = 1; i <= 6; i++) printf " %s %.0f (%.0f%%)", order[i], cns[order[i]] / 1e9 * tsc / pk, all_ns ? 100 * cns[order[i]] / all_ns : 0
        printf "\n"
        if (restarted != "") printf "%-12s        WARNING: restarted during the window:%s\n", name, restarted
    }' "$3" "$4"
}

# one CASE RUN LIMITS: CASE is [echo]FRAME:CLIENTS; LIMITS is auto or off
one() {
    local c=$1 run=$2 limits=$3 frame clients echo=0 i
    frame=${c%%:*}
    clients=${c##*:}
    if [ "${frame#echo}" != "$frame" ]; then echo=1; frame=${frame#echo}; fi
    {
        echo "system: netbench"
        echo "components: []"
        echo "networks:"
        echo "  - name: nb"
        echo "    nic: {packet: {interface: $WIRE}}"
        echo "    driver: {program: net-synth, config: {clients: $clients, frame: $frame}, fault: shutdown}"
        echo "    clients:"
        for ((i = 0; i < clients; i++)); do
            printf '      - {name: s%d, program: net-sink, mac: "02:00:00:00:01:%02x", config: {echo: %d}}\n' \
                "$i" "$i" "$echo"
        done
    } > "$T/sys.yaml"
    DEVMUX_LIMITS=$limits "$DEVMUX" run "$T/sys.yaml" --ctl "$T/ctl.sock" > "$T/log" 2>&1 &
    SUP=$!
    local up=0
    for _ in $(seq 100); do
        sleep 0.1
        if ctl net 2>/dev/null | grep -q '^driver rx_packets=[1-9]'; then up=1; break; fi
    done
    if [ $up = 0 ]; then
        echo "$c run $run: the system did not start; log:" >&2
        cat "$T/log" >&2
        kill -TERM "$SUP" 2>/dev/null || true; wait "$SUP" 2>/dev/null || true; SUP=
        return
    fi
    sleep "$WARM"
    snap "$T/a"
    sleep "$WINDOW"
    snap "$T/b"
    kill -TERM "$SUP" 2>/dev/null || true
    wait "$SUP" 2>/dev/null || true
    SUP=
    report "${c}$([ "$limits" = off ] && echo /nolim)" "$run" "$T/a" "$T/b"
    if grep -q "fault\|killed\|exited" "$T/log"; then
        grep "fault\|killed\|exited" "$T/log" | head -5 | sed 's/^/    log: /'
    fi
}

for run in $(seq "$RUNS"); do
    for c in $CASES; do
        for l in $LIMITS; do
            one "$c" "$run" "$l"
        done
    done
done
