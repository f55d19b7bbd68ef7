#!/bin/bash
# Issue 9: an honest TAP client's throughput and pings survive a hostile
# client that attacks in phases (tests/components/net-attack.c).
#
# System 1: honest TAP client a (10.77.0.10) and hostile h (net-attack,
# 10.77.0.13) with the caps an administrator gives an untrusted OS: 100
# Mbit/s each way, a CPU budget, a memory quota, its IPv4 address bound.
# For each attack, PAIRS pairs of phases (attack on, idle), interleaved so
# that noise from the rest of the machine hits both; in each phase a pings
# the lan 20 times, then sends it TCP for 3 s (iperf3).  A phase the script
# reaches late, or whose measurement runs into the next, is not counted.
# Checks, per attack:
#   - median(on) / median(idle) >= 0.70 (the goal, 0.80, is reported);
#   - no ping lost, on or idle;
#   - nothing restarted, except h under `memory`, where its quota must
#     have restarted it;
#   - h's counters show what it did (spoofed ARP and IP dropped, frames for
#     it dropped by its receive caps, sync requests refused, garbage counted,
#     its CPU held to its budget, the log flood suppressed);
#   - during arp-spoof the lan's neighbour entry for 10.77.0.10 never names
#     h's MAC.
# System 2: the same without any caps, attract (keep every buffer) only:
# a keeps at least half of its idle throughput (its fair share with two
# clients) and every ping.
#
# It prints a table for docs/benchmarks.md, and writes it to
# $ISOLATION_REPORT if set.  Knobs (for development; the defaults are the
# test): ISOLATION_ATTACKS (comma list), ISOLATION_PAIRS (3; system 2:
# ISOLATION_PAIRS2, 5),
# ISOLATION_PHASE_MS (8500; system 2: ISOLATION_PHASE2_MS, 11000),
# ISOLATION_FLOOD (UDP rate the lan adds towards h in system 1's attract
# phases, 100M, so that twice h's rx_rate arrives for it; 0: none), ISOLATION_UNCAPPED (1: run system 2), ISOLATION_LEGACY=1
# (leave out the description keys of the issue-9 fixes, to measure a build
# without them), ISOLATION_DEBUG=1 (timings and h's counters).
. "$(dirname "$0")/lib.sh"
net_require

ALL=arp-spoof,attract,attract-return,restart-storm,scribble,spin,memory,storm
ATTACKS=${ISOLATION_ATTACKS:-$ALL}
PAIRS=${ISOLATION_PAIRS:-3}
PHASE_MS=${ISOLATION_PHASE_MS:-8500}
FLOOD=${ISOLATION_FLOOD:-100M}
UNCAPPED=${ISOLATION_UNCAPPED:-1}
LEGACY=${ISOLATION_LEGACY:-0}
SETTLE_MS=300     # after a phase starts, before measuring
IPERF_S=3         # TCP seconds per phase
PINGS=20          # per phase, every 0.1 s
MIN_RATIO=70      # percent of the idle median, per attack (the issue's CI bound)
GOAL_RATIO=80     # reported
FAIR_RATIO=50     # system 2: half of idle, two clients
CPU_BUDGET_PCT=20 # h's limits below: 2 ms every 10 ms
MAC_H=02:00:00:00:00:0d
MAC_A=02:00:00:00:00:0a
IP_H=10.77.0.13
FAILS=()
SKIPPED=0 # phases not measured (script late) or measurements discarded (overran)
REPORT="$T/report"

net_init
# The measuring tools (this script, ping, iperf3 at both ends) run at normal
# priority: they stand for the honest OS's applications and for the far
# host, and favouring them would flatter the network under test.
LAN_MAC=$(ip -n $NP-lan -o link show eth0 | grep -o 'link/ether [0-9a-f:]*' | cut -d' ' -f2)
[ -n "$LAN_MAC" ] || fail "no MAC on the lan's eth0"

# soft_fail MSG: a check failed; keep measuring, fail at the end (the
# numbers of every attack are worth having).
soft_fail() {
    echo "FAIL: $*"
    FAILS+=("$*")
}

now_us() { echo "${EPOCHREALTIME/./}"; }

