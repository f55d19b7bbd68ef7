#!/usr/bin/env bash
# Model-check spin/queue.pml: the real protocol must verify with no errors,
# and each deliberately broken variant must be caught.  Builds in a
# temporary directory; works from any cwd.  Exit status 0 only if every
# check came out as expected.
set -u

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
model="$here/queue.pml"

for tool in spin gcc; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "FAIL: $tool not found" >&2
        exit 1
    fi
done

work="$(mktemp -d "${TMPDIR:-/tmp}/devmux-spin.XXXXXX")" || exit 1
trap 'rm -rf "$work"' EXIT

failures=0
n=0

# check NAME EXPECT(pass|fail) MODE(safety|liveness) [spin -D options...]
check()
{
    local name="$1" expect="$2" mode="$3"
    shift 3
    n=$((n + 1))
    local dir="$work/$n"
    mkdir -p "$dir"
    local cflags=(-O2 -w) panargs=(-m100000)
    if [ "$mode" = safety ]; then
        cflags+=(-DNOCLAIM) # invalid end states + assertions
    else
        panargs+=(-a -f) # the ltl claim, under weak fairness
    fi
    if ! (cd "$dir" && spin "$@" -a "$model" >spin.log 2>&1 &&
        gcc "${cflags[@]}" -o pan pan.c >gcc.log 2>&1); then
        echo "FAIL: $name (could not build the verifier, see below)"
        cat "$dir"/spin.log "$dir"/gcc.log 2>/dev/null | sed 's/^/    /'
        failures=$((failures + 1))
        return
    fi
    (cd "$dir" && ./pan "${panargs[@]}" >pan.log 2>&1)
    local log="$dir/pan.log"
    local errors states
    errors="$(sed -n 's/.*errors: \([0-9][0-9]*\).*/\1/p' "$log" | tail -n 1)"
    states="$(sed -n 's/^ *\([0-9][0-9.e+]*\) states, stored.*/\1/p' "$log" | tail -n 1)"
    local what
    what="$(grep -m 1 -E 'assertion violated|invalid end state|acceptance cycle' "$log" |
        sed 's/^pan:[0-9]*: *//; s/ (at depth.*//')"
    if [ -z "$errors" ]; then
        echo "FAIL: $name (no result from pan)"
        sed 's/^/    /' "$log"
        failures=$((failures + 1))
    elif [ "$expect" = pass ]; then
        if [ "$errors" -eq 0 ] && ! grep -q 'max search depth too small' "$log"; then
            echo "PASS: $name: 0 errors, $states states"
        else
            echo "FAIL: $name: $errors error(s): ${what:-search incomplete}"
            failures=$((failures + 1))
        fi
    else
        if [ "$errors" -gt 0 ]; then
            echo "PASS: $name: error found as expected ($what)"
        else
            echo "FAIL: $name: broken variant verified clean, the model cannot catch it"
            failures=$((failures + 1))
        fi
    fi
}

check "protocol, capacity 2, 6 items (deadlock + assertions)" pass safety
check "protocol, capacity 1, 4 items (deadlock + assertions)" pass safety -DCAP=1 -DNITEMS=4
check "protocol, capacity 4, 10 items (deadlock + assertions)" pass safety -DCAP=4 -DNITEMS=10
check "protocol, capacity 2, 6 items (ltl all_delivered)" pass liveness
check "broken: consumer sleeps without re-check" fail safety -DBROKEN=1
check "broken: producer sleeps without re-check" fail safety -DBROKEN=2
check "broken: producer reads flag before publishing" fail safety -DBROKEN=3

if [ "$failures" -ne 0 ]; then
    echo "spin/check.sh: $failures of $n checks FAILED"
    exit 1
fi
echo "spin/check.sh: all $n checks passed"
