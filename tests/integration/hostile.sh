#!/bin/bash
# A hostile queue peer: garbage indices (too far ahead, backwards) and
# garbage descriptors (outside the region, misaligned) are rejected and
# reported by the honest side (pong), which keeps serving honest traffic.
. "$(dirname "$0")/lib.sh"

cat > "$T/sys.yaml" <<YAML
system: hostile
components:
  - {name: vandal, program: probe, config: {action: hostile}, fault: halt}
  - {name: pong, program: pong}
regions:$(ring_region vandal pong)
channels:
  - ends: [{component: vandal, id: 0}, {component: pong, id: 0}]
YAML
start "$T/sys.yaml"
wait_log "\[vandal\] hostile: [0-9]+ of 200 honest round trips after garbage" 30
before=$(grep -Eo "hostile: [0-9]+ honest round trips before" "$T/log" | awk '{print $2}')
after=$(grep -Eo "hostile: [0-9]+ of 200" "$T/log" | awk '{print $2}')
[ "$before" = 20 ] || fail "only $before of 20 round trips before the garbage"
[ "$after" = 200 ] || fail "only $after of 200 honest round trips after the garbage"
ok "pong served 20/20 before and 200/200 honest round trips after the garbage"
grep -Eq "\[pong\] peer misbehaved on queue active: fault 0" "$T/log" ||
    fail "pong did not report the bad tail index"
ok "pong reported the garbage tail index"
grep -Eq "\[pong\] peer misbehaved on queue free: fault 0" "$T/log" ||
    fail "pong did not report the bad head index"
ok "pong reported the garbage head index"
n=$(count_log "\[pong\] peer misbehaved on queue active: fault 1")
[ "$n" = 4 ] || fail "pong reported $n bad descriptors, expected 4"
ok "pong rejected all 4 garbage descriptors"
[ "$(state pong)" = running ] || fail "pong is $(state pong)"
ok "pong is still running"
stop || fail "exit $?"
echo "$CHECKS checks passed"
