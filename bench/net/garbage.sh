#!/bin/bash
# What garbage on a client's queues costs the trusted core, measured, not
# assumed: a hostile client (tests/components/net-attack.c) scribbles over
# every byte of its regions and notifies without pause; over a window this
# reads the CPU time of the tx virtualiser and of the client's copier
# (/proc) and the descriptors they refused (`devmux ctl net`), and prints
# the cost per refused descriptor and the share of a CPU it comes to.
# The same client idle gives the floor.  The bound of docs/protocols/net.md
# §4 is 64 refusals per 10 ms per client before it sits the window out.
#
#   bench/net/garbage.sh [BUILD_DIR]      as root; WINDOW (s, default 10)
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
DEVMUX=$BUILD/devmux
WINDOW=${WINDOW:-10}
P=dmg
[ "$(id -u)" = 0 ] || { echo "bench/net/garbage.sh: needs root" >&2; exit 1; }
for p in "$DEVMUX" "$BUILD/tests/components/net-attack"; do
    [ -x "$p" ] || { echo "missing $p; run ninja -C $BUILD" >&2; exit 1; }
done
T=$(mktemp -d /tmp/devmux-garbage.XXXXXX)
SUP=
cleanup() {
    if [ -n "$SUP" ]; then kill -TERM "$SUP" 2>/dev/null || true; wait "$SUP" 2>/dev/null || true; fi
    scripts/net-lab down $P >/dev/null 2>&1 || true
    rm -rf "$T"
}
trap cleanup EXIT
export DEVMUX_RUNDIR=$T/run
scripts/net-lab up $P
LAN_MAC=$(ip -n $P-lan -o link show eth0 | grep -o 'link/ether [0-9a-f:]*' | cut -d' ' -f2)
# lead_ms: idle (the floor), then scribble for the rest.
cat > "$T/sys.yaml" <<YAML
system: garbage-$P
regions:
  - {name: h-state, size: 4K, map: [{component: h, perms: rw}]}
networks:
  - name: lan0
    nic: {packet: {interface: $P-wire}}
    clients:
      - {name: a, tap: {netns: $P-a, ifname: eth0}, mac: "02:00:00:00:00:0a"}
      - name: h
        program: $PWD/$BUILD/tests/components/net-attack
        mac: "02:00:00:00:00:0d"
        limits: {cpu: 20%}
        config: {attacks: scribble, pairs: 1, phase_ms: $(((WINDOW + 3) * 1000)),
                 lead_ms: $(((WINDOW + 3) * 1000)), state: h-state, ip: 10.77.0.13,
                 victim_ip: 10.77.0.10, lan_ip: 10.77.0.1, lan_mac: "$LAN_MAC"}
YAML
"$DEVMUX" run "$T/sys.yaml" --ctl "$T/ctl.sock" > "$T/log" 2>&1 &
SUP=$!
ctl() { "$DEVMUX" ctl --ctl "$T/ctl.sock" "$@"; }
for _ in $(seq 100); do ctl status >/dev/null 2>&1 && break; sleep 0.1; done
pid() { ctl status | awk -v c="$1" '$1 == c { print $3 }'; }
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
refused() {
    ctl net | awk '$1 == "client" && $2 == "h" {
        for (i = 3; i <= NF; i++) if ($i ~ /^(tx|rx)_drop_bad_(desc|len|index)=/) { split($i, a, "="); s += a[2] }
        print s + 0 }'
}
HZ=$(getconf CLK_TCK)
TSC=$("$BUILD/bench/net/net-tsc-hz")
window() { # window LABEL: CPU of the tx virt and h's copier, refusals, over WINDOW s
    local tv cp t0 t1 c0 c1 r0 r1
    tv=$(pid lan0.txvirt)
    cp=$(pid lan0.copy.h)
    t0=$(ticks "$tv")
    c0=$(ticks "$cp")
    r0=$(refused)
    sleep "$WINDOW"
    t1=$(ticks "$tv")
    c1=$(ticks "$cp")
    r1=$(refused)
    awk -v l="$1" -v t=$((t1 - t0)) -v c=$((c1 - c0)) -v r=$((r1 - r0)) -v hz="$HZ" -v w="$WINDOW" \
        -v tsc="$TSC" 'BEGIN {
        cpu = (t + c) / hz
        printf "%-9s tx virt %5.1f%% + copier %5.1f%% of a CPU; %9d refused (%7.0f/s)", l,
            100 * t / hz / w, 100 * c / hz / w, r, r / w
        if (r > 0) printf "; %.0f ns (%.0f cycles) per refusal", cpu / r * 1e9, cpu / r * tsc
        printf "\n" }'
}
sleep 2
window idle
until grep -q "phase 1: attack scribble on" "$T/log"; do sleep 0.2; done
sleep 1
window scribble
ctl net | grep "client h" | tr ' ' '\n' | grep -E "garbage_pauses|notify_pauses|_bad_" | tr '\n' ' '
echo
