#!/usr/bin/env bash
# A follower catching up through a large snapshot, on a 3-node Concord
# cluster on loopback (the timeouts of bench/compare.sh, a snapshot every
# 100 entries).
#
# One follower is killed (SIGKILL); four clients put values of about 1 MB
# to the other two for a fixed time, which builds a state of several
# hundred MB; the follower is restarted, installs the leader's snapshot and
# applies what follows it. Prints the load's figures, the time the follower
# took to apply everything the leader had committed, and the follower's
# "raft tick late" warnings after its restart (each names how long its
# event loop went without a tick; a tick is due every 10 ms).
#
# Usage: bench/catch_up.sh [--seconds S] [--value-bytes B] [--binary PATH]
# Without --binary, builds and uses the release `concord`.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=8
value_bytes=1000000
binary=""
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --value-bytes) value_bytes=$2; shift 2 ;;
    --binary) binary=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
if [ -z "$binary" ]; then
  cargo build --quiet --release -p concord-runtime
  binary=target/release/concord
fi

work=$(mktemp -d /tmp/concord-catch-up.XXXXXX)
cleanup() {
  for i in 1 2 3; do
    [ -f "$work/n$i.pid" ] && kill -9 "$(cat "$work/n$i.pid")" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

start_node() {
  local i=$1 peers=()
  for j in 1 2 3; do [ "$j" = "$i" ] || peers+=(--peer "$j=127.0.0.1:2580$j"); done
  "$binary" node --id "$i" --listen "127.0.0.1:2580$i" --http "127.0.0.1:2579$i" \
    --data-dir "$work/n$i" --heartbeat-ms 30 --election-timeout-min-ms 150 \
    --election-timeout-max-ms 300 --snapshot-entries 100 "${peers[@]}" >>"$work/n$i.log" 2>&1 &
  echo $! >"$work/n$i.pid"
  disown $!
}

# The value of FIELD in node I's status.
status_field() {
  "$binary" ctl --json --endpoint "http://127.0.0.1:2579$1" status 2>/dev/null |
    python3 -c "import json,sys; print(json.load(sys.stdin)['$2'])" 2>/dev/null || true
}

for i in 1 2 3; do start_node "$i"; done
leader=""
for _ in $(seq 1 200); do
  for i in 1 2 3; do
    [ "$(status_field "$i" role)" = leader ] && leader=$i
  done
  [ -n "$leader" ] && break
  sleep 0.05
done
[ -n "$leader" ] || { echo "no leader" >&2; exit 1; }
follower=$((leader % 3 + 1))
other=$(((leader + 1) % 3 + 1))

kill -9 "$(cat "$work/n$follower.pid")"
"$binary" load --endpoints "127.0.0.1:2579$leader,127.0.0.1:2579$other" \
  puts --clients 4 --seconds "$seconds" --value-bytes "$value_bytes"
commit=$(status_field "$leader" commit_index)
lines=$(wc -l <"$work/n$follower.log")

started=$(date +%s.%N)
start_node "$follower"
caught_up=""
for _ in $(seq 1 1200); do
  applied=$(status_field "$follower" applied_index)
  if [ -n "$applied" ] && [ "$applied" -ge "$commit" ]; then caught_up=yes; break; fi
  sleep 0.05
done
ended=$(date +%s.%N)
[ -n "$caught_up" ] || { echo "the follower did not catch up" >&2; exit 1; }
echo "follower $follower applied through $commit in $(python3 -c "print(round($ended - $started, 2))") s;" \
  "the leader's data directory holds $(du -sh "$work/n$leader" | cut -f1)"
late=$(tail -n +"$((lines + 1))" "$work/n$follower.log" | grep -o 'raft tick late.*gap_ms=[0-9]*' |
  grep -o '[0-9]*$' | tr '\n' ' ' || true)
echo "late ticks on the follower (ms): ${late:-none}"
