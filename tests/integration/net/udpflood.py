#!/usr/bin/env python3
"""Send UDP datagrams to one address at a steady rate, for a while.

    udpflood.py DST_IP RATE_BITS SECONDS [PAYLOAD]

RATE_BITS counts whole Ethernet frames (payload + 42 bytes of headers) and
takes K/M/G suffixes (10^3...).  Paced in 1 ms bursts; nobody needs to
listen at DST_IP (port 9, discard)."""
import socket
import sys
import time


def rate(s):
    mult = {"K": 1e3, "M": 1e6, "G": 1e9}
    return float(s[:-1]) * mult[s[-1]] if s[-1] in mult else float(s)


def main():
    dst, bits, secs = sys.argv[1], rate(sys.argv[2]), float(sys.argv[3])
    size = int(sys.argv[4]) if len(sys.argv) > 4 else 1400
    per_s = bits / 8 / (size + 42)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    data = b"\x5a" * size
    start = time.monotonic()
    sent = 0
    while True:
        now = time.monotonic()
        if now - start >= secs:
            break
        due = int((now - start) * per_s)
        while sent < due:
            try:
                sock.sendto(data, (dst, 9))
            except (BlockingIOError, OSError):
                pass
            sent += 1
        time.sleep(0.001)
    print(sent)


main()
