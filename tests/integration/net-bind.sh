#!/bin/bash
# IP and ARP anti-spoofing on a shared network.  b, an unmodified Linux
# stack, claims a's IPv4 and link-local addresses with ARP replies, forged
# IP sources and IPv6 neighbour advertisements.  With the addresses bound,
# a keeps every ping both ways and the lan never learns b's MAC for a's
# address; without them (the same run, a second system), the lan does: the
# check can fail.  Then d takes its address from a DHCP server on the lan
# (dnsmasq) and may use it once, and only once, the lease is seen.
. "$(dirname "$0")/lib.sh"
net_init
for t in dnsmasq busybox; do
    command -v $t >/dev/null || fail "needs $t (scripts/setup installs dnsmasq-base and busybox)"
done
ip netns add $NP-d || fail "cannot create $NP-d"
ip -n $NP-d link set lo up
bind_cleanup() {
    net_cleanup
    [ -f "$T.dnsmasq.pid" ] && kill "$(cat "$T.dnsmasq.pid")" 2>/dev/null
    rm -f "$T.dnsmasq.pid" "$T.leases"
    ip netns del $NP-d 2>/dev/null
}
trap bind_cleanup EXIT

system() { # system NAME BIND(0|1)
    local a_bind= b_bind= d_bind=
    if [ "$2" = 1 ]; then
        a_bind='
        ipv4: [10.77.0.10]'
        b_bind='
        ipv4: [10.77.0.11]'
        d_bind='
        dhcp: true'
    fi
    cat <<YAML
system: $1
networks:
  - name: lan0
    nic: {packet: {interface: $NP-wire}}
    clients:
      - name: a
        tap: {netns: $NP-a, ifname: eth0}
        mac: "$NET_MAC_A"$a_bind
      - name: b
        tap: {netns: $NP-b, ifname: eth0}
        mac: "$NET_MAC_B"$b_bind
      - name: d
        tap: {netns: $NP-d, ifname: eth0}
        mac: "02:00:00:00:00:0d"$d_bind
YAML
}
A_LL=fe80::ff:fe00:a # the EUI-64 link-local of 02:00:00:00:00:0a

# spoof_round: b claims a's addresses for 6 s while a pings the lan and the
# lan pings a; the lan's neighbour entry for 10.77.0.10 is sampled all the
# while.  Sets POISONED (samples naming b's MAC) and LOST_A, LOST_LAN.
spoof_round() {
    ip netns exec $NP-b ip link set eth0 up
    ip netns exec $NP-b python3 "$NETHELP/spoof.py" eth0 $NET_MAC_B 10.77.0.10 6 $A_LL \
        > "$T/spoof.out" 2>&1 &
    local spoofer=$!
    ip netns exec $NP-a ping -n -c 25 -i 0.2 -W 2 10.77.0.1 > "$T/ping-a.out" 2>&1 &
    local pa=$!
    ip netns exec $NP-lan ping -n -c 25 -i 0.2 -W 2 10.77.0.10 > "$T/ping-lan.out" 2>&1 &
    local pl=$!
    POISONED=0
    for _ in $(seq 30); do
        ip -n $NP-lan neigh show 10.77.0.10 | grep -qi "$NET_MAC_B" && POISONED=$((POISONED + 1))
        sleep 0.2
    done
    wait $spoofer || fail "spoof.py failed: $(cat "$T/spoof.out")"
    wait $pa
    wait $pl
    LOST_A=$((25 - $(sed -n 's/.* \([0-9]*\) received.*/\1/p' "$T/ping-a.out")))
    LOST_LAN=$((25 - $(sed -n 's/.* \([0-9]*\) received.*/\1/p' "$T/ping-lan.out")))
}

# ---- without bound addresses: the attack works (the check can fail) ----
system bind-off 0 > "$T/off.yaml"
start "$T/off.yaml"
wait_log "control socket"
net_wait_running a b d
"$NETLAB" addr $NP-a 10.77.0.10/24
"$NETLAB" addr $NP-b 10.77.0.11/24
net_wait_ping $NP-a 10.77.0.1
spoof_round
echo "unbound: poisoned in $POISONED of 30 samples; a lost $LOST_A of 25 pings, the lan $LOST_LAN"
[ "$POISONED" -gt 0 ] || fail "with no addresses bound, b's ARP replies never reached the lan: the test would prove nothing"
ok "without bound addresses b poisons the lan's entry for a ($POISONED of 30 samples)"
stop >/dev/null || true
ip -n $NP-lan neigh flush dev eth0

