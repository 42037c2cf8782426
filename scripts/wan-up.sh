#!/usr/bin/env bash
# wan-up.sh NAME INDEX: a network namespace `zs-NAME` standing for a remote center, joined to this host by a
# veth pair only: the host side is 198.18.INDEX.1/30 (`zsh-NAME`), the center side 198.18.INDEX.2/30 (`zsc-NAME`,
# its default route). 198.18.0.0/15 is the range RFC 2544 sets aside for benchmarking networks. What runs in the
# namespace (`ip netns exec zs-NAME ...`) reaches the host only over that link: take it down with
# `ip link set zsh-NAME down` for a partition; latency, stalls and resets come from a fault proxy on the host
# (zhisuan.bench.wan: this kernel has no netem). Idempotent. Prints the center side's address.
# Env: ZHISUAN_WAN_RATE (e.g. 100mbit): a tbf rate limit on the host side (both directions are not limited:
# only traffic towards the center).
set -euo pipefail
NAME=${1:?usage: wan-up.sh NAME INDEX}
INDEX=${2:?usage: wan-up.sh NAME INDEX}
[[ $NAME =~ ^[a-z0-9]{1,10}$ ]] || { echo "wan-up: NAME must be 1-10 lowercase letters or digits" >&2; exit 2; }
((INDEX >= 1 && INDEX <= 250)) || { echo "wan-up: INDEX must be 1..250" >&2; exit 2; }
NS=zs-$NAME HOST=zsh-$NAME CENTER=zsc-$NAME
HOST_IP=198.18.$INDEX.1 CENTER_IP=198.18.$INDEX.2
if ! ip netns list | grep -qw "$NS"; then
  ip netns add "$NS"
fi
if ! ip link show "$HOST" >/dev/null 2>&1; then
  ip link add "$HOST" type veth peer name "$CENTER"
  ip link set "$CENTER" netns "$NS"
  ip addr add "$HOST_IP/30" dev "$HOST"
  ip netns exec "$NS" ip addr add "$CENTER_IP/30" dev "$CENTER"
fi
ip link set "$HOST" up
ip netns exec "$NS" ip link set lo up
ip netns exec "$NS" ip link set "$CENTER" up
ip netns exec "$NS" ip route replace default via "$HOST_IP"
if [[ -n ${ZHISUAN_WAN_RATE:-} ]]; then
  tc qdisc replace dev "$HOST" root tbf rate "$ZHISUAN_WAN_RATE" burst 64kb latency 100ms
fi
echo "$CENTER_IP"
