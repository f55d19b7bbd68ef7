# Shared helpers for integration tests: each test runs real `devmux run`
# systems in a private run directory and asserts on what the supervisor,
# the control socket and the kernel (/proc) say.
set -u
: "${DEVMUX:?DEVMUX must name the devmux binary}"
T=$(mktemp -d /tmp/devmux-test.XXXXXX)
export DEVMUX_RUNDIR=$T/run
# Components of this run get uids of their own, so checks for leftover
# processes cannot be confused by any other devmux system on the machine.
export DEVMUX_UID_BASE=$((300000 + (RANDOM % 4096) * 128))
SUP_PID=
CHECKS=0

cleanup() {
    if [ -n "$SUP_PID" ] && kill -0 "$SUP_PID" 2>/dev/null; then
        kill -TERM "$SUP_PID" 2>/dev/null
        wait "$SUP_PID" 2>/dev/null
    fi
    rm -rf "$T"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    if [ -f "$T/log" ]; then
        echo "---- supervisor log (last 40 lines) ----" >&2
        tail -n 40 "$T/log" >&2
    fi
    exit 1
}

ok() {
    CHECKS=$((CHECKS + 1))
    echo "ok: $*"
}

# start SYSTEM_FILE: runs the supervisor in the background, output in $T/log.
start() {
    : > "$T/log"
    "$DEVMUX" run "$1" --ctl "$T/ctl.sock" > "$T/log" 2>&1 &
    SUP_PID=$!
}

# start_ready SYSTEM_FILE: start, and wait until the control socket is up
# (failing at once if the supervisor exits first).
start_ready() {
    start "$1"
    local deadline=$((SECONDS + 20))
    until grep -q "control socket" "$T/log"; do
        kill -0 "$SUP_PID" 2>/dev/null || fail "the supervisor exited at start"
        [ $SECONDS -le $deadline ] || fail "no control socket within 20 s"
        sleep 0.1
    done
}

# wait_log REGEX [SECONDS]: until the log matches (extended regex).
wait_log() {
    local deadline=$((SECONDS + ${2:-10}))
    while [ $SECONDS -le $deadline ]; do
        grep -Eq -- "$1" "$T/log" && return 0
        sleep 0.1
    done
    fail "log never matched /$1/ within ${2:-10}s"
}

# count_log REGEX: how many log lines match.
count_log() {
    grep -Ec -- "$1" "$T/log" || true
}

ctl() {
    "$DEVMUX" ctl --ctl "$T/ctl.sock" "$@"
}

# state COMPONENT: its state column in `devmux ctl status`.
state() {
    ctl status | awk -v c="$1" '$1 == c { print $2 }'
}

# field COMPONENT N: column N of the component's status line.
field() {
    ctl status | awk -v c="$1" -v n="$2" '$1 == c { print $n }'
}

# notify_sent COMPONENT CH: notifications it sent on channel CH.
notify_sent() {
    ctl status | awk -v c="$1" -v ch="$2" '
        $1 == c { on = 1; next }
        /^[^ ]/ { on = 0 }
        on && $1 == "ch" && $2 == ch { for (i = 1; i <= NF; i++) if ($i == "sent") { print $(i + 1); exit } }'
}

# stop: SIGTERM the supervisor and wait; prints its exit status.
stop() {
    kill -TERM "$SUP_PID"
    wait "$SUP_PID"
    local rc=$?
    SUP_PID=
    return $rc
}

# A ping-pong pair to show that the rest of a system keeps running.
PINGPONG_COMPONENTS='
  - {name: ping, program: ping, config: {report_ms: 200}}
  - {name: pong, program: pong}'
# ring_region A B [SETVAR]: the queue pair region ping-pong uses, shared by
# A and B; A's mapping sets SETVAR if given (ping expects ring_vaddr).
ring_region() {
    local setvar=${3:+, setvar_vaddr: $3}
    cat <<YAML

  - name: ring
    size: 64K
    layout:
      - {name: active, queue: 256}
      - {name: free, queue: 256}
      - {name: buffers, buffers: 256, buffer_size: 64}
    map:
      - {component: $1, perms: rw$setvar}
      - {component: $2, perms: rw}
YAML
}
PINGPONG_REST=$(ring_region ping pong ring_vaddr)
PINGPONG_CHANNELS='
  - ends: [{component: ping, id: 0}, {component: pong, id: 0}]
  - ends: [{component: ping, id: 1, pp: true}, {component: pong, id: 1}]'

# assert_pingpong_alive: ping keeps notifying pong over half a second.
assert_pingpong_alive() {
    local a b
    a=$(notify_sent ping 0)
    sleep 0.5
    b=$(notify_sent ping 0)
    [ -n "$a" ] && [ -n "$b" ] && [ "$b" -gt "$a" ] ||
        fail "ping-pong stalled: ping sent $a then $b notifications"
    [ "$(state ping)" = running ] && [ "$(state pong)" = running ] ||
        fail "ping/pong not running: $(state ping)/$(state pong)"
    ok "ping-pong keeps running ($a -> $b notifications)"
}

