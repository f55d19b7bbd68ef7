#!/bin/bash
# Machines: a guest-less QEMU q35 with real PCI devices, driven by hw-probe
# components through the hardware layer.  Checks enumeration and the BAR
# layout, that the supervisor confines each driver to its own device's BARs
# (and keeps running it after a refusal), hot-plug through QMP, both machine
# fault policies (with a TAP wire in a namespace of this run) and that
# nothing outlives the system, and the checks of bad descriptions.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || fail "hw tests need root (component uids, TAP in a namespace)"
command -v qemu-system-x86_64 >/dev/null 2>&1 ||
    fail "hw tests need qemu-system-x86_64 (apt-get install qemu-system-x86)"
command -v ip >/dev/null 2>&1 || fail "hw tests need 'ip' (iproute2)"

# A namespace of this run only; the TAP inside it has a fixed name.
NS=dmhw$(printf %04x%04x $RANDOM $RANDOM)
TAPN=hwwire0
hw_cleanup() {
    cleanup
    ip netns del "$NS" 2>/dev/null
}
trap hw_cleanup EXIT
trap 'exit 1' TERM INT HUP # (meson's timeout sends TERM): still clean up
ip netns add "$NS" || fail "cannot create namespace $NS"

# hw_system NAME FAULT WIRE: the machine of every running check: nic0
# (virtio-net, modern only) at 01.0, e1k at 02.0 (no driver), xhci0 at 03.0
# with a keyboard; probe drives nic0, uprobe drives xhci0.
hw_system() {
    cat <<YAML
system: $1
machines:
  - name: board
    memory: 64M
    fault: $2
    devices:
      - {name: nic0, model: virtio-net-pci, pci: "01.0", properties: {disable-legacy: "on"}, wire: $3}
      - {name: e1k, model: e1000e, pci: "02.0"}
      - {name: xhci0, model: qemu-xhci, pci: "03.0"}
      - {name: kbd, model: usb-kbd, bus: xhci0.0, properties: {port: "1"}}
components:
  - name: probe
    program: hw-probe
    config: {expect_vendor: "0x1af4", expect_device: "0x1041"}
    devices: [{name: dev, pci: {machine: board, device: nic0}, irq: 5}]
    fault: halt
  - name: uprobe
    program: hw-probe
    config: {expect_vendor: "0x1b36", expect_device: "0x000d"}
    devices: [{name: dev, pci: {machine: board, device: xhci0}, irq: 5}]
    fault: halt
YAML
}

# mach: `ctl machine board`, or fail.
mach() {
    local out
    out=$(ctl machine board 2>&1) || fail "ctl machine board failed: $out"
    echo "$out"
}
# mhead KEY: a value from the machine's first line (state, pid, restarts).
mhead() {
    mach | awk -v k="$1" 'NR == 1 { for (i = 1; i < NF; i++) if ($i == k) print $(i + 1) }'
}
# mdev DEV KEY: a value from a device's line of `ctl machine`.
mdev() {
    mach | awk -v d="$1" -v k="$2" '$1 == "device" && $2 == d {
        for (i = 3; i < NF; i++) if ($i == k) print $(i + 1) }'
}
# mbars DEV: "INDEX KIND ADDR SIZE" per BAR of a device.
mbars() {
    mach | awk -v d="$1" '$1 == "device" { on = ($2 == d); next }
        on && $1 == "bar" { print $2, $3, $4, $6 }'
}

# probe_checks C: every check hw-probe makes passed for component C, none
# failed, and it reached "done" (N times: its Nth run).
PROBE_CHECKS="ids cfg-id cfg-bars api-missing-bar api-past-bar api-unaligned api-bar-write
    raw-window raw-cfg-beyond cmd-filter after-refusals after-malformed"
