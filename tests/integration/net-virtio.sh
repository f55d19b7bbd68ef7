#!/bin/bash
# The shared network with a QEMU virtio-net NIC (examples/net-virtio.yaml):
# the NIC is a device of a guest-less QEMU machine, driven by net-virtio
# through the hardware layer; its wire is a TAP (vnic0) in $NP-lan that
# `net-lab wire` bridges into the lan.  Checks that the two TAP clients and
# the lwIP client pass the checks of net.sh through it (and that the frames
# really went through the device and its TAP), that a killed driver restarts,
# re-initialises the device and the clients resume without restarting, that
# a killed QEMU is restarted with its wire (policy restart), and that with
# policy shutdown the system exits 1 and leaves nothing behind.
. "$(dirname "$0")/lib.sh"
net_require
command -v qemu-system-x86_64 >/dev/null 2>&1 ||
    fail "net-virtio needs qemu-system-x86_64 (apt-get install qemu-system-x86)"
net_init
EXAMPLE=$(cd "$(dirname "$0")/../.." && pwd)/examples/net-virtio.yaml
[ -f "$EXAMPLE" ] || fail "missing $EXAMPLE"
MAC_A=$NET_MAC_A MAC_B=$NET_MAC_B MAC_C=$NET_MAC_C
TAPN=vnic0
FAILED_RE="(QEMU was killed by signal 9 \\(KILL\\)|the (qtest|QMP) connection (closed|broke) \\(QEMU is gone\\))"
UP_RE='^\[lan0\.driver\] virtio-net 1af4:1041 up: '
mbit() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1e6 }'; }

# virtio_system NAME FAULT: the example, in this run's namespaces.
virtio_system() {
    sed -e "s/^system: net-virtio\$/system: $1/" -e "s/^\(    fault:\) restart\$/\1 $2/" \
        -e "s/netns: dm-\(lan\|a\|b\),/netns: $NP-\1,/" "$EXAMPLE"
}
virtio_system net-virtio-test restart > "$T/sys.yaml"
grep -v "^ *#" "$T/sys.yaml" | grep -q "dm-" && fail "the example still names dm- namespaces: $(grep -v "^ *#" "$T/sys.yaml" | grep dm-)"
[ "$(grep -c "netns: $NP-" "$T/sys.yaml")" = 3 ] && grep -q '^    fault: restart$' "$T/sys.yaml" &&
    grep -q "wire: {tap: {netns: $NP-lan, ifname: $TAPN}}" "$T/sys.yaml" ||
    fail "examples/net-virtio.yaml changed shape; the test cannot adapt it: $(cat "$T/sys.yaml")"

# ---- `ctl machine` ----------------------------------------------------------
mach() {
    local out
    out=$(ctl machine board 2>&1) || fail "ctl machine board failed: $out"
    echo "$out"
}
mhead() { mach | awk -v k="$1" 'NR == 1 { for (i = 1; i < NF; i++) if ($i == k) print $(i + 1) }'; }
mdev() {
    mach | awk -v k="$1" '$1 == "device" && $2 == "nic0" {
        for (i = 3; i < NF; i++) if ($i == k) print $(i + 1) }'
}
# tapstat NS IF KEY: a counter of IF in NS (rx_packets, tx_packets, ...).
tapstat() { ip netns exec "$1" cat "/sys/class/net/$2/statistics/$3" 2>/dev/null; }
tap_index() { ip netns exec $NP-lan cat "/sys/class/net/$TAPN/ifindex" 2>/dev/null; }
tap_master() { ip -n $NP-lan -o link show "$TAPN" 2>/dev/null | grep -o 'master [^ ]*' | cut -d' ' -f2; }

# pids_of COMPONENT...: "name=pid/restarts ..." from ctl status.
pids_of() {
    local c out=
    for c in "$@"; do out="$out $c=$(field "$c" 3)/$(field "$c" 4)"; done
    echo "${out# }"
}
STAYING="lan0.rxvirt lan0.txvirt lan0.copy.a lan0.copy.b lan0.copy.c a b c"

