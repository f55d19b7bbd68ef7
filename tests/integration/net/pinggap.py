#!/usr/bin/env python3
"""Replies and the largest gap between consecutive replies in `ping -D`
output.

    pinggap.py FILE EPOCH

Prints "before N after M max_gap_s G": replies stamped before and after
EPOCH (for example the moment something was killed), and the largest time
between consecutive replies over the whole run, including from the last
reply to the end of the file's last line if it is a later stamp."""
import re
import sys

text = open(sys.argv[1]).read()
mark = float(sys.argv[2])
stamps = [float(m) for m in re.findall(r"^\[(\d+\.\d+)\] \d+ bytes from ", text, re.M)]
before = sum(1 for t in stamps if t < mark)
after = len(stamps) - before
gap = max((b - a for a, b in zip(stamps, stamps[1:])), default=float("inf"))
if stamps and stamps[-1] < mark:
    gap = float("inf")  # nothing came back after EPOCH
print(f"before {before} after {after} max_gap_s {gap:.3f}")
