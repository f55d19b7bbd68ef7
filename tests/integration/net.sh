#!/bin/bash
# The shared network: two Linux stacks behind TAP frontends (namespaces
# $NP-a, $NP-b) and a native lwIP client c share one wire ($NP-wire; the lan is
# namespace $NP-lan).  Checks that each client reaches the lan (ARP, ICMP,
# TCP, UDP), that nobody sees unicast meant for another client, that a
# client cannot send with another's source MAC or to a client it is not a
# peer of, that b's rate limit holds, and what `ctl net` reports.
. "$(dirname "$0")/lib.sh"
net_init
declare -A TCP_MBPS

MAC_A=$NET_MAC_A MAC_B=$NET_MAC_B MAC_C=$NET_MAC_C


RATE_B="
        rate: {bits: 20M, burst: 64K}"
net_system net-test "
        peers: [b]" "
        peers: [a]$RATE_B" > "$T/sys.yaml"
net_start "$T/sys.yaml"

# ---- 7 (first, on a fresh system): ctl net names every client ------------
out=$(ctl net) || fail "ctl net failed: $out"
for c in a:$MAC_A b:$MAC_B c:$MAC_C; do
    echo "$out" | grep -Eq "^client ${c%%:*} mac=${c#*:} rx_packets=[0-9]+ rx_bytes=[0-9]+ tx_packets=[0-9]+ tx_bytes=[0-9]+ local=[0-9]+ throttled=[0-9]+" ||
        fail "ctl net has no proper line for client ${c%%:*} ($c): $out"
done
echo "$out" | grep -Eq "^driver .*link=up" && echo "$out" | grep -Eq "^wire rx_packets=" ||
    fail "ctl net lacks the driver/wire lines: $out"
ok "ctl net lists clients a, b, c with their MACs, the driver (link up) and the wire"
out=$(ctl net nosuch 2>&1) && fail "ctl net nosuch succeeded: $out"
echo "$out" | grep -q "ERROR" || fail "ctl net nosuch: no ERROR in '$out'"
ok "ctl net nosuch fails: $out"

