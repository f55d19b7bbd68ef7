#!/bin/bash
# The ping-pong example as shipped: counters flow, the protected call
# answers, and when pong is killed (a real SIGKILL, and a ctl restart) its
# queues resume from the kept region, ping's protected calls reconnect, and
# no counter comes back wrong.
. "$(dirname "$0")/lib.sh"
EXAMPLE=$(cd "$(dirname "$0")/../.." && pwd)/examples/ping-pong.yaml

"$DEVMUX" check "$EXAMPLE" > /dev/null || fail "the example does not validate"
start "$EXAMPLE"
wait_log "\[ping\] [0-9]+ round trips .* 0 mismatches; pong has seen [0-9]+ counters"
ok "counters flow and ping's protected call to pong answers"

n=0
for how in kill ctl; do
    n=$((n + 1))
    old=$(field pong 3)
    if [ $how = kill ]; then
        kill -KILL "$old"
        wait_log "component 'pong' killed by signal 9 \(KILL\)"
    else
        ctl restart pong > /dev/null || fail "ctl restart pong"
    fi
    wait_count "\[ping\] pong faulted on channel 0 \(signal 9, status 0\); it is being restarted" $n
    wait_log "\[pong\] pong: ready \(restart $n\)"
    wait_count "\[ping\] pong is back; resuming" $((n + 1))
    # Progress after the restart, with pong's fresh counter (it restarted).
    start_line=$(wc -l < "$T/log")
    deadline=$((SECONDS + 10))
    until tail -n +"$start_line" "$T/log" | grep -Eq "\[ping\] [0-9]+ round trips \([0-9.]+ M/s\), 0 mismatches; pong has seen [0-9]+"; do
        [ $SECONDS -le $deadline ] || fail "$how: no progress after pong's restart"
        sleep 0.1
    done
    ok "$how: pong restarted, ping resumed with 0 mismatches and protected calls reconnected"
done
grep -Eq "mismatches; .*[1-9][0-9]* mismatches" "$T/log" && fail "a counter came back wrong"
grep -Eq "round trips \([0-9.]+ M/s\), [1-9][0-9]* mismatches" "$T/log" && fail "mismatches reported"
[ "$(field pong 4)" = 2 ] || fail "pong restarts: $(field pong 4)"
[ "$(field ping 4)" = 0 ] || fail "ping was restarted too: $(field ping 4)"
ok "pong restarted twice, ping never"
out=$(ctl status)
echo "$out" | grep -Eq "ch 1  -> pong +notify sent 0 recv 0  ppc made [1-9][0-9]* served 0 faults [0-9]+ calls" ||
    fail "status lacks ping's protected-call counts: $out"
ok "status counts notifications and protected calls per channel"
stop || fail "exit $?"
echo "$CHECKS checks passed"
