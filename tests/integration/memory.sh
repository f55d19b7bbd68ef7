#!/bin/bash
# A component that writes outside its regions, or into a region it was
# granted read-only, crashes alone: the supervisor reports SIGSEGV and the
# rest of the system keeps running.  Its peer sees the fault.
. "$(dirname "$0")/lib.sh"

for action in wild-write ro-write; do
    cat > "$T/sys.yaml" <<YAML
system: memory-$action
components:$PINGPONG_COMPONENTS
  - {name: bad, program: probe, config: {action: $action}, fault: halt}
  - {name: watcher, program: probe}
regions:$PINGPONG_REST
  - name: ro
    size: 4K
    map:
      - {component: bad, perms: r}
      - {component: watcher, perms: rw}
channels:$PINGPONG_CHANNELS
  - ends: [{component: bad, id: 0}, {component: watcher, id: 5}]
YAML
    start "$T/sys.yaml"
    wait_log "component 'bad' killed by signal 11 \(SEGV\)"
    ok "$action: reported as SIGSEGV"
    grep -q "survived" "$T/log" && fail "$action: the write did not fault"
    if [ $action = ro-write ]; then
        grep -Eq "\[bad\] ro region at 0x[0-9a-f]+, 4096 bytes, first word 0" "$T/log" ||
            fail "ro-write: the read-only region was not readable"
        ok "ro-write: the read-only region was readable"
    fi
    wait_log "\[watcher\] peer_fault ch 5 signal 11 status 0 restarting 0"
    ok "$action: the peer got a fault notification on its channel"
    [ "$(state bad)" = halted ] || fail "bad is $(state bad)"
    [ "$(state watcher)" = running ] || fail "watcher is $(state watcher)"
    assert_pingpong_alive
    stop || fail "supervisor exited with $?"
done
echo "$CHECKS checks passed"
