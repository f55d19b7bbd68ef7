#!/bin/bash
# Fault policy restart: a crashing component is restarted with its regions
# kept, its peers see the fault and the recovery, and a crash loop backs off
# exponentially.  `devmux ctl restart` restarts on request.
. "$(dirname "$0")/lib.sh"

cat > "$T/sys.yaml" <<'YAML'
system: restart
components:
  - name: crasher
    program: probe
    config: {action: abort, crash_until: 3}
    fault: {policy: restart, backoff_min_ms: 50, backoff_max_ms: 1000}
  - name: looper
    program: probe
    config: {action: abort}
    fault: {policy: restart, backoff_min_ms: 20, backoff_max_ms: 160}
  - {name: watcher, program: probe}
regions:
  - name: shared
    size: 4K
    map:
      - {component: crasher, perms: rw}
      - {component: watcher, perms: rw}
channels:
  - ends: [{component: crasher, id: 3}, {component: watcher, id: 7}]
YAML
start "$T/sys.yaml"
wait_log "\[crasher\] running normally now"
n=$(count_log "component 'crasher' killed by signal 6 \(ABRT\)")
[ "$n" = 3 ] || fail "crasher faulted $n times, expected 3"
ok "crasher aborted 3 times, each reported with its signal"
grep -q "fault policy of 'crasher': restart in 50 ms" "$T/log" &&
    grep -q "fault policy of 'crasher': restart in 100 ms" "$T/log" &&
    grep -q "fault policy of 'crasher': restart in 200 ms" "$T/log" ||
    fail "crasher back-off was not 50, 100, 200 ms"
ok "restart back-off doubles: 50, 100, 200 ms"
n=$(count_log "\[watcher\] peer_fault ch 7 signal 6 status 0 restarting 1")
[ "$n" = 3 ] || fail "watcher saw $n peer faults, expected 3"
ok "the peer saw each fault on its own channel id"
wait_log "\[watcher\] peer_ready ch 7"
ok "the peer saw the restarted component come back"
[ "$(state crasher)" = running ] && [ "$(field crasher 4)" = 3 ] ||
    fail "crasher: state $(state crasher), restarts $(field crasher 4)"
ok "status shows crasher running after 3 restarts"

# The endless crash loop is capped at backoff_max_ms.
wait_log "fault policy of 'looper': restart in 160 ms" 10
sleep 1
delays=$(grep -o "fault policy of 'looper': restart in [0-9]* ms" "$T/log" | awk '{print $7}' | head -6 | tr '\n' ' ')
[ "$delays" = "20 40 80 160 160 160 " ] || fail "looper back-off was '$delays'"
ok "a crash loop backs off 20 40 80 160 160 160 ms (capped)"

# Restart on request: the watcher keeps its pid count and the peer is told.
before=$(field watcher 3)
out=$(ctl restart watcher) || fail "ctl restart failed: $out"
wait_log "started 'watcher' \(pid [0-9]+, restarted\)"
sleep 0.3
after=$(field watcher 3)
[ "$before" != "$after" ] && [ "$(state watcher)" = running ] && [ "$(field watcher 4)" = 1 ] ||
    fail "watcher after ctl restart: pid $before -> $after, state $(state watcher)"
wait_log "\[crasher\] peer_fault ch 3 signal 9 status 0 restarting 1"
ok "ctl restart restarted watcher ($before -> $after) and told its peer"
out=$(ctl restart nosuch 2>&1) && fail "restart of a missing component succeeded"
echo "$out" | grep -q "no component named 'nosuch'" || fail "bad error: $out"
ok "ctl restart of an unknown component is refused with a clear error"
stop || fail "supervisor exited with $?"

# A caller that is busy (not reading its control socket) while its callee
# crash-loops hundreds of times still reaches the callee once it settles:
# the renewed protected-call socket is not lost when the buffer fills.
# (It keeps trying for 90 s: a sanitizer build on a loaded machine takes
# far longer than 8 s for 400 restarts.)
cat > "$T/sys2.yaml" <<'YAML'
system: restart-ppc
components:
  - name: caller
    program: probe
    config: {action: call, delay_ms: 6000, tries: 900}
  - name: callee
    program: probe
    config: {action: abort, crash_until: 400}
    fault: {policy: restart, backoff_min_ms: 1, backoff_max_ms: 1}
channels:
  - ends: [{component: caller, id: 1, pp: true}, {component: callee, id: 1}]
YAML
start "$T/sys2.yaml"
# (The callee's own lines are rate-limited at this restart rate, so wait on
# the supervisor's view rather than on its output.)
deadline=$((SECONDS + 90))
until [ "$(field callee 4)" = 400 ] && [ "$(state callee)" = running ]; do
    [ $SECONDS -le $deadline ] || fail "callee: restarts $(field callee 4), state $(state callee)"
    sleep 0.2
done
wait_log "\[caller\] ppcall [0-9]+: label 2 mr0 42" 20
ok "after 400 callee restarts during a busy caller, the call reaches the callee"
stop || fail "supervisor exited with $?"
# (After the stop, which reports what is still left out.)
# The supervisor's own lines about the crash loop are rate-limited too: the
# first of each window, then a count of what was left out.
n=$(count_log "component 'callee' killed by signal 6")
[ "$n" -ge 5 ] && [ "$n" -lt 400 ] || fail "the log has $n of callee's 400 crashes, expected a few"
grep -Eq "devmux: \([0-9]+ lines about 'callee' suppressed: over 30 per 10 s\)" "$T/log" ||
    fail "no count of the supervisor lines left out about callee"
ok "the supervisor's lines about a crash loop are rate-limited ($n of 400 crashes logged)"
echo "$CHECKS checks passed"
