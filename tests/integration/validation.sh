#!/bin/bash
# `devmux run` and `devmux check` reject every broken description in
# tests/sdf/cases before anything starts: exit status 2, each error as
# FILE:LINE:COL: error: ..., no process, no control socket.
. "$(dirname "$0")/lib.sh"
CASES=$(cd "$(dirname "$0")/../sdf/cases" && pwd)

for yaml in "$CASES"/*.yaml; do
    name=$(basename "$yaml" .yaml)
    for cmd in check run; do
        if [ $cmd = run ]; then
            "$DEVMUX" run "$yaml" --ctl "$T/ctl.sock" > "$T/out" 2> "$T/err"
        else
            "$DEVMUX" check "$yaml" > "$T/out" 2> "$T/err"
        fi
        rc=$?
        [ $rc = 2 ] || fail "$cmd $name: exit $rc, expected 2"
        # Every expected error, with the file name in front.
        while IFS= read -r line; do
            grep -qF -- "$yaml:$line" "$T/err" || fail "$cmd $name: missing '$yaml:$line' in: $(cat "$T/err")"
        done < "$CASES/$name.expected"
        [ ! -e "$T/ctl.sock" ] || fail "$cmd $name: a control socket was created"
        grep -q "started '" "$T/err" && fail "$cmd $name: a component was started"
    done
    ok "$name: rejected with exit 2 and located errors, nothing started"
done
"$DEVMUX" run /nonexistent.yaml > /dev/null 2> "$T/err"
rc=$?
[ $rc = 2 ] && grep -q "cannot open system description" "$T/err" || fail "missing file: rc $rc"
ok "a missing file is reported, exit 2"
# Size bounds: one component too many is refused; the longest allowed chain
# of protected calls is checked without exhausting the stack.
{
    echo "system: t"; echo "components:"
    for i in $(seq 0 1024); do echo "  - {name: c$i, program: probe}"; done
} > "$T/big.yaml"
"$DEVMUX" check "$T/big.yaml" > /dev/null 2> "$T/err"
rc=$?
[ $rc = 2 ] && grep -q "$T/big.yaml:1:1: error: the system has 1025 components, 0 regions and 0 channels; expected at most 1024, 4096 and 8192" "$T/err" ||
    fail "1025 components: rc $rc: $(head -3 "$T/err")"
{
    echo "system: t"; echo "components:"
    for i in $(seq 0 1023); do echo "  - {name: c$i, program: probe}"; done
    echo "channels:"
    for i in $(seq 0 1022); do echo "  - ends: [{component: c$i, id: 0, pp: true}, {component: c$((i + 1)), id: 1}]"; done
} > "$T/chain.yaml"
"$DEVMUX" check "$T/chain.yaml" > "$T/out" 2> "$T/err" ||
    fail "a 1024-long protected-call chain: rc $?: $(head -3 "$T/err")"
grep -q "is valid: 1024 components, 0 regions, 1023 channels" "$T/out" || fail "chain: $(cat "$T/out")"
ok "1025 components are refused; a 1024-long protected-call chain validates"

# A file over 1 MiB is refused before parsing.
{ echo "system: t"; head -c 1100000 /dev/zero | tr '\0' '#'; echo; } > "$T/huge.yaml"
"$DEVMUX" check "$T/huge.yaml" > /dev/null 2> "$T/err"
rc=$?
[ $rc = 2 ] && grep -q "$T/huge.yaml:1:1: error: the file is larger than 1048576 bytes" "$T/err" ||
    fail "a 1.1 MB file: rc $rc: $(head -2 "$T/err")"
ok "a description over 1 MiB is refused"

# A uid base that could make a component root, or is not a number, is refused.
EXAMPLE=$(cd "$(dirname "$0")/../.." && pwd)/examples/ping-pong.yaml
for bad in abc 0 5 -1 99999999999; do
    DEVMUX_UID_BASE=$bad "$DEVMUX" run "$EXAMPLE" --ctl "$T/ctl.sock" > "$T/out" 2> "$T/err"
    rc=$?
    [ $rc != 0 ] && grep -q "DEVMUX_UID_BASE='$bad' is not usable" "$T/err" ||
        fail "DEVMUX_UID_BASE=$bad: rc $rc: $(cat "$T/err")"
    grep -q "started '" "$T/err" && fail "DEVMUX_UID_BASE=$bad: a component was started"
done
ok "an unusable DEVMUX_UID_BASE is refused before anything starts"
echo "$CHECKS checks passed"