# wait_driver N: lan0.driver running after N restarts, and its device up
# N+1 times in the log (its "virtio-net ... up" line).
wait_driver() {
    local deadline=$((SECONDS + 15))
    until [ "$(state lan0.driver)" = running ] && [ "$(field lan0.driver 4)" = "$1" ] &&
        [ "$(count_log "$UP_RE")" -ge $(($1 + 1)) ]; do
        [ $SECONDS -le $deadline ] ||
            fail "driver: state $(state lan0.driver), restarts $(field lan0.driver 4), $(count_log "$UP_RE") 'virtio-net up' lines; expected running, $1 restarts, $(($1 + 1)) lines"
        sleep 0.1
    done
}

# vstart FILE: start, bridge the device's wire into the lan, address a and
# b, wait for the device, the lan from a and b, and the lwIP client c.
vstart() {
    start_ready "$1"
    net_wait_running lan0.driver lan0.rxvirt lan0.txvirt a b c
    "$NETLAB" wire $NP $TAPN || fail "net-lab wire $NP $TAPN failed"
    "$NETLAB" addr $NP-a 10.77.0.10/24 || fail "cannot address eth0 in $NP-a"
    "$NETLAB" addr $NP-b 10.77.0.11/24 || fail "cannot address eth0 in $NP-b"
    wait_log "$UP_RE" 15
    wait_log "\[c\] lwIP up: 10\.77\.0\.30/24"
    net_wait_ping $NP-a 10.77.0.1 15
    net_wait_ping $NP-b 10.77.0.1 10
    net_wait_ping $NP-lan 10.77.0.30 10
}

# iperf_min NS MINMBIT ARGS...: TCP iperf3 from NS; at least MINMBIT Mbit/s
# received; the rate in $RATE.
iperf_min() {
    local ns=$1 min=$2 bps
    shift 2
    net_iperf "$ns" "$@"
    net_iperf_get bps bits_per_second
    RATE=$(mbit "$bps")
    awk -v r="$RATE" -v m="$min" 'BEGIN { exit !(r > m) }' ||
        fail "$ns: TCP ($*) got $RATE Mbit/s, expected > $min"
}
# udp_ok NS: 1 s of UDP at 5 Mbit/s to the lan, >= 90% received.
udp_ok() {
    local got sent
    net_iperf "$1" -u -b 5M -t 1 -l 1000
    net_iperf_get got received_packets
    net_iperf_get sent sent_packets
    [ "$sent" -gt 0 ] && [ $((got * 10)) -ge $((sent * 9)) ] ||
        fail "$1: UDP to the lan: the receiver got $got of $sent datagrams"
    UDP="$got of $sent"
}
# c_ok UDPN TCPBYTES: the lan reaches c: ping, UDP echo, TCP echo.
c_ok() {
    local out
    ping_all $NP-lan 10.77.0.30 2
    out=$(timeout 60 ip netns exec $NP-lan python3 "$NETHELP/echo.py" udp 10.77.0.30 7 "$1" 2>&1) ||
        fail "UDP echo from c: $out"
    out=$(timeout 60 ip netns exec $NP-lan python3 "$NETHELP/echo.py" tcp 10.77.0.30 7 "$2" 2>&1) ||
        fail "TCP echo from c: $out"
}

vstart "$T/sys.yaml"
QPID=$(mhead pid)
[ "$(mhead state)" = up ] && [ -n "$QPID" ] && [ "$(mhead restarts)" = 0 ] || fail "machine: $(mach | head -1)"
[ "$(mdev driver)" = lan0.driver ] && [ "$(mdev id)" = 1af4:1041 ] || fail "nic0: $(mach | grep 'device nic0')"
[ -n "$(tap_index)" ] && [ "$(tap_master)" = br0 ] || fail "$TAPN in $NP-lan: $(ip -n $NP-lan link show $TAPN 2>&1)"
net_line driver | grep -q " link=up" || fail "ctl net driver line: $(net_line driver)"
ok "the system runs: QEMU $QPID, nic0 (1af4:1041) driven by lan0.driver, link up, wire $TAPN bridged in $NP-lan; a, b, c reach the lan"