# ---- with bound addresses ------------------------------------------------
system bind-on 1 > "$T/on.yaml"
start "$T/on.yaml"
wait_log "control socket"
net_wait_running a b d
"$NETLAB" addr $NP-a 10.77.0.10/24 2>/dev/null || true
"$NETLAB" addr $NP-b 10.77.0.11/24 2>/dev/null || true
net_wait_ping $NP-a 10.77.0.1
net_wait_ping $NP-b 10.77.0.1
net_line "client a" | grep -q " bound=10.77.0.10 " || fail "ctl net does not show a's binding: $(net_line "client a")"
net_line "client d" | grep -q " bound=- lease=- " || fail "ctl net does not show d's empty lease: $(net_line "client d")"
ok "ctl net shows the bound addresses (a: 10.77.0.10) and d's lease (none yet)"

spoof_round
echo "bound: poisoned in $POISONED of 30 samples; a lost $LOST_A of 25 pings, the lan $LOST_LAN; b sent $(cat "$T/spoof.out")"
[ "$POISONED" = 0 ] || fail "the lan's neighbour entry for 10.77.0.10 named b's MAC in $POISONED samples"
[ "$LOST_A" = 0 ] && [ "$LOST_LAN" = 0 ] || fail "a lost $LOST_A pings to the lan, the lan $LOST_LAN to a"
ok "b's claims on a's addresses changed nothing: every ping answered, the lan never saw b's MAC for 10.77.0.10"
net_counter arp b tx_drop_spoof_arp
net_counter ip b tx_drop_spoof_ip
read -r sarp sip sna sip6 < <(tr ' =' '\n\n' < "$T/spoof.out" | sed -n '2p;4p;6p;8p' | tr '\n' ' ')
[ "$arp" -ge $((sarp + sna)) ] || fail "b's tx_drop_spoof_arp is $arp; expected its $sarp ARP replies and $sna advertisements counted"
[ "$ip" -ge $((sip + sip6)) ] || fail "b's tx_drop_spoof_ip is $ip; expected its $sip forged IPv4 and $sip6 IPv6 packets counted"
ok "b's counters: tx_drop_spoof_arp=$arp tx_drop_spoof_ip=$ip"
for k in tx_drop_spoof_arp tx_drop_spoof_ip tx_drop_proto; do
    net_counter n a $k
    [ "$n" = 0 ] || fail "a, honest, has $k=$n"
done
ok "a, honest, has no spoofing drop"
wait_log "\[lan0.txvirt\] client b: spoof_(arp|ip) frame .* not bound to it; dropped"
ok "the tx virtualiser logged b's spoofing"
# b's own address still works for b: the binding takes nothing from it.
ping_all $NP-b 10.77.0.1 5
ok "b still reaches the lan from its own address"

# ---- DHCP ---------------------------------------------------------------
ip netns exec $NP-lan dnsmasq --port=0 --interface=eth0 --bind-interfaces \
    --dhcp-range=10.77.0.100,10.77.0.120,255.255.255.0,1h --dhcp-leasefile="$T.leases" \
    --pid-file="$T.dnsmasq.pid" --log-dhcp 2> "$T/dnsmasq.err" ||
    fail "dnsmasq did not start: $(cat "$T/dnsmasq.err")"
# Before any lease, an address d picks for itself is refused.
ip -n $NP-d link set eth0 up
ip -n $NP-d addr add 10.77.0.77/24 dev eth0
ip netns exec $NP-d ping -n -c 3 -i 0.2 -W 1 10.77.0.1 >/dev/null 2>&1 &&
    fail "d reached the lan from an address no DHCP server gave it"
net_counter before d tx_drop_spoof_ip
net_counter before_arp d tx_drop_spoof_arp
[ $((before + before_arp)) -gt 0 ] || fail "d's self-chosen address was not counted as spoofing"
ok "d's self-chosen 10.77.0.77 was refused ($before IP, $before_arp ARP drops)"
ip -n $NP-d addr flush dev eth0
ip netns exec $NP-d busybox udhcpc -i eth0 -n -q -f -t 5 -T 1 -s "$NETHELP/udhcpc.sh" \
    > "$T/udhcpc.out" 2>&1 || fail "udhcpc got no lease: $(cat "$T/udhcpc.out")"
got=$(ip -n $NP-d -4 -o addr show dev eth0 | awk '{ print $4 }' | cut -d/ -f1)
case $got in 10.77.0.1[01][0-9] | 10.77.0.120) ;; *) fail "d has address '$got' after udhcpc: $(cat "$T/udhcpc.out")" ;; esac
wait_log "\[lan0.rxvirt\] client d: DHCP lease of $got for 3600 s"
net_line "client d" | grep -Eq " lease=$got/3[0-9]{3}s " || fail "ctl net does not show d's lease: $(net_line "client d")"
ok "d leased $got from dnsmasq; the rx virtualiser saw it and ctl net shows it"
ping_all $NP-d 10.77.0.1 5
ok "d reaches the lan from its leased address"
stop >/dev/null || true
echo "$CHECKS checks passed"