# ---- 1: each TAP client reaches the lan: ARP, ICMP, TCP, UDP ---------------
for ns in $NP-a $NP-b; do
    ip -n "$ns" neigh flush dev eth0
    ping_all "$ns" 10.77.0.1 3
    ip -n "$ns" neigh show 10.77.0.1 dev eth0 | grep -q lladdr ||
        fail "$ns: no ARP entry for 10.77.0.1 after the ping"
    ok "$ns: ARP resolves 10.77.0.1 and ping gets 3 of 3 replies"

    net_iperf "$ns" -t 2
    net_iperf_get bps bits_per_second
    [ "${bps%.*}" -gt 0 ] || fail "$ns: TCP throughput $bps"
    TCP_MBPS[${ns#$NP-}]=$(awk -v b="$bps" 'BEGIN { printf "%.1f", b / 1e6 }')
    ok "$ns: TCP to the lan: ${TCP_MBPS[${ns#$NP-}]} Mbit/s received (iperf3 -t 2)"

    net_iperf "$ns" -u -b 5M -t 1 -l 1000
    net_iperf_get got received_packets
    net_iperf_get sent sent_packets
    [ "$got" -gt 0 ] || fail "$ns: the UDP receiver got $got of $sent datagrams"
    ok "$ns: UDP to the lan: the receiver got $got of $sent datagrams"
done

# HTTP with an unmodified curl: a 2 MiB file from a web server on the lan.
mkdir -p "$T/www"
head -c 2097152 /dev/urandom > "$T/www/blob"
ip netns exec $NP-lan python3 -m http.server 8080 --bind 10.77.0.1 --directory "$T/www" \
    >/dev/null 2>&1 &
HTTPD=$!
for ns in $NP-a $NP-b; do
    got=$(timeout 60 ip netns exec "$ns" curl -sf --retry 5 --retry-connrefused --retry-delay 1 \
        http://10.77.0.1:8080/blob | sha256sum | cut -d' ' -f1)
    [ "$got" = "$(sha256sum < "$T/www/blob" | cut -d' ' -f1)" ] ||
        fail "$ns: curl fetched a file whose sha256 is ${got:-nothing}, not the lan's"
    ok "$ns: curl fetches a 2 MiB file over HTTP from the lan, byte for byte"
done
kill $HTTPD 2>/dev/null; wait $HTTPD 2>/dev/null

# ---- 2: the lwIP client c: ICMP, UDP echo, TCP echo -----------------------
ping_all $NP-lan 10.77.0.30 3
ok "$NP-lan pings the lwIP client c (3 of 3)"
out=$(timeout 60 ip netns exec $NP-lan python3 "$NETHELP/echo.py" udp 10.77.0.30 7 100 2>&1) ||
    fail "UDP echo from c: $out"
ok "UDP echo from c: $out"
out=$(timeout 90 ip netns exec $NP-lan python3 "$NETHELP/echo.py" tcp 10.77.0.30 7 1048576 2>&1) ||
    fail "TCP echo from c: $out"
ok "TCP echo from c: $out"

# ---- 3: unicast for b reaches b and only b ---------------------------------
net_unicast_b_only

# ---- 4: anti-spoofing -------------------------------------------------------
net_capture $NP-lan "$T/lan-88b5.pcap" ether proto 0x88b5
cap_l=$BG
net_capture $NP-b "$T/b-88b5.pcap" ether proto 0x88b5
cap_b=$BG
net_counter spoof0 a tx_drop_spoof
# A positive control first: the same frames with a's own source MAC pass.
sent=$(ip netns exec $NP-a python3 "$NETHELP/rawsend.py" eth0 $MAC_A ff:ff:ff:ff:ff:ff 0x88b5 20) ||
    fail "raw send from $NP-a failed"
[ "$sent" = 20 ] || fail "raw send from $NP-a: $sent of 20 frames"
t0=$SECONDS
sent=$(ip netns exec $NP-a python3 "$NETHELP/rawsend.py" eth0 $MAC_B ff:ff:ff:ff:ff:ff 0x88b5 20) ||
    fail "raw send from $NP-a failed"
[ "$sent" = 20 ] || fail "spoofed raw send from $NP-a: $sent of 20 frames"
sleep 0.5
net_capture_stop $cap_l "$T/lan-88b5.pcap"
net_capture_stop $cap_b "$T/b-88b5.pcap"
net_counter spoof1 a tx_drop_spoof
lan_own=$(net_pcap_count "$T/lan-88b5.pcap" ether src $MAC_A)
lan_spoof=$(net_pcap_count "$T/lan-88b5.pcap" ether src $MAC_B)
b_own=$(net_pcap_count "$T/b-88b5.pcap" ether src $MAC_A)
b_spoof=$(net_pcap_count "$T/b-88b5.pcap" ether src $MAC_B)
[ "$lan_own" = 20 ] && [ "$b_own" = 20 ] ||
    fail "a's 20 broadcast frames with its own MAC: the lan saw $lan_own, b saw $b_own"
ok "control: a's 20 broadcast 0x88b5 frames with its own MAC reach the lan ($lan_own) and peer b ($b_own)"
[ $((spoof1 - spoof0)) -ge 20 ] || fail "a's tx_drop_spoof went $spoof0 -> $spoof1, expected +20"
[ "$lan_spoof" = 0 ] && [ "$b_spoof" = 0 ] ||
    fail "frames with b's source MAC from a got through: lan saw $lan_spoof, b saw $b_spoof"
ok "20 frames from a with b's source MAC: tx_drop_spoof $spoof0 -> $spoof1, the lan saw $lan_spoof, b saw $b_spoof"
spoof_re="\[lan0\.txvirt\] client a: frame with source $MAC_B, not its own MAC; dropped"
wait_log "$spoof_re" 5
n=$(count_log "$spoof_re")
[ "$n" -ge 1 ] && [ "$n" -le $((SECONDS - t0 + 2)) ] ||
    fail "$n spoof log lines for 20 frames within $((SECONDS - t0))s; expected at most one a second"
ok "the supervisor log reports a's spoofing, rate-limited ($n line(s) for 20 frames)"

# ---- 5: client to client: peers may, others may not -------------------------
net_counter la0 a local
ping_all $NP-a 10.77.0.11 5
net_counter la1 a local
net_counter lb1 b local
[ $((la1 - la0)) -ge 5 ] || fail "a pinged b 5 times but a's local went $la0 -> $la1"
ok "a pings its peer b (5 of 5), switched locally: a's local $la0 -> $la1 (b's $lb1)"
ip -n $NP-b neigh replace 10.77.0.30 lladdr $MAC_C dev eth0 nud permanent || fail "cannot set neighbour in $NP-b"
net_counter d0 b tx_drop_peer_denied
out=$(ip netns exec $NP-b ping -c 3 -i 0.2 -W 1 10.77.0.30 2>&1) && fail "b reached c, which is not its peer: $out"
net_counter d1 b tx_drop_peer_denied
[ $((d1 - d0)) -ge 3 ] || fail "b's 3 pings to c: tx_drop_peer_denied $d0 -> $d1"
ip netns exec $NP-lan ping -c 1 -W 2 10.77.0.30 >/dev/null || fail "c stopped answering the lan"
ok "b cannot reach c (not its peer): ping fails, b's tx_drop_peer_denied $d0 -> $d1; c still answers the lan"

# ---- 6: b's rate limit: 20 Mbit/s of whole frames ---------------------------
net_counter th0 b throttled
rcvbuf0=$(net_lan_rcvbuf_errors)
net_iperf $NP-b -u -b 60M -t 5 -l 1400 -w 4M
rcvbuf1=$(net_lan_rcvbuf_errors)
net_counter th1 b throttled
net_iperf_get got bits_per_second
net_iperf_get sent sent_packets
net_iperf_get recv received_packets
net_iperf_get secs seconds
verdict=$(awk -v m="$got" 'BEGIN {
    e = 20e6 * 1400 / (1400 + 8 + 20 + 14); r = m / e
    printf "%s measured %.2f Mbit/s payload, expected %.2f (ratio %.3f)", (r - 1 <= 0.10 && 1 - r <= 0.10) ? "pass" : "FAIL", m / 1e6, e / 1e6, r }')
RATE_RESULT="$verdict; $recv of $sent datagrams in ${secs}s; throttled $th0 -> $th1; lan socket buffer drops $((rcvbuf1 - rcvbuf0))"
echo "rate limit: $RATE_RESULT"
[ "${verdict%% *}" = pass ] || fail "b's rate limit: $RATE_RESULT"
[ "$th1" -gt "$th0" ] || fail "b was never throttled ($th0 -> $th1)"
ok "b at 60 Mbit/s offered is held to 20 Mbit/s: ${verdict#pass }; throttled $th0 -> $th1"

# ---- 5b: a system where a and b are not peers ------------------------------
stop || fail "supervisor exited with $?"
net_system net-test "" "$RATE_B" > "$T/sys2.yaml"
net_start "$T/sys2.yaml"
ip -n $NP-a neigh replace 10.77.0.11 lladdr $MAC_B dev eth0 nud permanent || fail "cannot set neighbour in $NP-a"
net_counter d0 a tx_drop_peer_denied
out=$(ip netns exec $NP-a ping -c 3 -i 0.2 -W 1 10.77.0.11 2>&1) && fail "a reached b without being its peer: $out"
net_counter d1 a tx_drop_peer_denied
[ $((d1 - d0)) -ge 3 ] || fail "a's 3 pings to b: tx_drop_peer_denied $d0 -> $d1"
ping_all $NP-a 10.77.0.1 3
ok "without peers: a cannot reach b (tx_drop_peer_denied $d0 -> $d1) but still reaches the lan"
stop || fail "supervisor exited with $?"

echo "summary: TCP a ${TCP_MBPS[a]} Mbit/s, b ${TCP_MBPS[b]} Mbit/s; rate limit: $RATE_RESULT"
echo "$CHECKS checks passed"