# ---- 1: the checks of net.sh, through the virtio device -------------------
m_reads0=$(mdev reads) m_writes0=$(mdev writes) m_irqs0=$(mdev irqs)
net_counter drx0 driver rx_packets
net_counter dtx0 driver tx_packets
trx0=$(tapstat $NP-lan $TAPN rx_packets) ttx0=$(tapstat $NP-lan $TAPN tx_packets)
eth_rx0=$(tapstat $NP-lan eth0 rx_packets)
declare -A TCP
for ns in $NP-a $NP-b; do
    ip -n "$ns" neigh flush dev eth0
    ping_all "$ns" 10.77.0.1 3
    ip -n "$ns" neigh show 10.77.0.1 dev eth0 | grep -q lladdr ||
        fail "$ns: no ARP entry for 10.77.0.1 after the ping"
    ok "$ns: ARP resolves 10.77.0.1 and ping gets 3 of 3 replies"
    iperf_min "$ns" 50 -t 2
    up=$RATE
    iperf_min "$ns" 50 -t 2 -R
    TCP[${ns#$NP-}]="$up/$RATE"
    ok "$ns: TCP to the lan $up Mbit/s, from the lan $RATE Mbit/s (iperf3 -t 2 each, > 50 required)"
    udp_ok "$ns"
    ok "$ns: UDP to the lan: the receiver got $UDP datagrams"
done

mkdir -p "$T/www"
head -c 2097152 /dev/urandom > "$T/www/blob"
want=$(sha256sum < "$T/www/blob" | cut -d' ' -f1)
net_bg ip netns exec $NP-lan python3 -m http.server 8080 --bind 10.77.0.1 --directory "$T/www" \
    >/dev/null 2>&1
for ns in $NP-a $NP-b; do
    got=$(timeout 60 ip netns exec "$ns" curl -sf --retry 5 --retry-connrefused --retry-delay 1 \
        http://10.77.0.1:8080/blob | sha256sum | cut -d' ' -f1)
    [ "$got" = "$want" ] || fail "$ns: curl fetched a file whose sha256 is ${got:-nothing}, not the lan's"
    ok "$ns: curl fetches a 2 MiB file over HTTP from the lan, byte for byte"
done

c_ok 100 1048576
ok "the lwIP client c: the lan pings it, 100 UDP datagrams and 1 MiB of TCP echoed identically"

# Unicast for b reaches b and only b.
net_unicast_b_only

# a -> b is switched locally: nothing of it on the device's wire.
net_capture_if $NP-lan $TAPN "$T/wire-ab.pcap" icmp and host 10.77.0.11
cap_w=$BG
net_counter la0 a local
ping_all $NP-a 10.77.0.11 5
net_counter la1 a local
sleep 0.3
net_capture_stop $cap_w "$T/wire-ab.pcap"
n_w=$(net_pcap_count "$T/wire-ab.pcap")
[ $((la1 - la0)) -ge 5 ] || fail "a pinged b 5 times but a's local went $la0 -> $la1"
[ "$n_w" = 0 ] || fail "a -> b pings appeared on the device's wire $TAPN: $n_w frames"
ok "a pings its peer b (5 of 5), switched locally: a's local $la0 -> $la1, $n_w ICMP frames on $TAPN"

# All of it went through the virtio device and its TAP.
m_reads1=$(mdev reads) m_writes1=$(mdev writes) m_irqs1=$(mdev irqs)
net_counter drx1 driver rx_packets
net_counter dtx1 driver tx_packets
trx1=$(tapstat $NP-lan $TAPN rx_packets) ttx1=$(tapstat $NP-lan $TAPN tx_packets)
eth_rx1=$(tapstat $NP-lan eth0 rx_packets)
[ "$m_irqs1" -gt "$m_irqs0" ] && [ "$m_reads1" -gt "$m_reads0" ] && [ "$m_writes1" -gt "$m_writes0" ] ||
    fail "ctl machine nic0: irqs $m_irqs0 -> $m_irqs1, reads $m_reads0 -> $m_reads1, writes $m_writes0 -> $m_writes1"
ok "ctl machine nic0: irqs $m_irqs0 -> $m_irqs1, reads $m_reads0 -> $m_reads1, writes $m_writes0 -> $m_writes1"
drx=$((drx1 - drx0)) dtx=$((dtx1 - dtx0)) trx=$((trx1 - trx0)) ttx=$((ttx1 - ttx0))
[ $drx -ge 20000 ] && [ $dtx -ge 20000 ] || fail "ctl net driver: rx_packets +$drx, tx_packets +$dtx (expected >= 20000 each)"
# The TAP's rx is what the device sent, its tx what the lan gave the device.
# (Within 1% + 50: the two sets of counters are not read at one instant.)
near() { [ "$1" -ge $(($2 - $2 / 100 - 50)) ] && [ "$1" -le $(($2 + $2 / 100 + 50)) ]; }
near $trx $dtx && near $ttx $drx ||
    fail "$TAPN in $NP-lan: rx +$trx, tx +$ttx; the driver: tx +$dtx, rx +$drx"
ok "driver rx_packets +$drx, tx_packets +$dtx; $TAPN in $NP-lan saw them: rx +$trx, tx +$ttx"
[ $((eth_rx1 - eth_rx0)) -lt 100 ] || fail "the lan's old wire (eth0) received $((eth_rx1 - eth_rx0)) frames: traffic bypassed the device?"

# ---- 2: the driver killed mid-transfer, three times -------------------------
pids0=$(pids_of $STAYING)
for c in $STAYING; do
    [ "$(field $c 4)" = 0 ] || fail "$c restarted before the driver kills: $pids0"
done
for k in 1 2 3; do
    pid_d=$(field lan0.driver 3)
    resets0=$(mdev resets)
    [ -n "$pid_d" ] && [ "$(field lan0.driver 4)" = $((k - 1)) ] || fail "driver: pid '$pid_d', restarts $(field lan0.driver 4)"
    ip netns exec $NP-a iperf3 -c 10.77.0.1 -J -t 5 -i 0.5 > "$T/iperf-k$k.json" 2>&1 &
    iperf_pid=$!
    NET_BG="$NET_BG $iperf_pid"
    sleep 1.5
    kill -0 "$iperf_pid" 2>/dev/null || fail "kill $k: iperf3 from a ended before the kill: $(head -c 600 "$T/iperf-k$k.json")"
    kill -KILL "$pid_d" || fail "cannot kill the driver (pid $pid_d)"
    wait_count "component 'lan0.driver' killed by signal 9" $k 5
    wait_driver $k
    pid_n=$(field lan0.driver 3)
    grep -q "started 'lan0.driver' (pid $pid_n, restarted)" "$T/log" ||
        fail "kill $k: the log does not show the driver restarted as pid $pid_n: $(grep "lan0.driver" "$T/log" | tail -3)"
    resets1=$(mdev resets)
    [ "$resets1" -gt "$resets0" ] || fail "kill $k: ctl machine nic0 resets $resets0 -> $resets1 (the device was not re-initialised)"
    wait "$iperf_pid" || fail "kill $k: iperf3 from a failed across the driver kill: $(head -c 600 "$T/iperf-k$k.json")"
    tail_mbit=$(python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
iv = j["intervals"]
print("%.1f" % (sum(i["sum"]["bits_per_second"] for i in iv[-2:]) / 2 / 1e6))' "$T/iperf-k$k.json") ||
        fail "kill $k: iperf3 output: $(head -c 600 "$T/iperf-k$k.json")"
    cp "$T/iperf-k$k.json" "$T/iperf.json"
    net_iperf_get total bits_per_second
    awk -v r="$tail_mbit" 'BEGIN { exit !(r > 50) }' ||
        fail "kill $k: a's TCP stream did not resume: $tail_mbit Mbit/s in its last second"
    [ "$(pids_of $STAYING)" = "$pids0" ] || fail "kill $k: others restarted: $pids0 -> $(pids_of $STAYING)"
    ping_all $NP-a 10.77.0.1 2
    ping_all $NP-b 10.77.0.1 2
    udp_ok $NP-b
    c_ok 10 65536
    ok "driver kill $k: the log shows it restarted (pid $pid_d -> $pid_n), nic0 resets $resets0 -> $resets1, 'virtio-net up' again; a's TCP stream resumed ($tail_mbit Mbit/s in its last second, $(mbit "$total") overall); a, b ping, b UDP $UDP, c echoes; nobody else restarted"
done
iperf_min $NP-b 50 -t 1
ok "after three driver kills: b TCP $RATE Mbit/s; $(net_line driver | grep -o 'device_resets=[0-9]*')"
[ "$(mhead pid)" = "$QPID" ] && [ "$(mhead restarts)" = 0 ] || fail "the machine restarted with the driver: $(mach | head -1)"

# ---- 2b: the device goes bad ----------------------------------------------
# A device fault from the real device model: every rx descriptor the driver
# posted gets a buffer address no device can reach (written into the
# machine's RAM from outside, as a broken device's DMA engine would see
# it).  QEMU's virtio-net then sets DEVICE_NEEDS_RESET.  The driver must
# count it, reset the device, bring it up again and carry on: it does not
# crash, nothing restarts, traffic resumes.  net-virtio places the rx ring's
# descriptor table at the start of drv_dma (layout_at in virtio.c).
mach | grep -q '^  region lan0.drv_dma dev 0x' || fail "ctl machine lists no region lan0.drv_dma: $(mach)"
net_counter dres0 driver device_resets
drv_pid=$(field lan0.driver 3) drv_r=$(field lan0.driver 4) pids_b=$(pids_of $STAYING)
up0=$(count_log "$UP_RE")
n=$(python3 "$NETHELP/scribble.py" "$QPID" lan0.drv_dma) || fail "scribble: $n"
[ "$n" -gt 0 ] || fail "scribble changed no descriptor"
ip netns exec $NP-lan ping -c 3 -i 0.2 -W 1 10.77.0.30 >/dev/null 2>&1 # some are lost: that is the fault
wait_log "device fault: device set DEVICE_NEEDS_RESET" 10
deadline=$((SECONDS + 10))
until [ "$(count_log "$UP_RE")" -gt "$up0" ]; do
    [ $SECONDS -le $deadline ] || fail "the driver did not bring the device up again after DEVICE_NEEDS_RESET"
    sleep 0.1
done
net_counter dres1 driver device_resets
[ "$dres1" -gt "$dres0" ] || fail "device_resets $dres0 -> $dres1 after a DEVICE_NEEDS_RESET"
[ "$(field lan0.driver 3)/$(field lan0.driver 4)" = "$drv_pid/$drv_r" ] ||
    fail "the driver restarted on a device fault (pid/restarts $drv_pid/$drv_r -> $(field lan0.driver 3)/$(field lan0.driver 4)); it must handle it itself"
[ "$(pids_of $STAYING)" = "$pids_b" ] || fail "others restarted on a device fault"
grep -q "qemu-system-x86_64: virtio: bogus descriptor" "$T/log" ||
    fail "QEMU did not report the bogus descriptors: the fault was not the device's"
ping_all $NP-a 10.77.0.1 2
ping_all $NP-b 10.77.0.1 2
c_ok 10 65536
ok "device fault: $n rx descriptors made unreachable; QEMU set DEVICE_NEEDS_RESET, the driver counted it (device_resets $dres0 -> $dres1), reset the device and carried on without restarting; a, b, c work again"

# ---- 3a: QEMU killed, policy restart ---------------------------------------
tap0=$(tap_index)
drv_r=$(field lan0.driver 4)
kill -KILL "$QPID" || fail "cannot kill QEMU $QPID"
wait_log "machine 'board' failed: $FAILED_RE" 5
wait_log "machine 'board': fault policy: restart the machine and its drivers" 5
deadline=$((SECONDS + 15))
until [ "$(mhead state)" = up ] && [ "$(mhead restarts)" = 1 ] && [ "$(mhead pid)" != "$QPID" ]; do
    [ $SECONDS -le $deadline ] || fail "machine after QEMU's kill: $(mach | head -1)"
    sleep 0.1
done
Q2=$(mhead pid)
ok "kill -9 of QEMU: '$(grep -Eo "machine 'board' failed: $FAILED_RE" "$T/log" | head -1)'; restarted: pid $QPID -> $Q2, restarts 1"
wait_driver $((drv_r + 1))
grep -q "started 'lan0.driver' (pid $(field lan0.driver 3), restarted)" "$T/log" ||
    fail "the log does not show the driver restarted after QEMU's restart"
ok "the driver restarted with it (restarts $drv_r -> $(field lan0.driver 4)) and brought the device up again"
[ "$(pids_of $STAYING)" = "$pids0" ] || fail "others restarted with QEMU: $pids0 -> $(pids_of $STAYING)"
[ "$(tap_index)" = "$tap0" ] && [ "$(tap_master)" = br0 ] ||
    fail "the wire $TAPN after QEMU's restart: ifindex $tap0 -> '$(tap_index)', master '$(tap_master)' (expected the same TAP, still in br0)"
ok "the wire $TAPN survived (ifindex $tap0, still in br0); clients and virtualisers did not restart"
trx0=$(tapstat $NP-lan $TAPN rx_packets)
net_wait_ping $NP-a 10.77.0.1 10
net_wait_ping $NP-b 10.77.0.1 5
ping_all $NP-a 10.77.0.1 3
ping_all $NP-b 10.77.0.1 3
iperf_min $NP-a 50 -t 1
ra=$RATE
iperf_min $NP-b 50 -t 1 -R
c_ok 10 65536
trx1=$(tapstat $NP-lan $TAPN rx_packets)
[ $((trx1 - trx0)) -ge 1000 ] || fail "$TAPN rx +$((trx1 - trx0)) after QEMU's restart"
ok "a, b ping the lan again, TCP a -> lan $ra Mbit/s, lan -> b $RATE Mbit/s, c echoes; over $TAPN (rx +$((trx1 - trx0)))"
pids="$SUP_PID $QPID $Q2"
for c in lan0.driver $STAYING; do pids="$pids $(field $c 3)"; done
stop || fail "supervisor exited with $? after the machine restart"

# assert_clean WHAT PID...: nothing of the run is left, nor its TAPs.
assert_clean() {
    run_gone "$@"
    local what=$1 ns
    ip -n $NP-lan link show "$TAPN" >/dev/null 2>&1 && fail "$what: the wire $TAPN is still in $NP-lan"
    for ns in $NP-a $NP-b; do
        ip -n $ns link show lo >/dev/null 2>&1 || fail "$what: namespace $ns is gone"
        ip -n $ns link show eth0 >/dev/null 2>&1 && fail "$what: the client TAP eth0 is still in $ns"
    done
}
assert_clean "stop" $pids
ok "stop: exit 0; nothing left (QEMU, components, control socket, TAPs, memfds)"

# ---- 3b: QEMU killed, policy shutdown --------------------------------------
virtio_system net-virtio-down shutdown > "$T/down.yaml"
grep -q '^    fault: shutdown$' "$T/down.yaml" || fail "cannot make a fault: shutdown system"
vstart "$T/down.yaml"
QPID=$(mhead pid)
held=$(memfd_ours)
[[ " $(echo $held) " == *" $SUP_PID "* ]] && [[ " $(echo $held) " == *" $QPID "* ]] ||
    fail "devmux memfds not found in the running supervisor $SUP_PID and QEMU $QPID (found: $held)"
pids="$SUP_PID $QPID"
for c in lan0.driver $STAYING; do pids="$pids $(field $c 3)"; done
ip -n $NP-lan link show "$TAPN" >/dev/null && ip -n $NP-a link show eth0 >/dev/null ||
    fail "no wire or client TAP while the system runs"
kill -KILL "$QPID" || fail "cannot kill QEMU $QPID"
t0=$SECONDS
for i in $(seq 100); do kill -0 "$SUP_PID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$SUP_PID" 2>/dev/null && fail "supervisor still runs 10 s after QEMU was killed"
wait "$SUP_PID"
rc=$?
SUP_PID=
[ $rc = 1 ] || fail "supervisor exited with $rc after the machine failed, expected 1"
grep -Eq "machine 'board' failed: $FAILED_RE" "$T/log" || fail "no 'machine failed' line with its cause"
grep -q "machine 'board': fault policy: shutdown" "$T/log" || fail "the policy is not logged"
ok "kill -9 of QEMU (policy shutdown): supervisor exits 1 within $((SECONDS - t0)) s, logs the failure with its cause and the policy"
assert_clean "machine fault" $pids
ok "nothing left: QEMU, components, control socket, wire and client TAPs, devmux memfds all gone"

echo "summary: TCP a ${TCP[a]} Mbit/s, b ${TCP[b]} Mbit/s (to/from the lan)"
echo "$CHECKS checks passed"
