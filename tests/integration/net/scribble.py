#!/usr/bin/env python3
"""Plays a broken device: rewrites, in a running QEMU machine's RAM, the
buffer addresses of every descriptor the driver posted in one virtqueue, so
the device's next use of them fails.  QEMU's virtio-net then reports
DEVICE_NEEDS_RESET, as a real device with a fault would.

usage: scribble.py QEMU_PID RING_DEV_ADDR [QUEUE_SIZE]

RING_DEV_ADDR is where the virtqueue's descriptor table starts (guest
physical = offset in the RAM memfd).  Prints how many descriptors it
changed; exits 1 if it found the RAM but no posted descriptor."""
import mmap
import os
import struct
import sys

pid, ring = int(sys.argv[1]), int(sys.argv[2], 0)
qsize = int(sys.argv[3]) if len(sys.argv) > 3 else 256
ram = None
for fd in os.listdir(f"/proc/{pid}/fd"):
    try:
        target = os.readlink(f"/proc/{pid}/fd/{fd}")
    except OSError:
        continue
    if target.startswith("/memfd:devmux:") and target.endswith(".ram (deleted)"):
        ram = f"/proc/{pid}/fd/{fd}"
        break
if ram is None:
    sys.exit(f"no devmux machine RAM among the descriptors of pid {pid}")
with open(ram, "r+b") as f:
    m = mmap.mmap(f.fileno(), 0)
    changed = 0
    for i in range(qsize):
        off = ring + 16 * i
        addr, length, flags, nxt = struct.unpack_from("<QIHH", m, off)
        if addr and length:
            # Far beyond any RAM or device: the device cannot map it.
            struct.pack_into("<Q", m, off, 0x7FFF00000000 + 0x1000 * i)
            changed += 1
    m.close()
print(changed)
sys.exit(0 if changed else 1)