probe_checks() {
    local c=$1 n=${2:-1} k got
    [ "$(count_log "^\[$c\] hw-probe: FAIL")" = 0 ] ||
        fail "$c: $(grep "^\[$c\] hw-probe: FAIL" "$T/log" | head -3)"
    for k in $PROBE_CHECKS; do
        got=$(count_log "^\[$c\] hw-probe: PASS $k ")
        [ "$got" = "$n" ] || fail "$c: check $k passed $got times, expected $n"
    done
    [ "$(count_log "^\[$c\] hw-probe: done ")" = "$n" ] || fail "$c: not done $n times"
}
pass_count() { count_log "^\[$1\] hw-probe: PASS "; }

# assert_clean WHAT PID...: nothing of the run is left, nor its TAP.
assert_clean() {
    run_gone "$@"
    local what=$1 all
    ip netns exec "$NS" ip link show lo > /dev/null 2>&1 || fail "$what: namespace $NS is gone"
    ip netns exec "$NS" ip link show "$TAPN" > /dev/null 2>&1 &&
        fail "$what: TAP $TAPN is still in $NS"
    # With no other devmux system on the machine, the plain count must be 0, too.
    all=$(ls -l /proc/[0-9]*/fd 2> /dev/null | grep -c 'memfd:devmux')
    [ "$all" = 0 ] || echo "   (note: $all devmux memfds held by other systems on this machine)"
}

# tap_index: the ifindex of the wire TAP in $NS (empty if absent).
tap_index() {
    ip netns exec "$NS" cat "/sys/class/net/$TAPN/ifindex" 2> /dev/null
}

# holds_tun PID: the process has /dev/net/tun open (the TAP's queue).
holds_tun() {
    ls -l "/proc/$1/fd" 2> /dev/null | grep -q ' -> /dev/net/tun$'
}

# bars_sane: in `ctl machine`, every BAR is a power of two in size,
# aligned to it, in the window devmux assigns (mem from 0xc0000000, io from
# 0xc000), and no two BARs of a kind overlap.  Prints an error or nothing.
bars_sane() {
    mach | awk '
        function hex(s,   i, c, v) {
            s = tolower(s); sub(/^0x/, "", s); v = 0
            for (i = 1; i <= length(s); i++) {
                c = index("0123456789abcdef", substr(s, i, 1))
                if (!c) return -1
                v = v * 16 + c - 1
            }
            return v
        }
        $1 == "device" { dev = $2; next }
        $1 == "bar" {
            kind = ($3 == "io") ? "io" : "mem"; a = hex($4); sz = hex($6)
            if ($5 != "size" || a < 0 || sz <= 0) { print "unparsable: " $0; bad = 1; exit }
            for (p = 1; p < sz; p *= 2) ;
            if (p != sz) { print dev " BAR" $2 " size " $6 " is not a power of two"; bad = 1; exit }
            if (a % sz) { print dev " BAR" $2 " at " $4 " is not aligned to " $6; bad = 1; exit }
            if (kind == "mem" && a < 3221225472) { print dev " BAR" $2 " below 0xc0000000"; bad = 1; exit }
            if (kind == "io" && (a < 49152 || a + sz > 65536)) { print dev " BAR" $2 " outside 0xc000-0xffff"; bad = 1; exit }
            for (j = 0; j < n; j++)
                if (k[j] == kind && a < e[j] && s[j] < a + sz) {
                    print dev " BAR" $2 " " $4 "+" $6 " overlaps " who[j]; exit
                }
            k[n] = kind; s[n] = a; e[n] = a + sz; who[n] = dev " BAR" $2 " " $4 "+" $6; n++
        }
        END { if (!bad && n < 6) print "only " n " BARs listed" }'
}

# ---- 1. boot and enumeration ---------------------------------------------
hw_system hw shutdown '{user: {}}' > "$T/hw.yaml"
start_ready "$T/hw.yaml"
wait_log "^\[probe\] hw-probe: done " 20
wait_log "^\[uprobe\] hw-probe: done " 20
M=$(mach)
echo "$M" | sed 's/^/   | /'
[ "$(mhead state)" = up ] && [ "$(mhead restarts)" = 0 ] && [ "$(mhead backend)" = qemu ] ||
    fail "machine line: $(echo "$M" | head -1)"