# run_gone WHAT PID...: no process of the run is left (the PIDs given, any
# under its component uids, any holding its memfds) and its control socket
# is gone.  Tests add the checks of their own namespaces and interfaces.
run_gone() {
    local what=$1 p left
    shift
    for p in "$@"; do
        alive "$p" && fail "$what: process $p ($(tr '\0' ' ' < /proc/$p/cmdline | cut -c1-60)) left behind"
    done
    left=$(ps -eo uid=,pid= | awk -v b="$DEVMUX_UID_BASE" '$1 >= b && $1 < b + 128 { print $2 }')
    [ -z "$left" ] || fail "$what: processes under component uids remain: $left"
    [ ! -e "$T/ctl.sock" ] || fail "$what: control socket left behind"
    left=$(memfd_ours "$@")
    [ -z "$left" ] || fail "$what: processes of this run hold devmux memfds: $left"
}

# wait_count REGEX N [SECONDS]: until at least N log lines match.
wait_count() {
    local deadline=$((SECONDS + ${3:-10}))
    while [ $SECONDS -le $deadline ]; do
        [ "$(count_log "$1")" -ge "$2" ] && return 0
        sleep 0.1
    done
    fail "log matched /$1/ only $(count_log "$1") times, expected $2, within ${3:-10}s"
}

# ---- leftovers (hw.sh, net-virtio.sh) ----------------------------------
# memfd_ours: processes of this run (by environment, component uid or pid)
# that still hold a "devmux:" memfd.  Other devmux systems on the machine
# hold such memfds too, and must not count.
memfd_ours() {
    local p uid
    for p in $(find /proc/[0-9]*/fd -lname '/memfd:devmux*' 2> /dev/null | cut -d/ -f3 | sort -u); do
        uid=$(awk '/^Uid:/ { print $2 }' "/proc/$p/status" 2> /dev/null) || continue
        if [ -n "$uid" ] && [ "$uid" -ge "$DEVMUX_UID_BASE" ] && [ "$uid" -lt $((DEVMUX_UID_BASE + 128)) ]; then
            echo "$p"
        elif tr '\0' '\n' < "/proc/$p/environ" 2> /dev/null | grep -qxF "DEVMUX_RUNDIR=$DEVMUX_RUNDIR"; then
            echo "$p"
        elif [[ " $* " == *" $p "* ]]; then
            echo "$p"
        fi
    done
}

# alive PID: a process that is neither gone nor a zombie.
alive() {
    local st
    st=$(awk '{ print $3 }' "/proc/$1/stat" 2> /dev/null) || return 1
    [ -n "$st" ] && [ "$st" != Z ]
}

# ---- shared network tests (net.sh, net-faults.sh) ----------------------
# They use scripts/net-lab with a prefix of their own run, $NP: namespaces
# $NP-lan (10.77.0.1, iperf3 server), $NP-a and $NP-b (the TAP clients'
# stacks), wire $NP-wire.  A per-run prefix keeps two runs on one machine
# out of each other's lab.
NP=dt$((RANDOM % 90000 + 10000))

# net_require: root and every tool the network tests use, or fail.
net_require() {
    [ "$(id -u)" = 0 ] || fail "network tests need root (netns, TAP, AF_PACKET)"
    local t
    for t in ip iperf3 tcpdump ping ethtool python3 sysctl curl; do
        command -v "$t" >/dev/null 2>&1 || fail "network tests need '$t' (scripts/setup installs it)"
    done
    NETLAB=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/scripts/net-lab
    NETHELP=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/net
    [ -x "$NETLAB" ] || fail "missing $NETLAB"
    [ -d "$NETHELP" ] || fail "missing $NETHELP"
    NET_BG=
}

# net_bg CMD...: run CMD in the background, remembered for cleanup; the pid
# is in $BG.
net_bg() {
    "$@" &
    BG=$!
    NET_BG="$NET_BG $BG"
}

# net_cleanup: background helpers, the supervisor (lib cleanup), the lab.
net_cleanup() {
    local p
    for p in $NET_BG; do kill -TERM "$p" 2>/dev/null; done
    for p in $NET_BG; do wait "$p" 2>/dev/null; done
    cleanup
    "$NETLAB" down "$NP" >/dev/null 2>&1
}

# net_init: checks, the lab up, cleanup on any exit.
net_init() {
    net_require
    trap net_cleanup EXIT
    trap 'exit 1' TERM INT HUP  # (meson's timeout sends TERM): still clean up
    "$NETLAB" up "$NP" || fail "net-lab up failed"
    ip netns exec $NP-lan ip link show eth0 >/dev/null || fail "net-lab: no eth0 in $NP-lan"
}

