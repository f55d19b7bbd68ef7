#!/usr/bin/env python3
"""Check an echo server.

    echo.py udp HOST PORT COUNT    COUNT datagrams, each must come back identical
    echo.py tcp HOST PORT BYTES    BYTES random bytes, read back identical

Prints one line describing the result; exits 1 on any mismatch or timeout."""
import os
import selectors
import socket
import sys
import time


def udp(host, port, count):
    """One datagram at a time; each must come back, identical, within 2 s."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2.0)
    s.connect((host, port))
    for i in range(count):
        msg = i.to_bytes(4, "big") + os.urandom(60 + (i * 13) % 1000)
        s.send(msg)
        try:
            back = s.recv(4096)
        except socket.timeout:
            print(f"datagram {i}: no echo within 2 s")
            return 1
        if back != msg:
            print(f"datagram {i}: got {len(back)} bytes that differ from the {len(msg)} sent")
            return 1
    print(f"{count} of {count} datagrams echoed identically")
    return 0


def tcp(host, port, total):
    data = os.urandom(total)
    s = socket.create_connection((host, port), timeout=10)
    s.settimeout(10)
    got = bytearray()
    sent = 0
    deadline = time.monotonic() + 60
    s.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE)
    while len(got) < total:
        if time.monotonic() > deadline:
            print(f"timeout: sent {sent}, received {len(got)} of {total}")
            return 1
        events = sel.select(timeout=1)
        for _key, ev in events:
            if ev & selectors.EVENT_READ:
                try:
                    chunk = s.recv(65536)
                except BlockingIOError:
                    chunk = None
                if chunk == b"":
                    print(f"connection closed after {len(got)} of {total} bytes")
                    return 1
                if chunk:
                    got += chunk
            if ev & selectors.EVENT_WRITE and sent < total:
                try:
                    sent += s.send(data[sent : sent + 65536])
                except BlockingIOError:
                    pass
                if sent == total:
                    sel.modify(s, selectors.EVENT_READ)
    s.close()
    if bytes(got) != data:
        first = next(i for i in range(total) if got[i] != data[i])
        print(f"received {len(got)} bytes, first difference at byte {first}")
        return 1
    print(f"{total} bytes echoed identically")
    return 0


def main():
    if len(sys.argv) != 5 or sys.argv[1] not in ("udp", "tcp"):
        raise SystemExit(__doc__)
    mode, host, port, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    sys.exit(udp(host, port, n) if mode == "udp" else tcp(host, port, n))


main()
