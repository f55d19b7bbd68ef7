#!/bin/sh
# busybox udhcpc's event script: on a lease, address the interface as the
# server said (nothing else: no routes or DNS are needed by the tests).
case $1 in
bound | renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" dev "$interface"
    ;;
deconfig)
    ip addr flush dev "$interface"
    ip link set "$interface" up
    ;;
esac
exit 0
