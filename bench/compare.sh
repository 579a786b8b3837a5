#!/usr/bin/env bash
# Compares a 3-node Concord cluster with a 3-member etcd cluster on loopback,
# both with fsync on and 150–300 ms randomized election timeouts:
#   puts/s and p50/p99 latency with 1, 16 and 64 clients writing 256-byte
#   values for a fixed time, then failover time after SIGKILL of the leader,
#   then hand-over time after SIGTERM of the leader (both hand leadership
#   over on SIGTERM before they stop).
# Before each system it measures the machine's floor for one client (the
# floor bench: the same processes, TCP hops and fdatasyncs with no consensus
# software in them), with fsync on and off, so that each system's one-client
# figures can be read against what this machine allowed minutes before (its
# disk's fdatasync latency moves by 2x within an hour).
#
# Both snapshot every 100,000 entries (etcd 3.4's default --snapshot-count).
#
# Usage: bench/compare.sh [--seconds S] [--failovers N] [--handovers N] [--only etcd|concord]
# Installs Debian's etcd-server and protobuf-compiler when missing (as root).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

seconds=10
failovers=20
handovers=10
only=""
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --failovers) failovers=$2; shift 2 ;;
    --handovers) handovers=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

work=$(mktemp -d /tmp/concord-bench.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]:-}"; do [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
results="$work/results.jsonl"
: > "$results"

need() {
  command -v "$1" >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
  fi
  command -v "$1" >/dev/null 2>&1 || { echo "missing $1 (Debian package $2)" >&2; exit 1; }
}

# Runs a load command and adds to its JSON line the share of the VM's CPU
# time the hypervisor took meanwhile (steal, from /proc/stat): on a shared
# host it moves latency more than anything measured here.
with_steal() {
  local before after line
  before=$(head -n 1 /proc/stat)
  line=$("$@")
  after=$(head -n 1 /proc/stat)
  python3 -c '
import json, sys
before, after = ([int(x) for x in l.split()[1:]] for l in sys.argv[1:3])
spent = [a - b for a, b in zip(after, before)]
row = json.loads(sys.argv[3])
row["steal_pct"] = round(100 * spent[7] / max(1, sum(spent)), 1)
print(json.dumps(row))' "$before" "$after" "$line"
}

# ---------------------------------------------------------------- etcd
etcd_cluster="e1=http://127.0.0.1:23801,e2=http://127.0.0.1:23802,e3=http://127.0.0.1:23803"
etcd_endpoints="127.0.0.1:23791,127.0.0.1:23792,127.0.0.1:23793"
declare -A etcd_pid

start_etcd_member() {
  local i=$1 state=$2
  etcd --name "e$i" --data-dir "$work/etcd$i" \
    --listen-client-urls "http://127.0.0.1:2379$i" --advertise-client-urls "http://127.0.0.1:2379$i" \
    --listen-peer-urls "http://127.0.0.1:2380$i" --initial-advertise-peer-urls "http://127.0.0.1:2380$i" \
    --initial-cluster "$etcd_cluster" --initial-cluster-state "$state" --initial-cluster-token bench \
    --heartbeat-interval 30 --election-timeout 150 --log-level error \
    >"$work/etcd$i.log" 2>&1 &
  etcd_pid[$i]=$!
  pids+=($!)
  disown "$!"
}

etcd_healthy() {
  ETCDCTL_API=3 etcdctl --endpoints "$etcd_endpoints" --dial-timeout 300ms endpoint health >/dev/null 2>&1
}

# Whether process $1 has exited. Servers are disowned when started, so that
# bash does not report each one the load tool kills ("Killed ..."); bash
# still reaps them.
gone() {
  ! kill -0 "$1" 2>/dev/null
}

wait_until() {
  local what=$1; shift
  for _ in $(seq 1 200); do "$@" && return 0; sleep 0.05; done
  echo "timed out waiting for $what" >&2; exit 1
}

run_etcd() {
  run_floor
  local load="$root/bench/etcd-load/target/release/concord-bench-etcd-load"
  for i in 1 2 3; do start_etcd_member "$i" new; done
  wait_until "etcd health" etcd_healthy
  for clients in 1 16 64; do
    with_steal "$load" puts --endpoints "$etcd_endpoints" --clients "$clients" --seconds "$seconds" | tee -a "$results"
  done
  local signals=()
  for _ in $(seq 1 "$failovers"); do signals+=(kill); done
  for _ in $(seq 1 "$handovers"); do signals+=(term); done
  for signal in "${signals[@]}"; do
    local line
    line=$("$load" failover --endpoints "$etcd_endpoints" --pids "${etcd_pid[1]},${etcd_pid[2]},${etcd_pid[3]}" --signal "$signal")
    echo "$line" | tee -a "$results"
    local killed
    killed=$(echo "$line" | sed -n 's/.*"killed_endpoint":"127.0.0.1:2379\([0-9]\)".*/\1/p')
    wait_until "killed etcd member gone" gone "${etcd_pid[$killed]}"
    start_etcd_member "$killed" existing
    wait_until "etcd member back" etcd_healthy
  done
  for i in 1 2 3; do kill "${etcd_pid[$i]}" 2>/dev/null || true; done
}

