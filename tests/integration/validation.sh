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
echo "$CHECKS checks passed"