QPID=$(mhead pid)
alive "$QPID" && grep -q qemu-system-x86_64 "/proc/$QPID/cmdline" ||
    fail "pid $QPID of ctl machine is not a running QEMU"
ok "machine board is up, QEMU pid $QPID"
# device: model pci id class gsi driver
while read -r dev model pci id class gsi drv; do
    got="$(mdev "$dev" model) $(mdev "$dev" pci) $(mdev "$dev" id) $(mdev "$dev" class) $(mdev "$dev" gsi) $(mdev "$dev" driver)"
    [ "$got" = "$model $pci $id $class $gsi $drv" ] ||
        fail "device $dev: '$got', expected '$model $pci $id $class $gsi $drv'"
done <<'EOF'
nic0 virtio-net-pci 00:01.0 1af4:1041 020000 21 probe
e1k e1000e 00:02.0 8086:10d3 020000 22 -
xhci0 qemu-xhci 00:03.0 1b36:000d 0c0330 23 uprobe
EOF
echo "$M" | grep -qx "  device kbd model usb-kbd bus xhci0.0" || fail "no usb-kbd on xhci0.0 in ctl machine"
[ "$(echo "$M" | grep -c '^  device ')" = 4 ] || fail "ctl machine lists $(echo "$M" | grep -c '^  device ') devices, expected 4"
ok "ctl machine lists nic0 1af4:1041, e1k 8086:10d3 (020000), xhci0 1b36:000d (0c0330) and the keyboard"
# virtio modern: common/notify config in a 64-bit BAR 4; e1000e: 4 BARs with I/O.
mbars nic0 | grep -q '^4 mem64 ' || fail "nic0 has no 64-bit BAR 4: $(mbars nic0 | tr '\n' ';')"
[ "$(mbars e1k | wc -l)" = 4 ] && mbars e1k | grep -q '^2 io ' || fail "e1k BARs: $(mbars e1k | tr '\n' ';')"
[ "$(mbars xhci0 | wc -l)" -ge 1 ] || fail "xhci0 has no BAR"
err=$(bars_sane)
[ -z "$err" ] || fail "BAR layout: $err"
ok "every BAR is naturally aligned, in devmux's window, and no two overlap"
# The layer tells each driver the BARs ctl machine shows.
for pair in probe:nic0 uprobe:xhci0; do
    c=${pair%%:*} d=${pair#*:}
    a=$(grep "^\[$c\] hw-probe: bar " "$T/log" | awk '{ print $4, $8, $10 }' | sort)
    b=$(mbars "$d" | awk '{ print $1, $3, $4 }' | sort)
    [ -n "$a" ] && [ "$a" = "$b" ] || fail "$c sees BARs '$a', ctl machine says '$b' for $d"
done
ok "each driver sees its device's BARs as ctl machine lists them"
probe_checks probe
probe_checks uprobe
ok "both probes: IDs, config space, BARs, API and raw refusals all PASS, no FAIL, done"

# ---- 2. isolation --------------------------------------------------------
grep -Eq "machine 'board': refused MMIO read of 4 bytes at 0x[0-9a-f]+ from component 'probe': outside device 'nic0'; it belongs to device '(e1k|xhci0)'" "$T/log" ||
    fail "no refusal of probe's reads of another device's BAR"
grep -Eq "machine 'board': refused MMIO read of 4 bytes at 0x[0-9a-f]+ from component 'uprobe': outside device 'xhci0'; it belongs to device '(nic0|e1k)'" "$T/log" ||
    fail "no refusal of uprobe's reads of another device's BAR"
# Every refusal names the attacker and its own device, never a bystander.
bad=$(grep "machine 'board': refused " "$T/log" |
    grep -Ev "from component 'probe': outside device 'nic0'|from component 'uprobe': outside device 'xhci0'" | head -3)
[ -z "$bad" ] || fail "refusals blame the wrong component or device: $bad"
ok "refusals name the attacking component, its device and the device it reached for"
# Each device's refused count is exactly what its own driver attempted:
# the pages of the window it did not own, config beyond 256, the BAR
# register write, the one-byte command register write, the malformed
# message, and the posted write at 0xc0064000 unless that is its own BAR.
for pair in probe:nic0 uprobe:xhci0; do
    c=${pair%%:*} d=${pair#*:}
    win=$(sed -n "s/^\[$c\] hw-probe: PASS raw-window refused \([0-9]*\) .*/\1/p" "$T/log" | head -1)
    own=$(mbars "$d" | awk '
        function hex(s, i, v) { s = tolower(s); sub(/^0x/, "", s); v = 0
            for (i = 1; i <= length(s); i++) v = v * 16 + index("0123456789abcdef", substr(s, i, 1)) - 1
            return v }
        $2 != "io" && hex($3) <= 3221635072 && 3221635072 < hex($3) + hex($4) { o = 1 } END { print o + 0 }')
    want=$((win + 4 + (own ? 0 : 1)))
    got=$(mdev "$d" refused)
    [ -n "$win" ] && [ "$got" = "$want" ] ||
        fail "$d refused $got, expected $want ($c: $win window pages refused, owns 0xc0064000: $own)"
    [ "$(state "$c")" = running ] || fail "$c is '$(state "$c")' after its refusals, not running"
done
[ "$(mdev e1k reads) $(mdev e1k writes) $(mdev e1k refused)" = "0 0 0" ] ||
    fail "e1k (no driver) has counters: $(mach | grep 'device e1k')"
ok "nic0 refused $(mdev nic0 refused), xhci0 $(mdev xhci0 refused): each its own driver's attempts; both drivers still running"

# ---- 3. hot-plug ---------------------------------------------------------
hp() { ctl machine board "$@" 2>&1; }
out=$(hp add usb-kbd kbd2 bus=xhci0.0 port=2) || fail "add usb-kbd kbd2: $out"
echo "$out" | grep -q "added usb-kbd kbd2" || fail "add usb-kbd kbd2 said: $out"
wait_log "machine 'board': hot-plugged usb-kbd as 'kbd2'"
out=$(hp add usb-kbd kbd2 bus=xhci0.0 port=3) && fail "a second kbd2 was added: $out"
echo "$out" | grep -q "ERROR: QEMU refused device_add usb-kbd: .*kbd2" || fail "second kbd2: $out"
ok "hot-plug of usb-kbd kbd2 on xhci0.0 port 2 succeeded (a second kbd2 is refused by QEMU: $(echo "$out" | sed 's/.*usb-kbd: //'))"
out=$(hp del kbd2) || fail "del kbd2: $out"
echo "$out" | grep -q "deleted kbd2" || fail "del kbd2 said: $out"
out=$(hp del kbd2) && fail "kbd2 deleted twice: $out"
echo "$out" | grep -q "ERROR: device_del kbd2 failed: Device 'kbd2' not found" || fail "second del kbd2: $out"
ok "del kbd2 succeeded; deleting it again is an error from QEMU"
out=$(hp add no-such-model x9) && fail "an unknown model was added: $out"
echo "$out" | grep -q "ERROR: QEMU refused device_add no-such-model: 'no-such-model' is not a valid device model name" ||
    fail "unknown model: $out"
ok "an unknown model is refused with QEMU's message"
out=$(hp del nic0) && fail "nic0 was deleted: $out"
echo "$out" | grep -q "ERROR: device 'nic0' is granted to component 'probe'" || fail "del nic0: $out"
[ "$(mdev nic0 id)" = 1af4:1041 ] || fail "nic0 is gone from ctl machine"
ok "deleting nic0, granted to probe by the description, is refused"
[ "$(mhead state)" = up ] && [ "$(mhead pid)" = "$QPID" ] && [ "$(mhead restarts)" = 0 ] ||
    fail "after hot-plug: $(mach | head -1)"
# A restarted driver works again; its attack does not touch xhci0's counters.
x_before="$(mdev xhci0 reads) $(mdev xhci0 writes) $(mdev xhci0 refused)"
n_refused=$(mdev nic0 refused)
out=$(ctl restart probe 2>&1) || fail "ctl restart probe: $out"
wait_count "^\[probe\] hw-probe: done " 2 20
probe_checks probe 2
[ "$(mdev nic0 refused)" = $((2 * n_refused)) ] || fail "nic0 refused $(mdev nic0 refused) after the second run, expected $((2 * n_refused))"
x_after="$(mdev xhci0 reads) $(mdev xhci0 writes) $(mdev xhci0 refused)"
[ "$x_before" = "$x_after" ] || fail "xhci0 counters moved with probe's attack: $x_before -> $x_after"
[ "$(state probe)" = running ] && [ "$(state uprobe)" = running ] || fail "probes: $(state probe)/$(state uprobe)"
ok "machine still up; restarted probe passes again; xhci0 counters unchanged ($x_after)"
pids="$SUP_PID $QPID $(field probe 3) $(field uprobe 3)"
stop || fail "supervisor exited with $?"
assert_clean "stop" $pids
ok "stop: exit 0, nothing left behind"

# What the supervisor says first when QEMU dies: the exit it reaped, or
# the end of its qtest or QMP connection, whichever it notices first.
FAILED_RE="(QEMU was killed by signal 9 \\(KILL\\)|the (qtest|QMP) connection (closed|broke) \\(QEMU is gone\\))"

# ---- 4. machine fault, policy shutdown, TAP wire --------------------------
hw_system hw-down shutdown "{tap: {netns: $NS, ifname: $TAPN}}" > "$T/down.yaml"
start_ready "$T/down.yaml"
wait_log "^\[probe\] hw-probe: done " 20
[ -n "$(tap_index)" ] || fail "no TAP $TAPN in $NS while the system runs"
QPID=$(mhead pid)
holds_tun "$QPID" || fail "QEMU $QPID does not hold the TAP (/dev/net/tun)"
ok "TAP $TAPN exists in $NS and QEMU holds it"
# (The leftover check below must be able to see our memfds at all.)
held=$(memfd_ours)
[[ " $(echo $held) " == *" $SUP_PID "* ]] && [[ " $(echo $held) " == *" $QPID "* ]] ||
    fail "devmux memfds not found in the running supervisor $SUP_PID and QEMU $QPID (found: $held)"
pids="$SUP_PID $QPID $(field probe 3) $(field uprobe 3)"
kill -KILL "$QPID"
t0=$SECONDS
for i in $(seq 100); do kill -0 "$SUP_PID" 2> /dev/null || break; sleep 0.1; done
kill -0 "$SUP_PID" 2> /dev/null && fail "supervisor still runs 10 s after QEMU was killed"
wait "$SUP_PID"
rc=$?
SUP_PID=
[ $rc = 1 ] || fail "supervisor exited with $rc after the machine failed, expected 1"
grep -Eq "machine 'board' failed: $FAILED_RE" "$T/log" ||
    fail "no 'machine failed' line"
grep -q "machine 'board': fault policy: shutdown" "$T/log" || fail "the policy is not logged"
ok "kill -9 of QEMU: supervisor exits 1 within $((SECONDS - t0)) s, logs the failure and policy shutdown"
assert_clean "machine fault" $pids
ok "nothing left: QEMU, components, control socket, TAP, devmux memfds all gone"

# ---- 5. machine fault, policy restart ------------------------------------
hw_system hw-restart restart "{tap: {netns: $NS, ifname: $TAPN}}" > "$T/restart.yaml"
start_ready "$T/restart.yaml"
wait_log "^\[probe\] hw-probe: done " 20
wait_log "^\[uprobe\] hw-probe: done " 20
QPID=$(mhead pid)
tap0=$(tap_index)
[ -n "$tap0" ] || fail "no TAP $TAPN in $NS"
bars0=$(mach | grep '^    bar')
pass_p=$(pass_count probe) pass_u=$(pass_count uprobe)
r_p=$(field probe 4) r_u=$(field uprobe 4)
cpids="$(field probe 3) $(field uprobe 3)"
kill -KILL "$QPID"
wait_log "machine 'board' failed: $FAILED_RE"
wait_log "machine 'board': fault policy: restart the machine and its drivers"
deadline=$((SECONDS + 15))
until [ "$(mhead state)" = up ] && [ "$(mhead restarts)" = 1 ] && [ "$(mhead pid)" != "$QPID" ]; do
    [ $SECONDS -le $deadline ] || fail "machine after restart: $(mach | head -1)"
    sleep 0.1
done
Q2=$(mhead pid)
alive "$Q2" && ! alive "$QPID" || fail "QEMU pids: old $QPID alive? new $Q2 alive?"
ok "the machine restarted: QEMU $QPID -> $Q2, state up, restarts 1"
wait_count "^\[probe\] hw-probe: done " 2 20
wait_count "^\[uprobe\] hw-probe: done " 2 20
probe_checks probe 2
probe_checks uprobe 2
[ "$(pass_count probe)" = $((2 * pass_p)) ] && [ "$(pass_count uprobe)" = $((2 * pass_u)) ] ||
    fail "PASS lines: probe $pass_p -> $(pass_count probe), uprobe $pass_u -> $(pass_count uprobe)"
[ "$(field probe 4)" -gt "$r_p" ] && [ "$(field uprobe 4)" -gt "$r_u" ] ||
    fail "restart counts: probe $r_p -> $(field probe 4), uprobe $r_u -> $(field uprobe 4)"
[ "$(state probe)" = running ] && [ "$(state uprobe)" = running ] || fail "probes: $(state probe)/$(state uprobe)"
ok "both drivers restarted (restarts $(field probe 4)/$(field uprobe 4)) and pass again ($pass_p -> $(pass_count probe) PASS lines)"
[ "$(mach | grep '^    bar')" = "$bars0" ] || fail "BARs changed across the restart"
[ "$(tap_index)" = "$tap0" ] || fail "TAP ifindex $tap0 -> '$(tap_index)' across the restart"
holds_tun "$Q2" || fail "the new QEMU does not hold the TAP"
ok "same BARs, the same TAP (ifindex $tap0) now held by the new QEMU"
pids="$SUP_PID $QPID $Q2 $cpids $(field probe 3) $(field uprobe 3)"
stop || fail "supervisor exited with $? after the restart"
assert_clean "stop after restart" $pids
ok "stop: exit 0, nothing left behind"

# ---- 6. bad descriptions -------------------------------------------------
# bad NAME REGEX: the description on stdin (the offending line marked
# "#<") is refused: exit 2 at once, an error at FILE:LINE matching REGEX,
# and no QEMU started.
bad() {
    local f=$T/bad-$1.yaml line rc t0
    cat > "$f"
    line=$(grep -n '#<' "$f" | head -1 | cut -d: -f1)
    [ -n "$line" ] || fail "bad $1: no marked line"
    t0=$(date +%s%N)
    "$DEVMUX" run "$f" --ctl "$T/bad.sock" > "$T/bad.out" 2>&1
    rc=$?
    t0=$((($(date +%s%N) - t0) / 1000000))
    [ $rc = 2 ] || fail "bad $1: exit $rc, expected 2: $(head -5 "$T/bad.out")"
    [ $t0 -lt 2000 ] || fail "bad $1: took $t0 ms"
    grep -Eq -- "^$f:$line:[0-9]+: error: .*$2" "$T/bad.out" ||
        fail "bad $1: no error at line $line matching /$2/: $(cat "$T/bad.out")"
    grep ': error: ' "$T/bad.out" | grep -v "^$f:$line:" | grep -q . &&
        fail "bad $1: errors other than at line $line: $(cat "$T/bad.out")"
    grep -q "QEMU" "$T/bad.out" && fail "bad $1: a QEMU was started"
    [ ! -e "$T/bad.sock" ] || fail "bad $1: a control socket was created"
    BAD=$((BAD + 1))
}
BAD=0
# The pieces of a small valid system (mhdr + grant0), each case changes one line.
mhdr='system: bad
machines:
  - name: board
    memory: 64M
    devices:
      - {name: nic0, model: virtio-net-pci, pci: "01.0"}'
probe1='components:
  - name: probe
    program: hw-probe'
grant0="$probe1
    devices: [{name: dev, pci: {machine: board, device: nic0}, irq: 5}]"
# (The unmarked base is valid.)
printf '%s\n%s\n' "$mhdr" "$grant0" > "$T/good.yaml"
out=$("$DEVMUX" check "$T/good.yaml" 2>&1) || fail "the base description is not valid: $out"

bad slot "device 'nic1' is at PCI slot 01, as is device 'nic0' \(line [0-9]+\); expected one device per slot" <<EOF
$mhdr
      - {name: nic1, model: e1000e, pci: "01.0"} #<
$grant0
EOF
bad lacks "names 'nic9', which machine 'board' does not have; expected one of its devices" <<EOF
$mhdr
$probe1
    devices: [{name: dev, pci: {machine: board, device: nic9}, irq: 5}] #<
EOF
bad nomachine "names machine 'other', which is not defined; expected one of the names under 'machines'" <<EOF
$mhdr
$probe1
    devices: [{name: dev, pci: {machine: other, device: nic0}, irq: 5}] #<
EOF
bad two-devices "component 'probe' is granted a second PCI device 'd2'; expected exactly one device per driver component" <<EOF
$mhdr
      - {name: e1k, model: e1000e, pci: "02.0"}
$probe1
    devices:
      - {name: d1, pci: {machine: board, device: nic0}, irq: 5}
      - {name: d2, pci: {machine: board, device: e1k}, irq: 6} #<
EOF
bad granted-twice "device 'nic0' of machine 'board' is already granted to component 'probe' \\(line [0-9]+\\); expected one driver per device" <<EOF
$mhdr
$probe1
    devices: [{name: dev, pci: {machine: board, device: nic0}, irq: 5}]
  - name: probe2
    program: hw-probe
    devices: [{name: dev, pci: {machine: board, device: nic0}, irq: 5}] #<
EOF
bad shared-irq "device 'nic5' \(slot 05\) shares interrupt line 21 with device 'nic0' \(slot 01\) of component 'probe'; expected drivers of different components on slots that differ modulo 4" <<EOF
$mhdr
      - {name: nic5, model: e1000e, pci: "05.0"}
$probe1
    devices: [{name: dev, pci: {machine: board, device: nic0}, irq: 5}]
  - name: probe2
    program: hw-probe
    devices: [{name: dev, pci: {machine: board, device: nic5}, irq: 5}] #<
EOF
bad bus-as-pci "device 'kbd' of machine 'board' is not a PCI function \(it sits on bus 'xhci0.0'\); expected a device with 'pci'" <<EOF
$mhdr
      - {name: xhci0, model: qemu-xhci, pci: "03.0"}
      - {name: kbd, model: usb-kbd, bus: xhci0.0}
$probe1
    devices: [{name: dev, pci: {machine: board, device: kbd}, irq: 5}] #<
EOF
for p in id addr; do
    bad "prop-$p" "property '$p' is set by devmux; expected other properties" <<EOF
$mhdr
      - {name: e1k, model: e1000e, pci: "02.0", properties: {$p: "x"}} #<
$grant0
EOF
done
bad comma "model 'virtio-net-pci,romfile=/etc/passwd' is not valid; expected 1 to 64 characters" <<EOF
$mhdr
      - {name: e1k, model: "virtio-net-pci,romfile=/etc/passwd", pci: "02.0"} #<
$grant0
EOF
for a in 00.0 1f.0 zz 02.1; do
    bad "pci-$a" "pci address '$a' is not usable; expected SLOT.0" <<EOF
$mhdr
      - {name: e1k, model: e1000e, pci: "$a"} #<
$grant0
EOF
done
bad memory "memory 15728640 is not usable; expected whole MiB from 16M to 2G" <<EOF
system: bad
machines:
  - name: board
    memory: 15M #<
    devices:
      - {name: nic0, model: virtio-net-pci, pci: "01.0"}
$grant0
EOF
bad vfio-host "device 'd0' of vfio machine 'board' has no 'host'; expected the host PCI address" <<EOF
system: bad
machines:
  - name: board
    backend: vfio
    devices:
      - {name: d0} #<
$probe1
    devices: [{name: dev, pci: {machine: board, device: d0}, irq: 5}]
EOF
bad no-place "device 'e1k' has neither 'pci' nor 'bus'; expected exactly one" <<EOF
$mhdr
      - {name: e1k, model: e1000e} #<
$grant0
EOF
ok "$BAD bad descriptions refused with exit 2 at once, each error at its file:line"

# ---- 7: machines that validate but that the machine itself refuses -------
# start_refused NAME REGEX: the description is valid, yet `devmux run` must
# stop with status 1 and a log line matching REGEX, leaving nothing behind.
start_refused() {
    "$DEVMUX" check "$T/$1.yaml" > /dev/null 2>&1 || fail "$1: expected a valid description"
    start "$T/$1.yaml"
    local t0=$SECONDS
    while kill -0 "$SUP_PID" 2> /dev/null; do
        [ $((SECONDS - t0)) -le 20 ] || fail "$1: devmux still runs after 20 s"
        sleep 0.1
    done
    wait "$SUP_PID"
    local rc=$?
    SUP_PID=
    [ "$rc" = 1 ] || fail "$1: devmux run exited $rc, expected 1"
    grep -Eq -- "$2" "$T/log" || fail "$1: no log line /$2/"
    run_gone "$1"
}
# A device claiming a 2^63-byte BAR: its size must not wrap the assignment
# (to address 0, over RAM) for the devices after it.
cat > "$T/hugebar.yaml" << YAML
$mhdr
      - {name: big, model: pci-testdev, pci: "02.0", properties: {membar: "0x8000000000000000"}}
$grant0
YAML
start_refused hugebar "machine 'board': device 'big': no memory space left for BAR[0-9] \(0x8000000000000000 bytes\)"
ok "a device claiming a 2^63-byte BAR: the machine refuses to start (no BAR wraps to address 0)"
# ich9-usb-uhci2 raises INTB: at slot 01 that is line 22, as INTA of slot 02.
# Validation assumes INTA and lets this pass; the machine must not.
cat > "$T/sharedline.yaml" << YAML
system: bad
machines:
  - name: board
    memory: 64M
    devices:
      - {name: uhci, model: ich9-usb-uhci2, pci: "01.0"}
      - {name: nic0, model: virtio-net-pci, pci: "02.0"}
components:
  - name: p1
    program: hw-probe
    devices: [{name: dev, pci: {machine: board, device: uhci}, irq: 5}]
  - name: p2
    program: hw-probe
    devices: [{name: dev, pci: {machine: board, device: nic0}, irq: 5}]
YAML
start_refused sharedline "devices '[a-z0-9]+' \(slot 0[12], pin INT[AB]\) and '[a-z0-9]+' \(slot 0[12], pin INT[AB]\) of different drivers share interrupt line 22"
ok "two drivers whose devices' real pins meet on line 22: the machine refuses to start"
echo "$CHECKS checks passed"