sleep_until_us() {
    local d=$(($1 - $(now_us)))
    [ $d -gt 0 ] && sleep "$(printf '%d.%06d' $((d / 1000000)) $((d % 1000000)))"
    return 0
}

# system NAME CAPS: a, h and the network.  CAPS=1: h gets the caps.
system() {
    local h_caps= a_caps=
    if [ "$2" = 1 ]; then
        h_caps="
        rate: {bits: 100M, burst: 64K}"
        [ "$LEGACY" = 1 ] || h_caps="$h_caps
        ipv4: [$IP_H]
        rx_rate: {bits: 100M, burst: 64K}
        limits: {cpu: {budget: 2ms, period: 10ms}, memory: 64M, threads: 8}"
        [ "$LEGACY" = 1 ] || a_caps="
        ipv4: [10.77.0.10]"
    fi
    cat <<YAML
system: $1
regions:
  - name: h-state
    size: 4K
    map:
      - {component: h, perms: rw}
networks:
  - name: lan0
    nic: {packet: {interface: $NP-wire}}
    buffers: 512
    clients:
      - name: a
        tap: {netns: $NP-a, ifname: eth0}
        mac: "$MAC_A"$a_caps
      - name: h
        program: net-attack
        mac: "$MAC_H"$h_caps
        config: {attacks: "$3", pairs: $PAIRS, phase_ms: $PHASE_MS, lead_ms: 6000, state: h-state,
                 ip: $IP_H, victim_ip: 10.77.0.10, lan_ip: 10.77.0.1, lan_mac: "$LAN_MAC",
                 spin_threads: 3, memory_cap: 1G}
YAML
}

COMPONENTS="lan0.driver lan0.rxvirt lan0.txvirt lan0.copy.a lan0.copy.h a h"
restarts_of() { field "$1" 4; }
pid_of() { field "$1" 3; }
# cpu_ticks PID: user + system clock ticks of the whole process.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
TICK_HZ=$(getconf CLK_TCK)

# h_counters: h's line of ctl net, as "key=value" words.
h_counters() { net_line "client h" | tr ' ' '\n' | grep =; }
# delta BEFORE AFTER KEY...: the sum of the increases of KEYs.
delta() {
    local b=$1 a=$2 k sum=0 x y
    shift 2
    for k in "$@"; do
        x=$(echo "$b" | awk -F= -v k="$k" '$1 == k { print $2 }')
        y=$(echo "$a" | awk -F= -v k="$k" '$1 == k { print $2 }')
        sum=$((sum + ${y:-0} - ${x:-0}))
    done
    echo $sum
}
# sum_matching SNAP REGEX: the sum of counters whose key matches.
sum_matching() {
    echo "$1" | awk -F= -v r="$2" '$1 ~ r { s += $2 } END { print s + 0 }'
}

# measure TAG: one phase's ping and TCP; sets BPS and LOST.
# The pings come first, on their own: during a's own TCP at full speed its
# receive quota overflows (its copier counts no_buffer, attack or not) and a
# ping lost there would say nothing about the attack.  Both are bounded in
# time, so a measurement ends even when the attack stalls a's connection.
measure() {
    ip netns exec $NP-a ping -n -q -c $PINGS -i 0.1 -W 1 -w 3 10.77.0.1 > "$T/ping.$1" 2>&1
    local sent rcvd
    sent=$(grep -o '[0-9]* packets transmitted' "$T/ping.$1" | cut -d' ' -f1)
    rcvd=$(grep -o '[0-9]* received' "$T/ping.$1" | cut -d' ' -f1)
    LOST=$((${sent:-$PINGS} - ${rcvd:-0}))
    if timeout $((IPERF_S + 3)) ip netns exec $NP-a iperf3 -c 10.77.0.1 -t $IPERF_S \
        --connect-timeout 1000 -J > "$T/iperf.$1" 2>&1; then
        BPS=$(python3 "$NETHELP/iperf.py" "$T/iperf.$1" bits_per_second 2>/dev/null) || BPS=0
        BPS=${BPS%.*}
    else
        BPS=0
        echo "  ($1: iperf3 failed or timed out: $(grep -o '"error":.*' "$T/iperf.$1" | head -c 200))"
    fi
}

median() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { print NR % 2 ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }

# run_schedule SYSTEM_TAG ATTACKS: follows h's schedule phase by phase;
# results in $T/$tag.<attack>.on / .idle (bits/s per pair) and checks.
run_schedule() {
    local tag=$1 caps=$2 list=$3 line start_us
    wait_log "\[h\] h: schedule: start_us=" 20
    line=$(grep -E "\[h\] h: schedule: start_us=" "$T/log" | head -1)
    start_us=$(echo "$line" | grep -o 'start_us=[0-9]*' | cut -d= -f2)
    local IFS_SAVE=$IFS attacks i k a p pair_on snap0 snap1 r0 r1 phase_start phase_end
    IFS=, read -r -a attacks <<< "$list"
    IFS=$IFS_SAVE
    # The lan reaches h without asking (h ignores ARP while it keeps its
    # buffers) and knows a.
    ip -n $NP-lan neigh replace $IP_H lladdr $MAC_H dev eth0
    net_wait_ping $NP-a 10.77.0.1
    local base_restarts=() c
    for c in $COMPONENTS; do base_restarts+=("$(restarts_of $c)"); done
    snap0=$(h_counters)
    local drv0 drv1 a0 a1
    drv0=$(net_line driver | tr ' ' '\n' | grep =)
    a0=$(net_line "client a" | tr ' ' '\n' | grep =)
    k=0
    for i in "${!attacks[@]}"; do
        a=${attacks[$i]}
        : > "$T/$tag.$a.on"
        : > "$T/$tag.$a.idle"
        r0=$(restarts_of h)
        local sampler= flooder= cpu0 cpu1 cpu_max=0 lost_on=0 lost_idle=0
        for p in $(seq $PAIRS); do
            for pair_on in 1 0; do
                phase_start=$((start_us + k * PHASE_MS * 1000))
                phase_end=$((phase_start + PHASE_MS * 1000))
                if [ $pair_on = 1 ] && [ "$a" = arp-spoof ] && [ -z "$sampler" ]; then
                    # The lan's neighbour entry for a, ten times a second,
                    # from the first spoofing phase to near the end of this
                    # attack (the checks that follow need the rest).
                    (
                        end=$((start_us + ((k + 2 * PAIRS) * PHASE_MS - 2000) * 1000))
                        while [ "$(now_us)" -lt $end ]; do
                            ip -n $NP-lan neigh show 10.77.0.10
                            sleep 0.1
                        done
                    ) > "$T/$tag.neigh" 2>&1 &
                    sampler=$!
                fi
                local what
                what=$([ $pair_on = 1 ] && echo on || echo idle)
                sleep_until_us $((phase_start + SETTLE_MS * 1000))
                # A busy machine can hold the script up past a phase's start;
                # measuring then would mix two phases.  Skip the phase.
                if [ "$(now_us)" -gt $((phase_start + (SETTLE_MS + 1000) * 1000)) ]; then
                    echo "  phase $((k + 1)) $a $what: skipped, the script was $((($(now_us) - phase_start) / 1000)) ms late"
                    SKIPPED=$((SKIPPED + 1))
                    k=$((k + 1))
                    continue
                fi
                if [ $pair_on = 1 ] && [[ $a == attract* ]] && [ "$FLOOD" != 0 ]; then
                    # Until the measurement ends (killed then), at most the phase.
                    ip netns exec $NP-lan nice -n 10 python3 "$NETHELP/udpflood.py" $IP_H "$FLOOD" \
                        "$((PHASE_MS / 1000))" > /dev/null 2>&1 &
                    flooder=$!
                fi
                local hp t0
                hp=$(pid_of h)
                cpu0=$(cpu_ticks "$hp")
                t0=$(now_us)
                measure "$tag.$k"
                local t1
                t1=$(now_us)
                cpu1=$(cpu_ticks "$hp")
                [ -n "${ISOLATION_DEBUG:-}" ] && echo "  measured in $((($(now_us) - t0) / 1000)) ms, $(((phase_end - $(now_us)) / 1000)) ms before the phase ends"
                if [ $pair_on = 1 ] && [ "$hp" = "$(pid_of h)" ]; then
                    local pct=$(((cpu1 - cpu0) * 100 * 1000000 / TICK_HZ / ($(now_us) - t0)))
                    [ $pct -gt $cpu_max ] && cpu_max=$pct
                fi
                if [ -n "$flooder" ]; then
                    pkill -TERM -P $flooder 2> /dev/null
                    kill -TERM $flooder 2> /dev/null
                    wait $flooder 2> /dev/null
                fi
                flooder=
                # Pings count whatever happens: they were all inside the phase.
                if [ $pair_on = 1 ]; then
                    lost_on=$((lost_on + LOST))
                else
                    lost_idle=$((lost_idle + LOST))
                fi
                if [ $t1 -gt $phase_end ]; then
                    echo "  phase $((k + 1)) $a $what: $((BPS / 1000000)) Mbit/s discarded: the measurement ran into the next phase"
                    SKIPPED=$((SKIPPED + 1))
                else
                    echo "$BPS" >> "$T/$tag.$a.$what"
                    printf '  phase %2d %-15s %-4s %6d Mbit/s  pings lost %d\n' $((k + 1)) "$a" \
                        "$what" $((BPS / 1000000)) "$LOST"
                fi
                k=$((k + 1))
            done
        done
        [ -n "$sampler" ] && wait $sampler
        snap1=$(h_counters)
        r1=$(restarts_of h)
        drv1=$(net_line driver | tr ' ' '\n' | grep =)
        a1=$(net_line "client a" | tr ' ' '\n' | grep =)
        echo "  $a: drops meanwhile: driver no_buffer +$(delta "$drv0" "$drv1" rx_drop_no_buffer), a's no_buffer/queue_full/share +$(delta "$a0" "$a1" rx_drop_no_buffer)/+$(delta "$a0" "$a1" rx_drop_queue_full)/+$(delta "$a0" "$a1" rx_drop_share); h's CPU at most $cpu_max% of a core"
        drv0=$drv1
        a0=$a1
        [ -n "${ISOLATION_DEBUG:-}" ] && echo "  h before: $(echo $snap0)" && echo "  h after: $(echo $snap1)"
        # Throughput.
        local on idle ratio
        on=$(median < "$T/$tag.$a.on")
        idle=$(median < "$T/$tag.$a.idle")
        if [ "$(grep -c . "$T/$tag.$a.on")" -lt 3 ] || [ "$(grep -c . "$T/$tag.$a.idle")" -lt 3 ]; then
            soft_fail "$tag $a: fewer than 3 valid measurements attacked ($(grep -c . "$T/$tag.$a.on")) or idle ($(grep -c . "$T/$tag.$a.idle")): the machine is too busy for this test"
        fi
        ratio=$((idle > 0 ? on * 100 / idle : 0))
        local need=$MIN_RATIO
        [ "$caps" = 0 ] && need=$FAIR_RATIO
        printf '| %s | %s | %d | %d | %d%% | %s | %s |\n' "$tag" "$a" $((idle / 1000000)) \
            $((on / 1000000)) $ratio "$cpu_max%" "$(tr '\n' ' ' < "$T/$tag.$a.on" | awk '{ for (i = 1; i <= NF; i++) printf "%s%d", (i > 1 ? "/" : ""), $i / 1000000 }') vs $(tr '\n' ' ' < "$T/$tag.$a.idle" | awk '{ for (i = 1; i <= NF; i++) printf "%s%d", (i > 1 ? "/" : ""), $i / 1000000 }')" >> "$REPORT"
        if [ $ratio -ge $need ]; then
            ok "$tag $a: a's TCP median $((on / 1000000)) Mbit/s attacked, $((idle / 1000000)) idle: $ratio% (>= $need%; goal $GOAL_RATIO%)"
        else
            soft_fail "$tag $a: a's TCP median $((on / 1000000)) Mbit/s attacked, $((idle / 1000000)) idle: $ratio% < $need%"
        fi
        # Pings.
        if [ $lost_on = 0 ] && [ $lost_idle = 0 ]; then
            ok "$tag $a: a lost no ping ($((2 * PAIRS * PINGS)) sent)"
        else
            soft_fail "$tag $a: a lost $lost_on pings attacked and $lost_idle idle"
        fi
        # Restarts: only h, only by its memory quota.
        if [ "$a" = memory ] && [ "$caps" = 1 ]; then
            if [ $((r1 - r0)) -gt 0 ]; then
                ok "$tag memory: h's memory quota restarted it $((r1 - r0)) times"
            else
                soft_fail "$tag memory: h was never restarted: no memory quota held it"
            fi
        elif [ "$r1" != "$r0" ]; then
            soft_fail "$tag $a: h restarted $((r1 - r0)) times: $(ctl status | awk '$1 == "h"')"
        fi
        # What h did, in its counters.
        check_counters "$tag" "$caps" "$a" "$snap0" "$snap1" "$cpu_max"
        snap0=$snap1
    done
    local n=0
    for c in $COMPONENTS; do
        local r
        r=$(restarts_of $c)
        if [ "$c" != h ] && [ "$r" != "${base_restarts[$n]}" ]; then
            soft_fail "$tag: $c restarted ($r times, ${base_restarts[$n]} before the attacks)"
        fi
        [ "$(state $c)" = running ] || [ "$c" = h ] || soft_fail "$tag: $c is $(state $c)"
        n=$((n + 1))
    done
    ok "$tag: restarts afterwards: $(for c in $COMPONENTS; do printf '%s=%s ' $c "$(restarts_of $c)"; done)"
}

