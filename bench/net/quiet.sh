# Sourced by the benchmark scripts (bench/net/compare*.sh, bench/hw/run.sh):
# waits until no test suite runs (meson test, an integration script, a
# fuzzer) and nothing compiles (ninja, cc1), so that measurements never share the machine with one.  Sets
# BENCH_UNDER_LOAD=1 if it gave up waiting; machine_busy then says how
# busy the rest of the machine is.
#
#   wait_quiet [MAX_SECONDS (default 1200; the scripts pass $QUIET_MAX)]
wait_quiet() {
    local max=${1:-1200} waited=0
    BENCH_UNDER_LOAD=0
    while pgrep -f 'meson test' >/dev/null || pgrep -f 'integration/' >/dev/null ||
        pgrep -f 'fuzz_' >/dev/null || pgrep -x ninja >/dev/null || pgrep -x cc1 >/dev/null; do
        if [ "$waited" -ge "$max" ]; then
            echo "WARNING: a test suite is still running after ${max}s; measuring under load" >&2
            BENCH_UNDER_LOAD=1
            return 0
        fi
        [ "$waited" -gt 0 ] || echo "waiting for the running test suite to finish (up to ${max}s)" >&2
        sleep 10
        waited=$((waited + 10))
    done
    [ "$waited" -eq 0 ] || echo "test suite finished after ${waited}s of waiting" >&2
}

# machine_busy: CPUs busy over one second, and the busiest processes in it
# (top's second frame: its first averages since each process started), so
# a result can say what else ran.
machine_busy() {
    top -b -n 2 -d 1 -w 200 | awk -v n="$(nproc)" '
        /^top -/ { frame++ }
        frame == 2 && /^%Cpu/ { for (i = 1; i <= NF; i++) if ($i ~ /^id/) idle = $(i - 1) }
        frame == 2 && $1 ~ /^[0-9]+$/ && $9 + 0 > 0 && shown < 3 { procs = procs " " $12 " " $9 "%"; shown++ }
        END { printf "machine busy before measuring: %.2f of %d CPUs;%s\n", (100 - idle) / 100 * n, n,
            shown ? " busiest:" procs : " no process above 0%" }'
}
