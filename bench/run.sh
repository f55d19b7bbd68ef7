#!/bin/bash
# devmux benchmarks: runs real `devmux run` systems of two benchpd
# components and prints one line per measurement.  Not a test: numbers
# depend on the machine.  Usage: bench/run.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
DEVMUX=$BUILD/devmux
T=$(mktemp -d /tmp/devmux-bench.XXXXXX)
trap 'rm -rf "$T"' EXIT
export DEVMUX_RUNDIR=$T/run

# run NAME CPU_A CPU_B ROLE_A ROLE_B EXTRA_CONFIG
run() {
    local name=$1 ca=$2 cb=$3 ra=$4 rb=$5 extra=$6
    cat > "$T/sys.yaml" <<YAML
system: bench-$name
components:
  - {name: a, program: benchpd, config: {role: $ra, cpu: $ca $extra}}
  - {name: b, program: benchpd, config: {role: $rb, cpu: $cb $extra}}
regions:
  - name: ring
    size: 1M
    layout: [{name: q, queue: 4096}]
    map: [{component: a, perms: rw}, {component: b, perms: rw}]
channels:
  - ends: [{component: a, id: 0}, {component: b, id: 0}]
  - ends: [{component: a, id: 1, pp: true}, {component: b, id: 1}]
YAML
    "$DEVMUX" run "$T/sys.yaml" --ctl "$T/ctl.sock" > "$T/log" 2>&1 &
    local pid=$! i
    for i in $(seq 600); do
        grep -q "RESULT" "$T/log" && break
        sleep 0.1
    done
    kill -TERM $pid; wait $pid || true
    local line
    line=$(grep -o "RESULT.*" "$T/log" || echo "RESULT none (see log)")
    printf '%-28s %s\n' "$name" "$line"
}

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores, kernel $(uname -r)"
run queue-2cores-b64        0 1 producer consumer ", items: 100000000, batch: 64"
run queue-2cores-b256       0 1 producer consumer ", items: 100000000, batch: 256"
run queue-2cores-b64-spin   0 1 producer consumer ", items: 200000000, batch: 64, spin: 20000"
run queue-2cores-b256-spin  0 1 producer consumer ", items: 200000000, batch: 256, spin: 20000"
run queue-samecore-b64      0 0 producer consumer ", items: 30000000, batch: 64"
run notify-2cores          0 1 pinger ponger ", rounds: 200000"
run notify-samecore        0 0 pinger ponger ", rounds: 200000"
run ppcall-2cores          0 1 caller callee ", rounds: 200000"
run ppcall-samecore        0 0 caller callee ", rounds: 200000"
echo "Linux floor, bare processes, same run:"
"$BUILD/bench/baseline" 0 1 200000 | sed 's/^/2cores   /'
"$BUILD/bench/baseline" 0 0 200000 | sed 's/^/samecore /'

