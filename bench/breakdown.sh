#!/usr/bin/env bash
# Where a one-client put's time goes, hop by hop, on a 3-node Concord cluster
# on loopback (fsync on, the timeouts of bench/compare.sh).
#
# One client puts 256-byte values in a closed loop; `perf` records the
# network and disk system calls of every process for one second in the
# middle; each put is then followed from the client's request through the
# leader, the first follower to acknowledge, and back, and the median and
# 90th percentile of each step are printed (microseconds). Tracing slows
# every system call a little, so the steps add up to more than the
# untraced latency `concord load` reports: compare steps between builds or
# machines, not with that figure.
#
# Usage: bench/breakdown.sh [--seconds S]   (root, or perf_event_paranoid <= -1)
# Installs Debian's linux-perf when `perf` is missing (as root).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

seconds=5
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
[ "$seconds" -ge 3 ] || { echo "--seconds must be at least 3" >&2; exit 2; }

if ! command -v perf >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq linux-perf >/dev/null
  fi
  command -v perf >/dev/null 2>&1 || { echo "missing perf (Debian package linux-perf)" >&2; exit 1; }
fi

work=$(mktemp -d /tmp/concord-breakdown.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]:-}"; do
    [ -n "$pid" ] || continue
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

cargo build --release --quiet -p concord-runtime
concord="$root/target/release/concord"
endpoints="127.0.0.1:26791,127.0.0.1:26792,127.0.0.1:26793"
declare -A node_pid
for i in 1 2 3; do
  peers=()
  for j in 1 2 3; do [ "$j" = "$i" ] || peers+=(--peer "$j=127.0.0.1:2680$j"); done
  "$concord" node --id "$i" --listen "127.0.0.1:2680$i" --http "127.0.0.1:2679$i" \
    --data-dir "$work/node$i" --heartbeat-ms 30 --election-timeout-min-ms 150 --election-timeout-max-ms 300 \
    "${peers[@]}" >"$work/node$i.log" 2>&1 &
  node_pid[$i]=$!
  pids+=($!)
done

leader=""
for _ in $(seq 1 200); do
  for i in 1 2 3; do
    if "$concord" ctl --json --endpoint "http://127.0.0.1:2679$i" status 2>/dev/null | grep -q '"role":"leader"'; then
      leader=$i
    fi
  done
  [ -n "$leader" ] && break
  sleep 0.05
done
[ -n "$leader" ] || { echo "no leader elected" >&2; exit 1; }
followers=()
for i in 1 2 3; do [ "$i" = "$leader" ] || followers+=("${node_pid[$i]}"); done

"$concord" load --endpoints "$endpoints" puts --clients 1 --seconds "$seconds" >"$work/load.json" &
load_pid=$!
pids+=($load_pid)
sleep $((seconds / 2))
perf record -q -o "$work/perf.data" -a \
  -e syscalls:sys_enter_sendto,syscalls:sys_exit_recvfrom,syscalls:sys_enter_pwrite64,syscalls:sys_exit_fdatasync \
  -- sleep 1 >/dev/null 2>&1
wait "$load_pid"
echo "untraced run: $(cat "$work/load.json")"
perf script -i "$work/perf.data" -F pid,time,event,trace 2>/dev/null >"$work/events.txt"

python3 - "$work/events.txt" "$load_pid" "${node_pid[$leader]}" "${followers[@]}" <<'PY'
import re, statistics, sys

path, client, leader, *followers = sys.argv[1:]
# (time µs, pid, kind, bytes): kind is "out" (sendto), "in" (recvfrom),
# "pwrite" or "synced" (fdatasync returned).
events = []
for line in open(path):
    fields = line.split()
    if len(fields) < 4:
        continue
    pid, event = fields[0], fields[2].rstrip(":")
    if pid not in (client, leader, *followers):
        continue
    t = float(fields[1].rstrip(":")) * 1e6
    if event.endswith("sys_enter_sendto"):
        m = re.search(r"len: (0x[0-9a-f]+)", line)
        events.append((t, pid, "out", int(m.group(1), 16) if m else 0))
    elif event.endswith("sys_exit_recvfrom"):
        events.append((t, pid, "in", int(fields[3], 16) if fields[3].startswith("0x") else -1))
    elif event.endswith("sys_enter_pwrite64"):
        events.append((t, pid, "pwrite", 0))
    elif event.endswith("sys_exit_fdatasync"):
        events.append((t, pid, "synced", 0))
events.sort()

LIMIT_US = 5_000  # a step longer than this is a stall, not a put's path

def find(start, test):
    """Index of the first event after `start` that passes `test`."""
    if start is None:
        return None
    for j in range(start + 1, len(events)):
        if events[j][0] - events[start][0] > LIMIT_US:
            return None
        if test(events[j]):
            return j
    return None

steps = {}
def add(name, a, b):
    steps.setdefault(name, []).append(events[b][0] - events[a][0])

for i, (t, pid, kind, size) in enumerate(events):
    if pid != client or kind != "out":
        continue
    request = size
    answer = find(i, lambda e: e[1] == client and e[2] == "in" and e[3] > 0)
    if answer is None:
        continue
    response = events[answer][3]
    received = find(i, lambda e: e[1] == leader and e[2] == "in" and e[3] == request)
    append = find(received, lambda e: e[1] == leader and e[2] == "out" and e[3] != response)
    responded = find(received, lambda e: e[1] == leader and e[2] == "out" and e[3] == response)
    written = find(received, lambda e: e[1] == leader and e[2] == "pwrite")
    synced = find(written, lambda e: e[1] == leader and e[2] == "synced")
    if None in (received, append, responded, written, synced) or events[responded][0] > events[answer][0]:
        continue
    first = None  # the follower whose acknowledgement comes first
    for f in followers:
        got = find(append, lambda e: e[1] == f and e[2] == "in" and e[3] == events[append][3])
        fw = find(got, lambda e: e[1] == f and e[2] == "pwrite")
        fs = find(fw, lambda e: e[1] == f and e[2] == "synced")
        ack = find(fs, lambda e: e[1] == f and e[2] == "out")
        if None in (got, fw, fs, ack):
            continue
        if first is None or events[ack][0] < events[first[3]][0]:
            first = (got, fw, fs, ack)
    if first is None:
        continue
    got, fw, fs, ack = first
    acked = find(ack, lambda e: e[1] == leader and e[2] == "in" and e[3] == events[ack][3])
    if acked is None or events[acked][0] > events[responded][0]:
        continue
    add("client request -> leader receives", i, received)
    add("leader receives -> sends append", received, append)
    add("leader receives -> its WAL write", received, written)
    add("leader WAL write -> fdatasync done", written, synced)
    add("append sent -> follower receives", append, got)
    add("follower receives -> WAL write", got, fw)
    add("follower WAL write -> fdatasync done", fw, fs)
    add("follower fdatasync -> sends ack", fs, ack)
    add("ack sent -> leader receives", ack, acked)
    add("leader receives ack -> answers", acked, responded)
    add("leader fdatasync -> answers (slack)", synced, responded)
    add("answer sent -> client receives", responded, answer)
    add("total", i, answer)

if not steps:
    sys.exit("no put could be followed through the trace")
n = len(steps["total"])
print(f"{n} puts followed; microseconds, traced")
print(f"{'step':40} {'p50':>6} {'p90':>6}")
for name, values in steps.items():
    values.sort()
    print(f"{name:40} {statistics.median(values):6.0f} {values[len(values) * 9 // 10]:6.0f}")
PY
