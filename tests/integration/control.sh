#!/bin/bash
# The supervisor against awkward administrators and components: a control
# client that trickles or sends nothing gets an error after one deadline
# instead of holding the supervisor; --ctl never deletes a file that is not
# a socket; component output cannot carry terminal control characters.
. "$(dirname "$0")/lib.sh"

cat > "$T/sys.yaml" <<YAML
system: control
components:$PINGPONG_COMPONENTS
  - {name: loud, program: probe, config: {action: escape}}
regions:$PINGPONG_REST
channels:$PINGPONG_CHANNELS
YAML

# --ctl naming a regular file: refused, and the file is untouched.
echo "precious" > "$T/notasocket"
"$DEVMUX" run "$T/sys.yaml" --ctl "$T/notasocket" > "$T/out" 2> "$T/err"
rc=$?
[ $rc != 0 ] && grep -q "refusing to replace $T/notasocket: it is not a socket" "$T/err" ||
    fail "--ctl on a regular file: rc $rc: $(cat "$T/err")"
[ "$(cat "$T/notasocket")" = precious ] || fail "the file behind --ctl was changed"
grep -q "started '" "$T/err" && fail "components started although the control socket failed"
ok "--ctl refuses to replace a file that is not a socket, and starts nothing"

start "$T/sys.yaml"
wait_log "\[ping\] .*round trips"

# Control characters from a component are neutralised.
wait_log "\[loud\] "
grep -q $'\x1b' "$T/log" && fail "an escape byte reached the supervisor's output"
grep -q $'\r' "$T/log" && fail "a carriage return reached the supervisor's output"
grep -qF '[loud] ?[31mred?[0m?devmux: forged?' "$T/log" || fail "loud's line: $(grep '\[loud\]' "$T/log")"
ok "component output has its control characters replaced"

# Clients that trickle a request or say nothing get an error, not a hold.
reply() {
    python3 - "$T/ctl.sock" "$1" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
mode = sys.argv[2]
if mode == "trickle":
    try:
        for ch in "status\n":
            s.send(ch.encode())
            time.sleep(0.3)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the supervisor answered and closed at its deadline
data = b""
s.settimeout(10)
while True:
    chunk = s.recv(4096)
    if not chunk:
        break
    data += chunk
print(data.decode().strip().splitlines()[-1])
PY
}
for mode in trickle silent; do
    r=$(reply $mode) || fail "$mode client: no reply"
    [ "$r" = "ERROR: no complete request line within 500 ms; expected one line such as 'status'" ] ||
        fail "$mode client got: $r"
    ok "a $mode control client gets an error at the request deadline"
done
ctl status > /dev/null || fail "the supervisor stopped answering after slow clients"
assert_pingpong_alive
stop || fail "exit $?"

# A component that floods its output and its control socket without pause
# only loses lines; the supervisor keeps serving everyone else.
cat > "$T/flood.yaml" <<YAML
system: flood
components:$PINGPONG_COMPONENTS
  - {name: flood, program: probe, config: {action: flood}}
regions:$PINGPONG_REST
channels:$PINGPONG_CHANNELS
YAML
start "$T/flood.yaml"
wait_log "\[flood\] \([0-9]+ lines suppressed: over 200 lines/s\)" 15
for i in 1 2 3; do
    ctl status > /dev/null || fail "ctl status failed while a component floods"
done
assert_pingpong_alive
ok "a flooding component is rate-limited and the supervisor keeps serving"
stop || fail "exit $?"
echo "$CHECKS checks passed"
