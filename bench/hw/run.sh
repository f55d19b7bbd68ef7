#!/bin/bash
# The hardware layer's qemu backend: what a register access and an
# interrupt cost a driver component, against the same accesses made
# directly over qtest by one process (the baseline: no component, no
# supervisor, no checks).  QEMU's edu device, BAR0, in a guest-less q35.
# Each run measures the baseline, then the devmux system, back to back.
#
#   bench/hw/run.sh [BUILD_DIR]    RUNS (default 3), READS (20000),
#                                  WARM (2000), IRQS (2000), PIN (CPU list)
#
# PIN=0 runs both sides (and so QEMU, the supervisor and the component)
# on CPU 0 only (taskset): on a VM a cross-CPU wake-up of a halted vCPU
# costs tens of µs, and a round trip here is all wake-ups.
#
# Prints a table per run, then the median over runs of each statistic.
# Not a test: numbers depend on the machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
DEVMUX=$BUILD/devmux
RUNS=${RUNS:-3}
READS=${READS:-20000}
WARM=${WARM:-2000}
IRQS=${IRQS:-2000}
PIN=${PIN:-}
ON=()
[ -z "$PIN" ] || ON=(taskset -c "$PIN")
. bench/net/quiet.sh

for p in "$DEVMUX" "$BUILD/bench/hw/hw-bench" "$BUILD/bench/hw/hw-qtest-direct" \
    "$BUILD/bench/net/net-tsc-hz"; do
    [ -x "$p" ] || { echo "missing $p; run ninja -C $BUILD" >&2; exit 1; }
done
command -v qemu-system-x86_64 >/dev/null || { echo "missing qemu-system-x86_64" >&2; exit 1; }

T=$(mktemp -d /tmp/devmux-hwbench.XXXXXX)
SUP=
cleanup() {
    if [ -n "$SUP" ]; then kill -TERM "$SUP" 2>/dev/null || true; wait "$SUP" 2>/dev/null || true; fi
    rm -rf "$T"
}
trap cleanup EXIT
export DEVMUX_RUNDIR=$T/run

wait_quiet "${QUIET_MAX:-1200}"
machine_busy
TSC_HZ=$("$BUILD/bench/net/net-tsc-hz")
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) CPUs," \
    "kernel $(uname -r), $(qemu-system-x86_64 --version | head -1);" \
    "TSC $(awk -v h="$TSC_HZ" 'BEGIN{printf "%.3f", h/1e9}') GHz measured"
echo "reads/writes/pairs: $READS each after $WARM warm-up reads; interrupts: $IRQS;" \
    "pinned to CPUs: ${PIN:-no}; under load: $BENCH_UNDER_LOAD"

cat > "$T/sys.yaml" <<YAML
system: hw-bench
machines:
  - name: board
    memory: 64M
    devices:
      - {name: edu0, model: edu, pci: "05.0"}
components:
  - name: bench
    program: hw-bench
    config: {tsc_hz: "${TSC_HZ%.*}", reads: "$READS", warm: "$WARM", irqs: "$IRQS"}
    devices: [{name: dev, pci: {machine: board, device: edu0}, irq: 5}]
    fault: halt
YAML

# devmux_run OUT: the component's RESULT lines, or nothing (log shown).
devmux_run() {
    "${ON[@]}" "$DEVMUX" run "$T/sys.yaml" --ctl "$T/ctl.sock" > "$T/log" 2>&1 &
    SUP=$!
    local i
    for i in $(seq 1200); do
        grep -q "hw-bench: DONE\|killed\|fault policy" "$T/log" && break
        kill -0 "$SUP" 2>/dev/null || break
        sleep 0.1
    done
    kill -TERM "$SUP" 2>/dev/null || true
    wait "$SUP" 2>/dev/null || true
    SUP=
    if ! grep -q "hw-bench: DONE bad=0" "$T/log"; then
        echo "devmux run failed or a check went wrong; log:" >&2
        tail -20 "$T/log" >&2
    fi
    grep -o "RESULT.*" "$T/log" > "$1" || true
}

# table DIRECT DEVMUX: one row per measurement.
table() {
    awk '
    FNR == 1 { f++ }
    $1 == "RESULT" {
        name = $2; names[name] = 1
        for (i = 3; i <= NF; i++) { split($i, kv, "="); v[f, name, kv[1]] = kv[2] }
    }
    END {
        printf "%-6s | %-38s | %-38s | %s\n", "", "devmux µs: median p10 p90 p99 (cycles median)",
            "direct qtest µs: median p10 p90 p99", "hop: µs, cycles"
        split("read write pair burst irq", order, " ")
        for (k = 1; k <= 5; k++) {
            n = order[k]
            if (!(n in names)) continue
            printf "%-6s | %7.2f %7.2f %7.2f %7.2f (%7d) | %7.2f %7.2f %7.2f %7.2f (%7d) | %6.2f %7d\n", n,
                v[2, n, "median_us"], v[2, n, "p10_us"], v[2, n, "p90_us"], v[2, n, "p99_us"], v[2, n, "median_cyc"],
                v[1, n, "median_us"], v[1, n, "p10_us"], v[1, n, "p90_us"], v[1, n, "p99_us"], v[1, n, "median_cyc"],
                v[2, n, "median_us"] - v[1, n, "median_us"], v[2, n, "median_cyc"] - v[1, n, "median_cyc"]
        }
    }' "$1" "$2"
}

for run in $(seq "$RUNS"); do
    echo "--- run $run"
    "${ON[@]}" "$BUILD/bench/hw/hw-qtest-direct" "${TSC_HZ%.*}" "$READS" "$WARM" "$IRQS" > "$T/direct.$run" ||
        echo "hw-qtest-direct failed: $(tail -1 "$T/direct.$run")" >&2
    devmux_run "$T/devmux.$run"
    table "$T/direct.$run" "$T/devmux.$run"
done

# Median over runs of every statistic, each file's values per key.
if [ "$RUNS" -gt 1 ]; then
    echo "--- median over $RUNS runs"
    for side in direct devmux; do
        cat "$T/$side".* | awk -v runs="$RUNS" '
        $1 == "RESULT" { for (i = 3; i <= NF; i++) { split($i, kv, "="); k = $2 SUBSEP kv[1]; c[k]++; x[k, c[k]] = kv[2]; keys[k] = 1 } }
        END {
            for (k in keys) {
                n = c[k]
                for (i = 1; i <= n; i++) a[i] = x[k, i]
                for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
                split(k, nk, SUBSEP)
                m[nk[1]] = m[nk[1]] " " nk[2] "=" (n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2)
            }
            for (name in m) print "RESULT", name, m[name]
        }' > "$T/$side.med"
    done
    table "$T/direct.med" "$T/devmux.med"
fi
