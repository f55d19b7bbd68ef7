#!/bin/bash
# A component that calls open(), socket() or execve() is killed by the
# sandbox; the supervisor names the call; everything else keeps running.
# Also checks the kernel's view of a component's confinement in /proc.
. "$(dirname "$0")/lib.sh"

for action in open socket exec pass-fd; do
    case $action in
    open) call=openat ;;
    socket) call=socket ;;
    exec) call=execve ;;
    pass-fd) call=sendmsg ;;
    esac
    cat > "$T/sys.yaml" <<YAML
system: sandbox-$action
components:$PINGPONG_COMPONENTS
  - {name: bad, program: probe, config: {action: $action}, fault: halt}
regions:$PINGPONG_REST
channels:$PINGPONG_CHANNELS
YAML
    start "$T/sys.yaml"
    wait_log "component 'bad' killed by the sandbox: forbidden system call $call \([0-9]+\)"
    ok "$action: supervisor reports the forbidden call $call"
    grep -q "the sandbox did not stop it" "$T/log" && fail "$action: the call returned"
    wait_log "\[ping\] .*round trips"
    [ "$(state bad)" = halted ] || fail "$action: bad is '$(state bad)', expected halted"
    ok "$action: the offender is halted per its policy"
    assert_pingpong_alive

    if [ $action = open ]; then
        # The kernel's view of a running component's confinement.
        pid=$(field ping 3)
        st=/proc/$pid/status
        [ -r "$st" ] || fail "no $st"
        grep -Eq '^Seccomp:[[:space:]]+2' "$st" || fail "ping has no seccomp filter: $(grep Seccomp "$st")"
        grep -Eq '^NoNewPrivs:[[:space:]]+1' "$st" || fail "ping lacks no_new_privs"
        for cap in CapInh CapPrm CapEff CapBnd CapAmb; do
            grep -Eq "^$cap:[[:space:]]+0+\$" "$st" || fail "ping has $(grep "^$cap" "$st")"
        done
        ok "ping runs with seccomp filter mode, no_new_privs and no capabilities"
        if [ "$(id -u)" = 0 ]; then
            uping=$(awk '/^Uid:/ { print $2 }' "$st")
            upong=$(awk '/^Uid:/ { print $2 }' "/proc/$(field pong 3)/status")
            [ "$uping" != 0 ] && [ "$upong" != 0 ] && [ "$uping" != "$upong" ] ||
                fail "uids: ping $uping pong $upong; expected two distinct non-root uids"
            ok "components run under their own uids ($uping, $upong)"
        fi
        # Only the granted descriptors are open: stdio, boot info is closed,
        # control, and the channel descriptors.
        nfd=$(ls "/proc/$pid/fd" | wc -l)
        ls -l "/proc/$pid/fd" | grep -Eq '/(etc|home|root|usr)/' && fail "ping holds a file open"
        ok "ping holds $nfd descriptors, none of them files"
    fi
    stop || fail "$action: supervisor exited with $?"
done
# Code that runs before the runtime (a .preinit_array hook) is already
# confined by the stage-1 sandbox applied before exec.
rm -f /tmp/devmux-early-escape
cat > "$T/sys.yaml" <<YAML
system: sandbox-early
components:$PINGPONG_COMPONENTS
  - {name: early, program: early, fault: halt}
regions:$PINGPONG_REST
channels:$PINGPONG_CHANNELS
YAML
start "$T/sys.yaml"
wait_log "component 'early' killed by signal 31 \(SYS\)"
grep -q "\[early\] early: read /etc/passwd: Permission denied" "$T/log" || fail "early code could read /etc/passwd"
grep -q "\[early\] early: create /tmp/devmux-early-escape: Permission denied" "$T/log" || fail "early code could create a file"
[ ! -e /tmp/devmux-early-escape ] || fail "early code created a file"
grep -q "\[early\] early: truncate the statistics page: Operation not permitted" "$T/log" || fail "early code could truncate its statistics page"
grep -q "sandbox hole" "$T/log" && fail "a sandbox hole: $(grep 'sandbox hole' "$T/log")"
grep -q "init reached" "$T/log" && fail "the socket call did not kill early"
ok "code running before the runtime cannot read or create files, truncate its page, or open sockets"
assert_pingpong_alive
ctl status > /dev/null || fail "the supervisor stopped answering"
stop || fail "exit $?"
echo "$CHECKS checks passed"
