#!/usr/bin/env python3
"""Send raw Ethernet frames through an AF_PACKET socket.

    rawsend.py IFACE SRC_MAC DST_MAC ETHERTYPE COUNT

ETHERTYPE is hex (0x88b5).  Each frame carries a 46-byte payload starting
with its sequence number.  Prints how many frames the kernel accepted."""
import socket
import struct
import sys
import time


def mac(s):
    b = bytes(int(x, 16) for x in s.split(":"))
    if len(b) != 6:
        raise SystemExit(f"bad MAC {s}")
    return b


def main():
    if len(sys.argv) != 6:
        raise SystemExit(__doc__)
    iface, src, dst, etype, count = sys.argv[1:]
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    hdr = mac(dst) + mac(src) + struct.pack("!H", int(etype, 16))
    sent = 0
    for i in range(int(count)):
        payload = struct.pack("!I", i) + b"devmux-net-test" + bytes(27)
        if s.send(hdr + payload) == len(hdr) + len(payload):
            sent += 1
        time.sleep(0.005)
    print(sent)


main()