# net_wait_running COMPONENT... [within 10 s]
net_wait_running() {
    local c deadline=$((SECONDS + 10))
    for c in "$@"; do
        until [ "$(state "$c" 2>/dev/null)" = running ]; do
            [ $SECONDS -le $deadline ] || fail "component $c is '$(state "$c" 2>&1)', not running"
            sleep 0.1
        done
    done
}

# net_start FILE: start the system, wait for every component, address the
# TAP interfaces (10.77.0.10 in $NP-a, .11 in $NP-b) and wait until the lan
# answers from both and the lwIP client c is up.
net_start() {
    start "$1"
    wait_log "control socket"
    net_wait_running lan0.driver lan0.rxvirt lan0.txvirt a b c
    "$NETLAB" addr $NP-a 10.77.0.10/24 || fail "cannot address eth0 in $NP-a"
    "$NETLAB" addr $NP-b 10.77.0.11/24 || fail "cannot address eth0 in $NP-b"
    wait_log "\[c\] lwIP up: 10\.77\.0\.30/24"
    net_wait_ping $NP-a 10.77.0.1
    net_wait_ping $NP-b 10.77.0.1
}

# net_wait_ping NS IP [SECONDS]: until one ping from NS to IP succeeds.
net_wait_ping() {
    local deadline=$((SECONDS + ${3:-10}))
    until ip netns exec "$1" ping -c 1 -W 1 "$2" >/dev/null 2>&1; do
        [ $SECONDS -le $deadline ] || fail "$1 cannot ping $2 within ${3:-10}s"
        sleep 0.1
    done
}

# net_line WHAT: the line of `ctl net` that starts with WHAT (e.g.
# "client a", "driver", "wire").
net_line() {
    ctl net | grep -E "^$1( |$)"
}

# net_counter VAR CLIENT KEY: sets VAR to a counter from `ctl net` (drop
# counters it leaves out are 0).  CLIENT may also be "driver", "wire" or
# "local" for those lines.
net_counter() { # net_counter VAR NAME KEY (VAR must not be 'line' or 'v')
    local line v
    case $2 in
    driver | wire | local) line=$(net_line "$2") ;;
    *) line=$(net_line "client $2") ;;
    esac
    [ -n "$line" ] || fail "ctl net has no line for '$2': $(ctl net 2>&1)"
    v=$(echo "$line" | tr ' ' '\n' | awk -F= -v k="$3" '$1 == k { v = $2 } END { print v == "" ? 0 : v }')
    case $v in '' | *[!0-9a-z]*) fail "ctl net: bad $3 for $2: '$line'" ;; esac
    printf -v "$1" %s "$v"
}

# net_capture_if NS IF FILE FILTER...: start tcpdump on IF in NS writing FILE;
# returns once it listens.  The pid is in $BG; stop with net_capture_stop.
# Headers only (-s 128) and immediate mode, so that the kernel ring holds
# thousands of frames and nothing waits in a half-filled block.
net_capture_if() {
    local ns=$1 ifc=$2 file=$3
    shift 3
    net_bg ip netns exec "$ns" tcpdump -i "$ifc" --immediate-mode -U -n -s 128 -B 4096 \
        -w "$file" "$@" 2> "$file.err"
    local deadline=$((SECONDS + 10))
    until grep -q "listening on" "$file.err"; do
        [ $SECONDS -le $deadline ] && kill -0 "$BG" 2>/dev/null ||
            fail "tcpdump on $ifc in $ns did not start: $(cat "$file.err")"
        sleep 0.1
    done
}

# net_capture NS FILE FILTER...: net_capture_if on the TAP clients' eth0.
net_capture() {
    net_capture_if "$1" eth0 "${@:2}"
}

# net_capture_stop PID FILE: stop one capture and wait for it to flush.
# Fails if tcpdump says the kernel dropped any frame: a capture that missed
# frames proves nothing about what was not sent.
net_capture_stop() {
    kill -INT "$1" 2>/dev/null
    wait "$1" 2>/dev/null
    NET_BG=$(echo "$NET_BG" | tr ' ' '\n' | grep -vx "$1" | tr '\n' ' ')
    local dropped
    dropped=$(awk '/packets dropped by kernel/ { print $1 }' "$2.err")
    [ "$dropped" = 0 ] || fail "capture $2 is not complete: $(tr '\n' ' ' < "$2.err")"
}

# net_pcap_count FILE [FILTER...]: frames in a capture (matching FILTER):
# lines that start with a timestamp (tcpdump may add hex dump lines).
net_pcap_count() {
    local file=$1
    shift
    tcpdump -r "$file" -n "$@" 2>/dev/null | grep -c '^[0-9]'
}

