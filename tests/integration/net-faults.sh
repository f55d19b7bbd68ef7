#!/bin/bash
# The shared network when parts of it die: a client OS's frontend killed
# mid-traffic is restarted without disturbing the other clients and keeps
# its TAP interface; the NIC driver killed (once, then three times in a row)
# is restarted while every client stays up, traffic resumes within a
# fraction of a second, and no buffers leak.
. "$(dirname "$0")/lib.sh"
net_init

net_system net-faults "
        peers: [b]" "
        peers: [a]" > "$T/sys.yaml"
net_start "$T/sys.yaml"
net_wait_ping $NP-lan 10.77.0.30

mbit() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1e6 }'; }

# restarts_of COMPONENT...: "name=restarts ..." from ctl status.
restarts_of() {
    local c out=
    for c in "$@"; do out="$out $c=$(field "$c" 4)"; done
    echo "${out# }"
}

# wait_restarted COMPONENT N: until it is running with N restarts.
wait_restarted() {
    local deadline=$((SECONDS + 10))
    until [ "$(state "$1")" = running ] && [ "$(field "$1" 4)" = "$2" ]; do
        [ $SECONDS -le $deadline ] ||
            fail "$1: state $(state "$1"), restarts $(field "$1" 4); expected running after $2 restarts"
        sleep 0.1
    done
}

# ---- 1: kill client a's frontend while b sends ------------------------------
UDP_B="-u -b 50M -t 6 -l 1400 -w 4M"
drops0=$(net_lan_rcvbuf_errors)
net_iperf $NP-b $UDP_B
net_iperf_get base bits_per_second
[ "${base%.*}" -gt 0 ] || fail "baseline UDP from b: $base bit/s"
ok "baseline: b -> lan UDP, 50 Mbit/s offered: receiver got $(mbit "$base") Mbit/s"

ifindex0=$(ip netns exec $NP-a cat /sys/class/net/eth0/ifindex)
pid_a=$(field a 3)
[ -n "$pid_a" ] && [ "$(field a 4)" = 0 ] || fail "a: pid '$pid_a', restarts $(field a 4)"
ip netns exec $NP-b iperf3 -c 10.77.0.1 -J $UDP_B > "$T/iperf.json" 2>&1 &
iperf_pid=$!
NET_BG="$NET_BG $iperf_pid"
sleep 2
kill -KILL "$pid_a" || fail "cannot kill a (pid $pid_a)"
wait_log "component 'a' killed by signal 9" 5
drops1=$(net_lan_rcvbuf_errors)
wait "$iperf_pid" || fail "iperf3 from b failed while a was killed: $(head -c 600 "$T/iperf.json")"
net_iperf_get during bits_per_second
drops2=$(net_lan_rcvbuf_errors)
pct=$(awk -v d="$during" -v b="$base" 'BEGIN { printf "%.0f", 100 * d / b }')
[ "$pct" -ge 80 ] ||
    fail "b got $(mbit "$during") Mbit/s while a was killed, $pct% of the baseline $(mbit "$base") (the lan's UDP socket dropped $((drops1 - drops0)) datagrams in the baseline, $((drops2 - drops1)) in this run)"
ok "b kept $(mbit "$during") Mbit/s ($pct% of baseline) while a was SIGKILLed"
wait_restarted a 1
[ "$(field a 3)" != "$pid_a" ] || fail "a still has its old pid $pid_a"
ok "a was restarted by the supervisor (pid $pid_a -> $(field a 3), restarts 1, running)"
t0=$SECONDS
net_wait_ping $NP-a 10.77.0.1 5
ifindex1=$(ip netns exec $NP-a cat /sys/class/net/eth0/ifindex)
[ "$ifindex0" = "$ifindex1" ] || fail "a's TAP interface was replaced (ifindex $ifindex0 -> $ifindex1)"
ip -n $NP-a addr show dev eth0 | grep -q "inet 10.77.0.10/24" || fail "a's TAP interface lost its address"
ok "$NP-a reaches the lan again within $((SECONDS - t0))s; its TAP interface persisted (ifindex $ifindex0, address kept)"
[ "$(field b 4)" = 0 ] && [ "$(field c 4)" = 0 ] || fail "other clients restarted: $(restarts_of b c)"

