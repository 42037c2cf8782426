#!/usr/bin/env bash
# wan-down.sh [NAME...]: remove the namespaces wan-up.sh made (all `zs-*` ones without NAME), and their links.
# Processes still in a namespace are killed first (a namespace lives as long as anything runs in it).
set -uo pipefail
if (($#)); then names=("${@/#/zs-}"); else mapfile -t names < <(ip netns list | awk '{print $1}' | grep '^zs-'); fi
for ns in "${names[@]}"; do
  [[ -n $ns ]] || continue
  pids=$(ip netns pids "$ns" 2>/dev/null)
  [[ -n $pids ]] && kill -KILL $pids 2>/dev/null
  ip netns del "$ns" 2>/dev/null
  ip link del "zsh-${ns#zs-}" 2>/dev/null
done
exit 0
