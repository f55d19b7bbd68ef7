#!/bin/bash
# A hostile client on a shared network: garbage indices and descriptors,
# duplicate buffers, receive buffers never returned, writes after handover
# and a rate-limited flood.  Everything it does is dropped, counted and
# logged (rate-limited), no frame with a spoofed source reaches the wire,
# and an honest client's throughput stays within 20% of a run without it.
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || fail "needs root (network namespaces, TAP, AF_PACKET)"
for t in ip iperf3 tcpdump ping ethtool python3; do
    command -v $t >/dev/null || fail "needs $t (scripts/setup installs it)"
done
LAB=$(dirname "$0")/../../scripts/net-lab
P=dh$((RANDOM % 90000 + 10000)) # a lab of this run's own
lab_cleanup() {
    cleanup
    "$LAB" down $P
}
trap lab_cleanup EXIT
"$LAB" up $P

system() { # system NAME WITH_HOSTILE
    cat <<YAML
system: $1
networks:
  - name: lan0
    nic: {packet: {interface: $P-wire}}
    clients:
      - name: a
        tap: {netns: $P-a, ifname: eth0}
        mac: "02:00:00:00:00:0a"
YAML
    [ "$2" = 1 ] && cat <<YAML
      - name: h
        program: net-hostile
        mac: "02:00:00:00:00:0d"
        config: {period_ms: 2, flood: 64, spoof_mac: "02:00:00:00:00:ee", flood_dst: "02:00:00:00:00:ff"}
        rate: {bits: 10M, burst: 32K}
YAML
}

# udp_rate: a sends 40 Mbit/s of UDP to the lan for 4 s; prints the
# receiver's bits per second.
udp_rate() {
    ip netns exec $P-a iperf3 -c 10.77.0.1 -u -b 40M -l 1200 -t 4 -J > "$T/iperf.json" ||
        fail "iperf3 from a failed: $(tail -5 "$T/iperf.json")"
    python3 -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["end"]["sum"]["bits_per_second"]))' \
        "$T/iperf.json"
}

# Baseline: the honest client alone.
system hostile-base 0 > "$T/base.yaml"
start "$T/base.yaml"
wait_log "started 'a'"
"$LAB" addr $P-a 10.77.0.10/24
ip netns exec $P-a ping -c 2 -W 2 10.77.0.1 >/dev/null || fail "a cannot reach the lan"
base=$(udp_rate)
[ "$base" -gt 0 ] || fail "baseline throughput is 0"
ok "baseline: a gets $base bit/s of UDP through"
stop >/dev/null || true

# Now with the hostile client beside it.
system hostile 1 > "$T/sys.yaml"
start "$T/sys.yaml"
wait_log "\[h\] h: attack round 6 done"
"$LAB" addr $P-a 10.77.0.10/24
ip netns exec $P-a ping -c 2 -W 2 10.77.0.1 >/dev/null || fail "a cannot reach the lan"
ip netns exec $P-lan tcpdump -ni eth0 -w "$T/wire.pcap" ether src 02:00:00:00:00:ee 2>/dev/null &
TCPDUMP=$!
# Frames for h, which never gives its receive buffers back.
ip -n $P-lan neigh replace 10.77.0.13 lladdr 02:00:00:00:00:0d dev eth0
ip netns exec $P-lan ping -q -i 0.002 -c 1000 10.77.0.13 >/dev/null 2>&1 &
PINGER=$!
with=$(udp_rate)
wait $PINGER
sleep 0.5
kill $TCPDUMP; wait $TCPDUMP 2>/dev/null
echo "with the hostile client: $with bit/s (baseline $base)"
[ $((with * 100)) -ge $((base * 80)) ] ||
    fail "a's throughput fell to $with bit/s from $base (more than 20%)"
ok "a's throughput with the hostile client: $with bit/s, $((with * 100 / base))% of the baseline"

n=$(tcpdump -r "$T/wire.pcap" 2>/dev/null | wc -l)
[ "$n" = 0 ] || fail "$n frames with the spoofed source reached the wire (write after handover)"
ok "no frame with the source written after handover reached the wire"

for k in tx_drop_bad_desc tx_drop_bad_len tx_drop_bad_index rx_drop_bad_desc; do
    net_counter cnt h $k
    [ "$cnt" -gt 0 ] || fail "h's $k is $cnt; expected its garbage counted"
    ok "h: $k=$cnt"
done
# It never takes what it received nor gives buffers back: frames for it are
# dropped for want of a buffer or of room in its own queue, and only its own.
net_counter nb h rx_drop_no_buffer
net_counter qf h rx_drop_queue_full
starved=$((nb + qf))
[ "$starved" -gt 0 ] || fail "h never returned buffers, yet no frame for it was dropped"
ok "h exhausted only its own quota: $starved frames for it dropped"
net_counter th h throttled
[ "$th" -gt 0 ] || fail "h's flood was never throttled"
ok "h's flood hit its rate limit ($th frames held back)"
for k in tx_drop_bad_desc tx_drop_bad_index rx_drop_no_buffer rx_drop_queue_full; do
    net_counter cnt a $k
    [ "$cnt" = 0 ] || fail "a has $k=$cnt; the damage spread"
done
ok "a has no drops charged to it"
wait_log "\[lan0.txvirt\] client h: .*\(and [0-9]+ more like it in the last second\)"
lines=$(count_log "\[lan0.txvirt\] client h:")
secs=$(field h 5 | tr -d s)
[ "$lines" -le $((${secs%.*} + 2)) ] || fail "$lines log lines about h in ${secs}s: not rate-limited"
ok "h's faults logged at most once a second ($lines lines in ${secs}s)"
for c in lan0.driver lan0.rxvirt lan0.txvirt lan0.copy.a lan0.copy.h a h; do
    [ "$(state $c)" = running ] && [ "$(field $c 4)" = 0 ] ||
        fail "$c is $(state $c) with $(field $c 4) restarts"
done
ok "every component still running, none restarted"
echo "$CHECKS checks passed"