# ---- 2: kill the NIC driver under a fast ping ------------------------------
before=$(restarts_of a b c)
pid_d=$(field lan0.driver 3)
[ -n "$pid_d" ] && [ "$(field lan0.driver 4)" = 0 ] || fail "driver: pid '$pid_d', restarts $(field lan0.driver 4)"
ip netns exec $NP-a ping -n -i 0.05 -W 1 -D 10.77.0.1 > "$T/ping.txt" 2>&1 &
ping_pid=$!
NET_BG="$NET_BG $ping_pid"
sleep 1
t_kill=$(date +%s.%N)
kill -KILL "$pid_d" || fail "cannot kill the driver (pid $pid_d)"
sleep 5
kill -INT "$ping_pid"
wait "$ping_pid"
wait_log "component 'lan0.driver' killed by signal 9" 2
wait_restarted lan0.driver 1
ok "the driver was restarted (pid $pid_d -> $(field lan0.driver 3), restarts 1, running)"
after=$(restarts_of a b c)
[ "$before" = "$after" ] || fail "clients restarted when the driver died: $before -> $after"
ok "no client restarted ($after)"
read -r _ n_before _ n_after _ gap <<< "$(python3 "$NETHELP/pinggap.py" "$T/ping.txt" "$t_kill")"
PING_GAP=$gap
[ "$n_before" -ge 10 ] && [ "$n_after" -ge 40 ] ||
    fail "ping from $NP-a: $n_before replies before the kill, $n_after after: $(tail -3 "$T/ping.txt")"
awk -v g="$gap" 'BEGIN { exit !(g < 2) }' || fail "the largest gap between ping replies was ${gap}s (>= 2s)"
ok "ping every 50 ms across the driver kill: $n_before replies before, $n_after after, largest gap ${gap}s"
net_wait_ping $NP-lan 10.77.0.30 5
ok "the lwIP client c answers the lan again"
net_line driver | grep -q " link=up" || fail "driver line: $(net_line driver)"
ok "ctl net: $(net_line driver | grep -o 'link=[a-z]*') after the restart"

# ---- 2b: kill client a's copier: only a notices, and it recovers ------------
before_c=$(restarts_of lan0.driver lan0.rxvirt lan0.txvirt a b c lan0.copy.b)
pid_c=$(field lan0.copy.a 3)
[ -n "$pid_c" ] || fail "no pid for lan0.copy.a"
ip netns exec $NP-b ping -n -i 0.05 -W 1 -D 10.77.0.1 > "$T/pingb.txt" 2>&1 &
ping_pid=$!
NET_BG="$NET_BG $ping_pid"
sleep 1
t_kill=$(date +%s.%N)
kill -KILL "$pid_c" || fail "cannot kill the copier (pid $pid_c)"
wait_log "component 'lan0.copy.a' killed by signal 9" 2
wait_restarted lan0.copy.a 1
sleep 2
kill -INT "$ping_pid"
wait "$ping_pid"
ok "a's copier was restarted (pid $pid_c -> $(field lan0.copy.a 3), restarts 1, running)"
after_c=$(restarts_of lan0.driver lan0.rxvirt lan0.txvirt a b c lan0.copy.b)
[ "$before_c" = "$after_c" ] || fail "others restarted when a's copier died: $before_c -> $after_c"
ok "nothing else restarted ($after_c)"
read -r _ n_before _ n_after _ gap <<< "$(python3 "$NETHELP/pinggap.py" "$T/pingb.txt" "$t_kill")"
awk -v g="$gap" 'BEGIN { exit !(g < 0.5) }' && [ "$n_after" -ge 20 ] ||
    fail "b's pings across a's copier kill: $n_after replies after, largest gap ${gap}s"
