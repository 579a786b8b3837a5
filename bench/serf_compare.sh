#!/usr/bin/env bash
# Compares Concord's gossip with HashiCorp serf (Debian package `serf`) on
# loopback, NODES members each (default 64):
#   (a) join convergence: all members started, then all but one told to join
#       through that one seed at once; per member, time until it sees NODES
#       alive members (median and max);
#   (b) failure detection: one member SIGKILLed (serf) or stopped with its
#       sockets closed (Concord); per live member, time until it holds it
#       failed/dead (median and max);
#   (c) event spread: one serf user event (coalescing off) / one Concord
#       state write; per live member, time until it has it (median and max).
# serf agents are separate processes measured through their RPC ports
# (bench/serf_rpc_probe.py, Python standard library only); Concord's members
# are gossip actors over TCP loopback in one process
# (gossip/benches/vs_serf.rs).
#
# Usage: bench/serf_compare.sh [--nodes N] [--only serf|concord]
# Installs serf with apt-get when missing (as root); skips serf cleanly if
# it cannot.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

nodes=64
only=""
while [ $# -gt 0 ]; do
  case "$1" in
    --nodes) nodes=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

bind_base=17946
rpc_base=27373
work=$(mktemp -d /tmp/concord-serf.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]:-}"; do [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

echo "# load average: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"

have_serf() {
  command -v serf >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "# installing serf (apt-get)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y serf >"$work/apt.log" 2>&1 || true
  fi
  command -v serf >/dev/null 2>&1
}

wait_rpc() {
  local port=$1 deadline=$((SECONDS + 30))
  until python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $port), 1)" 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || { echo "serf RPC port $port not up" >&2; return 1; }
    sleep 0.1
  done
}

run_serf() {
  if ! have_serf; then
    echo "serf: not installed and not installable here; skipped"
    return 0
  fi
  echo "## serf $(serf version | head -1 | cut -d' ' -f2) (Debian $(dpkg-query -W -f='${Version}' serf 2>/dev/null || echo '?')), $nodes agents, default LAN profile"
  for i in $(seq 1 "$nodes"); do
    serf agent -node="serf$i" -bind="127.0.0.1:$((bind_base + i - 1))" \
      -rpc-addr="127.0.0.1:$((rpc_base + i - 1))" -log-level=err \
      >"$work/serf$i.log" 2>&1 &
    pids+=($!)
    disown $!
    echo $! >"$work/serf$i.pid"
  done
  for i in $(seq 1 "$nodes"); do wait_rpc $((rpc_base + i - 1)); done
  echo "# serf: python3 bench/serf_rpc_probe.py $rpc_base $nodes 127.0.0.1:$bind_base <pid of serf$nodes>"
  python3 "$root/bench/serf_rpc_probe.py" "$rpc_base" "$nodes" "127.0.0.1:$bind_base" "$work/serf$nodes.pid"
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  pids=()
}

run_concord() {
  echo "## concord gossip, $nodes actors over TCP loopback in one process, default GossipConfig"
  echo "# concord: CONCORD_VS_SERF_NODES=$nodes cargo bench -p concord-gossip --bench vs_serf"
  CONCORD_VS_SERF_NODES=$nodes cargo bench -q -p concord-gossip --bench vs_serf 2>/dev/null | grep '^concord'
}

[ "$only" = concord ] || run_serf
[ "$only" = serf ] || run_concord