# net_iperf NS ARGS...: iperf3 -J from NS to the lan; JSON in $T/iperf.json.
net_iperf() {
    local ns=$1
    shift
    ip netns exec "$ns" iperf3 -c 10.77.0.1 -J "$@" > "$T/iperf.json" 2>&1 ||
        fail "iperf3 from $ns ($*) failed: $(head -c 600 "$T/iperf.json")"
}

# net_iperf_get VAR KEY: sets VAR to KEY from $T/iperf.json (net/iperf.py).
net_iperf_get() {
    local v
    v=$(python3 "$NETHELP/iperf.py" "$T/iperf.json" "$2" 2>&1) || fail "iperf3 output: $2: $v"
    printf -v "$1" %s "$v"
}

# net_lan_rcvbuf_errors: UDP datagrams the lan's stack dropped for want of
# socket buffer (a slow receiver, not the network).
net_lan_rcvbuf_errors() {
    ip netns exec $NP-lan awk '$1 == "Udp:" && !h { for (i = 2; i <= NF; i++) k[i] = $i; h = 1; next }
        $1 == "Udp:" { for (i = 2; i <= NF; i++) if (k[i] == "RcvbufErrors") print $i }' /proc/net/snmp
}

# ping_all NS IP N: N pings (every 0.2 s) from NS to IP, every one answered.
ping_all() {
    local out
    out=$(ip netns exec "$1" ping -n -c "$3" -i 0.2 -W 2 "$2" 2>&1)
    echo "$out" | grep -q "^$3 packets transmitted, $3 received" ||
        fail "$1: ping $2: not $3 of $3 answered: $(echo "$out" | tail -3)"
}

# net_system NAME EXTRA_A EXTRA_B: the shared-network system the network
# tests run: TAP clients a ($NP-a) and b ($NP-b), the lwIP client c
# (10.77.0.30), on the wire $NP-wire.  EXTRA_* are YAML lines added to a's
# and b's entries (peers, rate), each starting with a newline.
NET_MAC_A=02:00:00:00:00:0a NET_MAC_B=02:00:00:00:00:0b NET_MAC_C=02:00:00:00:00:0c
net_system() {
    cat <<YAML
system: $1
networks:
  - name: lan0
    nic: {packet: {interface: $NP-wire}}
    buffers: 512
    clients:
      - name: a
        tap: {netns: $NP-a, ifname: eth0}
        mac: "$NET_MAC_A"$2
      - name: b
        tap: {netns: $NP-b, ifname: eth0}
        mac: "$NET_MAC_B"$3
      - name: c
        program: net-lwip-echo
        mac: "$NET_MAC_C"
        config: {ip: 10.77.0.30/24}
YAML
}

# net_unicast_b_only: the lan sends 20 pings and 50 UDP datagrams to b
# (10.77.0.11, MAC $NET_MAC_B); b's capture sees them all, a's sees nothing
# addressed to b.
net_unicast_b_only() {
    local cap_a cap_b out n_a n_b n_b_udp
    net_capture $NP-a "$T/a-to-b.pcap" ether dst $NET_MAC_B
    cap_a=$BG
    net_capture $NP-b "$T/b-to-b.pcap" ether dst $NET_MAC_B
    cap_b=$BG
    out=$(ip netns exec $NP-lan ping -c 20 -i 0.05 -W 2 10.77.0.11 2>&1) ||
        fail "$NP-lan: ping 10.77.0.11 (b) failed: $out"
    echo "$out" | grep -q "20 packets transmitted, 20 received" || fail "ping b from the lan: $out"
    ip netns exec $NP-lan python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(50):
    s.sendto(b"for b only %d" % i, ("10.77.0.11", 9999))
' || fail "$NP-lan: cannot send UDP to b"
    sleep 0.5
    net_capture_stop $cap_a "$T/a-to-b.pcap"
    net_capture_stop $cap_b "$T/b-to-b.pcap"
    n_b=$(net_pcap_count "$T/b-to-b.pcap")
    n_b_udp=$(net_pcap_count "$T/b-to-b.pcap" udp port 9999)
    n_a=$(net_pcap_count "$T/a-to-b.pcap")
    [ "$n_b" -ge 70 ] && [ "$n_b_udp" = 50 ] ||
        fail "b's own capture saw $n_b frames for its MAC ($n_b_udp UDP), expected >= 70 (50 UDP); $(ctl net)"
    [ "$n_a" = 0 ] || fail "a's capture saw $n_a frames sent to b's MAC: $(tcpdump -r "$T/a-to-b.pcap" -n 2>/dev/null | head -5)"
    ok "lan -> b: 20/20 pings answered, b captured $n_b frames for its MAC ($n_b_udp UDP), a captured $n_a"
}