# ---------------------------------------------------------------- concord
concord_endpoints="127.0.0.1:24791,127.0.0.1:24792,127.0.0.1:24793"
declare -A concord_pid

start_concord_node() {
  local i=$1 peers=()
  for j in 1 2 3; do [ "$j" = "$i" ] || peers+=(--peer "$j=127.0.0.1:2480$j"); done
  "$root/target/release/concord" node --id "$i" --listen "127.0.0.1:2480$i" --http "127.0.0.1:2479$i" \
    --data-dir "$work/concord$i" --heartbeat-ms 30 --election-timeout-min-ms 150 --election-timeout-max-ms 300 \
    --snapshot-entries 100000 --max-log-entries 200000 \
    "${peers[@]}" >"$work/concord$i.log" 2>&1 &
  concord_pid[$i]=$!
  pids+=($!)
  disown "$!"
}

concord_ready() {
  "$root/target/release/concord" ctl --endpoint http://127.0.0.1:24791 verify-quorum 2>/dev/null | grep -q '"quorum_verified": true'
}

concord_follows() {
  "$root/target/release/concord" ctl --json --endpoint "http://127.0.0.1:2479$1" status 2>/dev/null | grep -q '"leader":[0-9]'
}

run_concord() {
  run_floor
  local concord="$root/target/release/concord"
  for i in 1 2 3; do start_concord_node "$i"; done
  wait_until "concord quorum" concord_ready
  for clients in 1 16 64; do
    with_steal "$concord" load --endpoints "$concord_endpoints" puts --clients "$clients" --seconds "$seconds" \
      | tee -a "$results"
  done
  local signals=()
  for _ in $(seq 1 "$failovers"); do signals+=(kill); done
  for _ in $(seq 1 "$handovers"); do signals+=(term); done
  for signal in "${signals[@]}"; do
    local line
    line=$("$concord" load --endpoints "$concord_endpoints" failover --pids "${concord_pid[1]},${concord_pid[2]},${concord_pid[3]}" --signal "$signal")
    echo "$line" | tee -a "$results"
    local killed
    killed=$(echo "$line" | sed -n 's/.*"killed_endpoint":"127.0.0.1:2479\([0-9]\)".*/\1/p')
    wait_until "killed concord node gone" gone "${concord_pid[$killed]}"
    start_concord_node "$killed"
    wait_until "concord node back" concord_ready
    wait_until "restarted node follows a leader" concord_follows "$killed"
  done
  for i in 1 2 3; do kill "${concord_pid[$i]}" 2>/dev/null || true; done
}

# ---------------------------------------------------------------- floor
run_floor() {
  for fsync in on off; do
    with_steal cargo bench --quiet -p concord-runtime --bench floor -- --seconds "$seconds" --fsync "$fsync" \
      --dir "$work" | tee -a "$results"
  done
}

# Everything is built first, and written back to disk, so that no build's
# writeback shares the disk with a measurement (it doubled the floor's p50).
cargo build --release --quiet -p concord-runtime
cargo bench --quiet -p concord-runtime --bench floor --no-run
if [ "$only" != concord ]; then
  need etcd etcd-server
  need etcdctl etcd-client
  need protoc protobuf-compiler
  cargo build --release --quiet --manifest-path bench/etcd-load/Cargo.toml
fi
sync
[ "$only" = concord ] || run_etcd
[ "$only" = etcd ] || run_concord

python3 - "$results" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
print()
print(f"{'system':8} {'clients':>7} {'puts/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'steal %':>8}")
for r in rows:
    if "puts_per_s" in r:
        name = r["system"] + ("" if r.get("fsync", True) else "*")
        print(f"{name:8} {r['clients']:>7} {r['puts_per_s']:>9.0f} {r['p50_ms']:>8.3f} {r['p99_ms']:>8.3f} "
              f"{r.get('steal_pct', float('nan')):>8.1f}")
print("floor: the machine's own cost of a replicated put (bench floor); floor*: the same without fdatasync;")
print("steal %: CPU time the hypervisor took from this VM during the run")
what = {"kill": "failover after SIGKILL", "term": "hand-over after SIGTERM"}
for system, signal in sorted({(r["system"], r.get("signal", "kill")) for r in rows if "election_ms" in r}):
    mine = [r for r in rows if r.get("system") == system and r.get("signal", "kill") == signal and "election_ms" in r]
    e = sorted(r["election_ms"] for r in mine)
    w = sorted(r["first_write_ms"] for r in mine)
    q = lambda xs, p: xs[min(len(xs) - 1, int(round((len(xs) - 1) * p)))]
    print(f"{system}: {what[signal]} over {len(e)} trials: new leader median {statistics.median(e):.0f} ms "
          f"(p99 {q(e, .99):.0f}, max {max(e):.0f}); first write median {statistics.median(w):.0f} ms "
          f"(p99 {q(w, .99):.0f}, max {max(w):.0f})")
PY
