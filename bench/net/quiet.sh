# Sourced by the benchmark scripts (bench/net/compare*.sh, bench/hw/run.sh):
# waits until no test suite runs, so that measurements never share the
# machine with one.  Sets BENCH_UNDER_LOAD=1 if it gave up waiting.
#
#   wait_quiet [MAX_SECONDS (default 1200)]
wait_quiet() {
    local max=${1:-1200} waited=0
    BENCH_UNDER_LOAD=0
    while pgrep -f 'meson test' >/dev/null || pgrep -f 'integration/' >/dev/null; do
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
