#!/usr/bin/env bash
# The scheduler hook's figures (docs/benchmarks.md, "The scheduler hook" and "Per-node Cedar
# checks"): daemons of this build over the example policies, each with the 1,000 nodes of
# `bench/place_request.py --sync` in its inventory, then `custos bench socket --method place`
# against each with one client, rounds alternating over the daemons:
#   none, always, batch      --no-audit, --audit-sync always, --audit-sync batch
#   none-no-nodes, always-no-nodes   the same policies without 60-nodes.cedar (no per-node
#                            Cedar checks), --no-audit and always
# Each round sends the 1,000 nodes by name (an 11 KB request) to every daemon, and as node
# objects (174 KB) to none, always and batch; the `none` runs alternate with the echo floor
# (`--echo --echo-process`: jansson parses the same request, a fixed reply comes back). The
# daemon's CPU per call is printed by `bench socket` (the daemon runs here). Figures only;
# nothing is asserted. Everything is stopped and removed at the end.
#
#   bench/place_rounds.sh [ROUNDS [CALLS]]     (default 5 rounds of 2,000 calls; run `swift build -c release` first)
set -euo pipefail
. "$(dirname "$0")/scratch.sh" place
rounds=${1:-5}
calls=${2:-2000}
python3 "$root/bench/place_request.py" 1000 --sync > "$dir/sync.json"
python3 "$root/bench/place_request.py" 1000 --names > "$dir/names.json"
python3 "$root/bench/place_request.py" 1000 > "$dir/objects.json"
cp -r "$root/policies" "$dir/policies-no-nodes"
rm "$dir/policies-no-nodes/60-nodes.cedar"

daemons=(none always batch none-no-nodes always-no-nodes)
for d in "${daemons[@]}"; do
  case $d in
    none) p=$root/policies a=(--no-audit);;
    always) p=$root/policies a=(--audit-sync always);;
    batch) p=$root/policies a=(--audit-sync batch);;
    none-no-nodes) p=$dir/policies-no-nodes a=(--no-audit);;
    always-no-nodes) p=$dir/policies-no-nodes a=(--audit-sync always);;
  esac
  mkdir -p "$dir/$d"
  "$custos" serve --policies "$p" --state "$dir/$d" --socket "$dir/$d/c.sock" "${a[@]}" > "$dir/$d/log" 2>&1 &
  pids+=($!)
done
for d in "${daemons[@]}"; do
  until "$custos" call health --socket "$dir/$d/c.sock" >/dev/null 2>&1; do sleep 0.1; done
  "$custos" call nodes.sync - --socket "$dir/$d/c.sock" < "$dir/sync.json" > /dev/null
done
echo "load average: $(cat /proc/loadavg)"
# `bench socket` sends 200 untimed calls per client before the timed ones.
one() { # daemon request label [extra options]
  local d=$1 req=$2 label=$3; shift 3
  "$custos" bench socket --socket "$dir/$d/c.sock" --method place --request "$dir/$req.json" \
    --clients 1 --requests "$calls" "$@" 2>&1 | grep -E '^(daemon|echo) .*requests' | sed "s/^/$label [$r] /"
}
for r in $(seq 1 "$rounds"); do
  one none names "names none" --echo --echo-process
  for d in always batch none-no-nodes always-no-nodes; do one "$d" names "names $d"; done
  one none objects "objects none" --echo --echo-process
  for d in always batch; do one "$d" objects "objects $d"; done
done
echo "load average: $(cat /proc/loadavg)"
