# Shared helpers for integration tests: each test runs real `devmux run`
# systems in a private run directory and asserts on what the supervisor,
# the control socket and the kernel (/proc) say.
set -u
: "${DEVMUX:?DEVMUX must name the devmux binary}"
T=$(mktemp -d /tmp/devmux-test.XXXXXX)
export DEVMUX_RUNDIR=$T/run
# Components of this run get uids of their own, so checks for leftover
# processes cannot be confused by any other devmux system on the machine.
export DEVMUX_UID_BASE=$((300000 + (RANDOM % 4096) * 128))
SUP_PID=
CHECKS=0

cleanup() {
    if [ -n "$SUP_PID" ] && kill -0 "$SUP_PID" 2>/dev/null; then
        kill -TERM "$SUP_PID" 2>/dev/null
        wait "$SUP_PID" 2>/dev/null
    fi
    rm -rf "$T"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    if [ -f "$T/log" ]; then
        echo "---- supervisor log (last 40 lines) ----" >&2
        tail -n 40 "$T/log" >&2
    fi
    exit 1
}

ok() {
    CHECKS=$((CHECKS + 1))
    echo "ok: $*"
}

# start SYSTEM_FILE: runs the supervisor in the background, output in $T/log.
start() {
    : > "$T/log"
    "$DEVMUX" run "$1" --ctl "$T/ctl.sock" > "$T/log" 2>&1 &
    SUP_PID=$!
}

# wait_log REGEX [SECONDS]: until the log matches (extended regex).
wait_log() {
    local deadline=$((SECONDS + ${2:-10}))
    while [ $SECONDS -le $deadline ]; do
        grep -Eq -- "$1" "$T/log" && return 0
        sleep 0.1
    done
    fail "log never matched /$1/ within ${2:-10}s"
}

# count_log REGEX: how many log lines match.
count_log() {
    grep -Ec -- "$1" "$T/log" || true
}

ctl() {
    "$DEVMUX" ctl --ctl "$T/ctl.sock" "$@"
}

# state COMPONENT: its state column in `devmux ctl status`.
state() {
    ctl status | awk -v c="$1" '$1 == c { print $2 }'
}

# field COMPONENT N: column N of the component's status line.
field() {
    ctl status | awk -v c="$1" -v n="$2" '$1 == c { print $n }'
}

# notify_sent COMPONENT CH: notifications it sent on channel CH.
notify_sent() {
    ctl status | awk -v c="$1" -v ch="$2" '
        $1 == c { on = 1; next }
        /^[^ ]/ { on = 0 }
        on && $1 == "ch" && $2 == ch { for (i = 1; i <= NF; i++) if ($i == "sent") { print $(i + 1); exit } }'
}

# stop: SIGTERM the supervisor and wait; prints its exit status.
stop() {
    kill -TERM "$SUP_PID"
    wait "$SUP_PID"
    local rc=$?
    SUP_PID=
    return $rc
}

# A ping-pong pair to show that the rest of a system keeps running.
PINGPONG_COMPONENTS='
  - {name: ping, program: ping, config: {report_ms: 200}}
  - {name: pong, program: pong}'
# ring_region A B [SETVAR]: the queue pair region ping-pong uses, shared by
# A and B; A's mapping sets SETVAR if given (ping expects ring_vaddr).
ring_region() {
    local setvar=${3:+, setvar_vaddr: $3}
    cat <<YAML

  - name: ring
    size: 64K
    layout:
      - {name: active, queue: 256}
      - {name: free, queue: 256}
      - {name: buffers, buffers: 256, buffer_size: 64}
    map:
      - {component: $1, perms: rw$setvar}
      - {component: $2, perms: rw}
YAML
}
PINGPONG_REST=$(ring_region ping pong ring_vaddr)
PINGPONG_CHANNELS='
  - ends: [{component: ping, id: 0}, {component: pong, id: 0}]
  - ends: [{component: ping, id: 1, pp: true}, {component: pong, id: 1}]'

# assert_pingpong_alive: ping keeps notifying pong over half a second.
assert_pingpong_alive() {
    local a b
    a=$(notify_sent ping 0)
    sleep 0.5
    b=$(notify_sent ping 0)
    [ -n "$a" ] && [ -n "$b" ] && [ "$b" -gt "$a" ] ||
        fail "ping-pong stalled: ping sent $a then $b notifications"
    [ "$(state ping)" = running ] && [ "$(state pong)" = running ] ||
        fail "ping/pong not running: $(state ping)/$(state pong)"
    ok "ping-pong keeps running ($a -> $b notifications)"
}

# wait_count REGEX N [SECONDS]: until at least N log lines match.
wait_count() {
    local deadline=$((SECONDS + ${3:-10}))
    while [ $SECONDS -le $deadline ]; do
        [ "$(count_log "$1")" -ge "$2" ] && return 0
        sleep 0.1
    done
    fail "log matched /$1/ only $(count_log "$1") times, expected $2, within ${3:-10}s"
}
