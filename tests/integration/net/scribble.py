#!/usr/bin/env python3
"""Plays a broken device: rewrites, in a device-visible region of a running
QEMU machine, the buffer addresses of every descriptor the driver posted in
the virtqueue at the region's start, so the device's next use of them
fails.  QEMU's virtio-net then reports DEVICE_NEEDS_RESET, as a real device
with a fault would.

usage: scribble.py QEMU_PID REGION [QUEUE_SIZE]

REGION is the region's name (its memfd, which QEMU holds as a memory
module, is "devmux:REGION").  Prints how many descriptors it changed;
exits 1 if it found the region but no posted descriptor."""
import mmap
import os
import struct
import sys

pid, region, ring = int(sys.argv[1]), sys.argv[2], 0
qsize = int(sys.argv[3]) if len(sys.argv) > 3 else 256
ram = None
for fd in os.listdir(f"/proc/{pid}/fd"):
    try:
        target = os.readlink(f"/proc/{pid}/fd/{fd}")
    except OSError:
        continue
    if target == f"/memfd:devmux:{region} (deleted)":
        ram = f"/proc/{pid}/fd/{fd}"
        break
if ram is None:
    sys.exit(f"no memfd devmux:{region} among the descriptors of pid {pid}")
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