ok "b did not notice: $n_before replies before, $n_after after, largest gap ${gap}s"
net_wait_ping $NP-a 10.77.0.1 5
ping_all $NP-a 10.77.0.1 5
ok "a receives again through its new copier (5 of 5 pings answered)"
kill -KILL "$(field lan0.copy.c 3)" || fail "cannot kill c's copier"
wait_log "component 'lan0.copy.c' killed by signal 9" 2
wait_restarted lan0.copy.c 1
net_wait_ping $NP-lan 10.77.0.30 5
out=$(timeout 60 ip netns exec $NP-lan python3 "$NETHELP/echo.py" tcp 10.77.0.30 7 262144 2>&1) ||
    fail "TCP echo from c after its copier restart: $out"
[ "$(field c 4)" = 0 ] || fail "the lwIP client c restarted with its copier"
ok "the lwIP client c, unrestarted, serves again through its new copier: $out"

# ---- 3: three driver kills in a row ----------------------------------------
for k in 2 3 4; do
    pid_d=$(field lan0.driver 3)
    kill -KILL "$pid_d" || fail "cannot kill the driver (pid $pid_d)"
    wait_restarted lan0.driver $k
done
after3=$(restarts_of a b c)
[ "$after3" = "$after" ] || fail "clients restarted during the driver kills: $after -> $after3"
ok "three more driver kills: restarted each time (restarts $(field lan0.driver 4)), clients untouched ($after3)"
for ns in $NP-a $NP-b; do net_wait_ping $ns 10.77.0.1 5; done
net_wait_ping $NP-lan 10.77.0.30 5
ok "$NP-a, $NP-b reach the lan and the lan reaches c after the kills"
# More frames than the network has buffers (512), lan -> client: a leak of
# receive buffers at any restart would stall this.
net_counter w0 wire rx_packets
net_counter r0 a rx_packets
net_iperf $NP-a -R -t 2
net_iperf_get rev bits_per_second
net_counter w1 wire rx_packets
net_counter r1 a rx_packets
[ "${rev%.*}" -gt 0 ] && [ $((w1 - w0)) -ge 2048 ] && [ $((r1 - r0)) -ge 2048 ] ||
    fail "lan -> a after the kills: $(mbit "$rev") Mbit/s, wire rx $w0 -> $w1, a rx $r0 -> $r1"
ok "the wire keeps receiving: lan -> a TCP $(mbit "$rev") Mbit/s, wire rx_packets +$((w1 - w0)), a rx_packets +$((r1 - r0)) (> 4 x 512 buffers)"
net_counter t0 wire tx_packets
net_iperf $NP-b -t 2
net_iperf_get fwd bits_per_second
net_counter t1 wire tx_packets
[ "${fwd%.*}" -gt 0 ] && [ $((t1 - t0)) -ge 2048 ] ||
    fail "b -> lan after the kills: $(mbit "$fwd") Mbit/s, wire tx $t0 -> $t1"
ok "and keeps sending: b -> lan TCP $(mbit "$fwd") Mbit/s, wire tx_packets +$((t1 - t0))"

# ---- 4: a client and its copier die together, three times -----------------
for round in 1 2 3; do
    ra=$(field a 4) rc=$(field lan0.copy.a 4)
    kill -KILL "$(field a 3)" "$(field lan0.copy.a 3)" || fail "cannot kill a and its copier"
    wait_restarted a $((ra + 1))
    wait_restarted lan0.copy.a $((rc + 1))
    net_wait_ping $NP-a 10.77.0.1 5
done
ping_all $NP-a 10.77.0.1 5
ok "a and its copier killed together 3 times: both restart (each handshake resets the pair once) and a reaches the lan (5 of 5)"
echo "ctl net after the faults:"
ctl net
stop || fail "supervisor exited with $?"
echo "summary: UDP b baseline $(mbit "$base") Mbit/s, during a's kill $(mbit "$during") ($pct%); driver-kill ping gap ${PING_GAP}s"
echo "$CHECKS checks passed"