# check_counters TAG CAPS ATTACK BEFORE AFTER CPU_MAX_PCT
check_counters() {
    local tag=$1 caps=$2 a=$3 b=$4 n=$5 cpu=$6 d d2
    case $a in
    arp-spoof)
        d=$(delta "$b" "$n" tx_drop_spoof_arp)
        d2=$(delta "$b" "$n" tx_drop_spoof_ip)
        if [ "$caps" = 1 ] && { [ "$d" -le 0 ] || [ "$d2" -le 0 ]; }; then
            soft_fail "$tag arp-spoof: h's tx_drop_spoof_arp +$d, tx_drop_spoof_ip +$d2: its forgeries were not stopped"
        else
            ok "$tag arp-spoof: h's tx_drop_spoof_arp +$d, tx_drop_spoof_ip +$d2"
        fi
        local poisoned
        poisoned=$(grep -ci "$MAC_H" "$T/$tag.neigh")
        if [ "$poisoned" != 0 ]; then
            soft_fail "$tag arp-spoof: the lan's neighbour table named h's MAC for 10.77.0.10 in $poisoned of $(grep -c . "$T/$tag.neigh") samples"
        else
            ok "$tag arp-spoof: the lan's entry for 10.77.0.10 never named h's MAC ($(grep -c . "$T/$tag.neigh") samples)"
        fi
        ;;
    attract | attract-return)
        d=$(delta "$b" "$n" tx_packets)
        local keys="rx_drop_rate rx_drop_share"
        [ "$caps" = 0 ] && keys="rx_drop_rate rx_drop_share rx_drop_no_buffer rx_drop_queue_full"
        d2=$(delta "$b" "$n" $keys)
        if [ "$d" -le 0 ] || [ "$d2" -le 0 ]; then
            soft_fail "$tag $a: h sent $d frames and had $d2 frames dropped by its receive caps ($keys)"
        else
            ok "$tag $a: h sent $d frames; $d2 frames for it dropped ($keys); delivered +$(delta "$b" "$n" rx_packets)"
        fi
        ;;
    restart-storm)
        d=$(delta "$b" "$n" resyncs_deferred)
        if [ "$d" -le 0 ]; then
            soft_fail "$tag restart-storm: h's resyncs_deferred +$d: its requests were not held back: $(echo $n)"
        else
            ok "$tag restart-storm: h's resyncs +$(delta "$b" "$n" resyncs), resyncs_deferred +$d"
        fi
        ;;
    scribble)
        d=$(($(sum_matching "$n" 'drop_bad_') - $(sum_matching "$b" 'drop_bad_')))
        if [ "$d" -le 0 ]; then
            soft_fail "$tag scribble: h's garbage was not counted (bad_desc/len/index +$d)"
        else
            ok "$tag scribble: h's garbage counted: bad_desc/len/index +$d, garbage_pauses +$(delta "$b" "$n" garbage_pauses)"
        fi
        ;;
    spin)
        if [ "$caps" = 1 ] && [ "$cpu" -gt $((CPU_BUDGET_PCT * 3 / 2)) ]; then
            soft_fail "$tag spin: h used $cpu% of a CPU, over its budget of $CPU_BUDGET_PCT%"
        else
            ok "$tag spin: h used at most $cpu% of a CPU (budget $CPU_BUDGET_PCT%)"
        fi
        ;;
    memory)
        ok "$tag memory: $(grep -Ec "component 'h' .*(signal 9|SIGKILL|memory)" "$T/log") kills of h in the log"
        ;;
    storm)
        local sup
        sup=$(grep -Eo '\[h\] \([0-9]+ lines suppressed' "$T/log" | awk '{ s += substr($2, 2) } END { print s + 0 }')
        if [ "$sup" -le 0 ]; then
            soft_fail "$tag storm: the supervisor suppressed none of h's log lines"
        else
            ok "$tag storm: the supervisor suppressed $sup of h's log lines; h notified $(notify_sent h 0)/$(notify_sent h 1) times on ch 0/1"
        fi
        ;;
    esac
}

