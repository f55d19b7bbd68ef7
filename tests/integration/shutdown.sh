#!/bin/bash
# SIGTERM, SIGINT and a `shutdown` fault policy each stop the whole system
# and leave nothing behind: no component processes, no /dev/shm entries,
# no control socket.
. "$(dirname "$0")/lib.sh"

shm_before=$(ls /dev/shm | sort)
components_alive() {
    # Any process that was one of ours, by pid.
    local p
    for p in "$@"; do
        [ -d "/proc/$p" ] && echo "$p"
    done
}
assert_clean() {
    local left
    left=$(components_alive "$@")
    [ -z "$left" ] || fail "$1: processes left behind: $left"
    [ ! -e "$T/ctl.sock" ] || fail "control socket left behind"
    [ "$(ls /dev/shm | sort)" = "$shm_before" ] || fail "/dev/shm changed: $(ls /dev/shm)"
    if [ "$(id -u)" = 0 ]; then
        left=$(ps -eo uid=,pid= | awk -v b="$DEVMUX_UID_BASE" '$1 >= b && $1 < b + 128 { print $2 }')
        [ -z "$left" ] || fail "processes under component uids remain: $left"
    fi
}

cat > "$T/sys.yaml" <<YAML
system: shutdown
components:$PINGPONG_COMPONENTS
regions:$PINGPONG_REST
channels:$PINGPONG_CHANNELS
YAML
for sig in TERM INT; do
    start "$T/sys.yaml"
    wait_log "\[ping\] .*round trips"
    [ -S "$T/ctl.sock" ] || fail "no control socket"
    [ "$(stat -c %a "$T/ctl.sock")" = 600 ] || fail "control socket mode $(stat -c %a "$T/ctl.sock")"
    ok "control socket exists with mode 0600"
    pids="$SUP_PID $(field ping 3) $(field pong 3)"
    kill -$sig "$SUP_PID"
    start_wait=$SECONDS
    wait "$SUP_PID"
    rc=$?
    SUP_PID=
    [ $rc = 0 ] || fail "SIG$sig: supervisor exited with $rc"
    grep -q "shutting down: received $sig" "$T/log" || fail "no shutdown message"
    assert_clean $pids
    ok "SIG$sig: clean exit 0 in $((SECONDS - start_wait))s, nothing left behind"
done

# ctl shutdown, too.
start "$T/sys.yaml"
wait_log "\[ping\] .*round trips"
pids="$SUP_PID $(field ping 3) $(field pong 3)"
ctl shutdown > /dev/null || fail "ctl shutdown failed"
wait "$SUP_PID"
rc=$?
SUP_PID=
[ $rc = 0 ] || fail "ctl shutdown: exit $rc"
assert_clean $pids
ok "ctl shutdown: clean exit, nothing left behind"

# A component whose policy is shutdown takes the system down, exit status 1.
cat > "$T/sys2.yaml" <<YAML
system: shutdown-policy
components:$PINGPONG_COMPONENTS
  - {name: fatal, program: probe, config: {action: wild-write}, fault: shutdown}
regions:$PINGPONG_REST
channels:$PINGPONG_CHANNELS
YAML
start "$T/sys2.yaml"
for i in $(seq 100); do kill -0 "$SUP_PID" 2>/dev/null || break; sleep 0.1; done
wait "$SUP_PID"
rc=$?
SUP_PID=
[ $rc = 1 ] || fail "policy shutdown: exit $rc, expected 1"
grep -q "shutting down: fault policy of 'fatal' is shutdown" "$T/log" || fail "no reason logged"
assert_clean
ok "fault policy shutdown stops the system with status 1 and leaves nothing"

# kill -9 of the supervisor: the components die with it (parent-death
# signal), and the next start takes over the stale socket.
start "$T/sys.yaml"
wait_log "\[ping\] .*round trips"
cpids="$(field ping 3) $(field pong 3)"
kill -KILL "$SUP_PID"
wait "$SUP_PID" 2>/dev/null
SUP_PID=
sleep 0.5
for p in $cpids; do
    st=$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null || echo gone)
    [ "$st" = gone ] || [ "$st" = Z ] || fail "component $p still runs (state $st) after kill -9 of the supervisor"
done
[ -S "$T/ctl.sock" ] || fail "expected the stale socket to remain after kill -9"
ok "kill -9 of the supervisor takes its components along"
start "$T/sys.yaml"
wait_log "\[ping\] .*round trips"
ctl status > /dev/null || fail "the new supervisor does not answer on the old socket path"
ok "a new supervisor replaces the stale control socket"
stop || fail "exit $?"

# A second supervisor for a running system refuses to start.
start "$T/sys.yaml"
wait_log "\[ping\] .*round trips"
"$DEVMUX" run "$T/sys.yaml" --ctl "$T/ctl.sock" > "$T/second.log" 2>&1
rc=$?
[ $rc != 0 ] && grep -q "already runs" "$T/second.log" || fail "second supervisor: rc $rc: $(cat "$T/second.log")"
[ -S "$T/ctl.sock" ] || fail "the second supervisor removed the first one's socket"
ok "a second supervisor for the same socket refuses to start"
stop || fail "exit $?"
echo "$CHECKS checks passed"
