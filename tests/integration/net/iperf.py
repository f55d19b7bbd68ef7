#!/usr/bin/env python3
"""Read one number out of iperf3 -J (client) output.

    iperf.py FILE KEY

KEY is FIELD or sent_FIELD: FIELD of end.sum_received (what the receiver
counted) or end.sum_sent, e.g. bits_per_second, bytes, seconds, packets,
lost_packets.  "received_packets" is packets - lost_packets on the
receiver's side (UDP)."""
import json
import sys


def main():
    path, key = sys.argv[1], sys.argv[2]
    with open(path) as f:
        j = json.load(f)
    if "error" in j:
        raise SystemExit(f"iperf3 error: {j['error']}")
    end = j["end"]
    if key == "received_packets":
        s = end["sum_received"]
        v = s["packets"] - s["lost_packets"]
    elif key.startswith("sent_"):
        v = end["sum_sent"][key[5:]]
    else:
        v = end["sum_received"][key]
    print(v if isinstance(v, int) else f"{v:.3f}")


main()