report_header() {
    {
        echo "| system | attack | idle Mbit/s (median) | attacked Mbit/s (median) | ratio | h's CPU (max) | per pair, attacked vs idle |"
        echo "| --- | --- | --- | --- | --- | --- | --- |"
    } > "$REPORT"
}

report_header
# ---- system 1: h with the caps -------------------------------------------
system isolation 1 "$ATTACKS" > "$T/caps.yaml"
"$DEVMUX" check "$T/caps.yaml" > "$T/check.out" 2>&1 || fail "devmux check: $(cat "$T/check.out")"
start "$T/caps.yaml"
wait_log "control socket"
net_wait_running lan0.driver lan0.rxvirt lan0.txvirt a h
"$NETLAB" addr $NP-a 10.77.0.10/24 || fail "cannot address eth0 in $NP-a"
echo "system 1 (caps on h$([ "$LEGACY" = 1 ] && echo ", legacy keys only")): $ATTACKS, $PAIRS pairs of ${PHASE_MS} ms phases"
run_schedule capped 1 "$ATTACKS"
ctl net | sed 's/^/  /'
stop > /dev/null || true

# ---- system 2: no caps, attract and keep ----------------------------------
if [ "$UNCAPPED" = 1 ]; then
    # Longer phases: with nothing capped the attack saturates this bench,
    # and the measuring tools themselves run slowly (6 phases, so cheap).
    PHASE_MS=${ISOLATION_PHASE2_MS:-11000}
    # No flood from the lan here: uncapped, h's own echo requests already
    # bring back all the traffic the bench can carry, and a generator in the
    # lan would only take CPU from this 2-core machine, which in a real
    # network belongs to another host.
    FLOOD=0
    # Five pairs: the fair share is a narrow margin on this bench (52-59%
    # of idle against the bound of 50% in our runs), so the median needs
    # more samples than the capped attacks' wide ones.
    PAIRS=${ISOLATION_PAIRS2:-5}
    system isolation-nocaps 0 attract > "$T/nocaps.yaml"
    start "$T/nocaps.yaml"
    wait_log "control socket"
    net_wait_running lan0.driver lan0.rxvirt lan0.txvirt a h
    "$NETLAB" addr $NP-a 10.77.0.10/24 || fail "cannot address eth0 in $NP-a"
    echo "system 2 (no caps): attract, $PAIRS pairs"
    run_schedule uncapped 0 attract
    ctl net | sed 's/^/  /'
    stop > /dev/null || true
fi

echo
echo "phases skipped or discarded (busy machine): $SKIPPED"
cat "$REPORT"
[ -n "${ISOLATION_REPORT:-}" ] && cp "$REPORT" "$ISOLATION_REPORT"
if [ ${#FAILS[@]} -gt 0 ]; then
    echo "${#FAILS[@]} checks failed:" >&2
    printf '  %s\n' "${FAILS[@]}" >&2
    exit 1
fi
echo "$CHECKS checks passed"
