#!/usr/bin/env bash
# Cedar speed beside the reference engine (cedarpy's is_authorized_batch) on identical files,
# with every decision cross-checked. Workloads: docs/benchmarks.md. Figures only; nothing is
# asserted.
#   grants, 20 and 1,000 policies over 10,000 entities: in-process figures of both engines;
#   with 20 policies also both as whole processes.
#   forbids (25 rules, 14 forbids, 3,000 entities): the same, then both as whole processes
#   (`custos authorize --requests` against a Python process running cedarpy's batch), in
#   alternating rounds.
#
# With CUSTOS_BASELINE=path/to/an/earlier/custos, the whole-process rounds time it too, and
# the grants workload's in-process figures are taken of both builds in alternating rounds.
#
#   bench/cedar_vs_cedarpy.sh [REQUESTS] [ROUNDS]   (defaults 20000 and 5; cedarpy needs ~1 ms a decision at 1,000 policies)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${CUSTOS:-.build/release/custos}
REQUESTS=${1:-20000}
ROUNDS=${2:-5}
[ -x "$BIN" ] || swift build -c release
WHOLE=(--whole-process "$ROUNDS")
[ -n "${CUSTOS_BASELINE:-}" ] && WHOLE+=(--baseline "$CUSTOS_BASELINE")
for n in 20 1000; do
  dir=$(mktemp -d)
  echo "== grants, $n policies"
  "$BIN" bench cedar --policies "$n" --requests "$REQUESTS" --write "$dir"
  if [ -n "${CUSTOS_BASELINE:-}" ]; then
    python3 bench/inprocess_rounds.py "$ROUNDS" "$BIN" "$CUSTOS_BASELINE" -- --policies "$n" --requests "$REQUESTS"
  fi
  if [ "$n" = 20 ]; then
    python3 bench/cedarpy_batch.py "$dir" --check-with "$BIN" "${WHOLE[@]}"
  else
    python3 bench/cedarpy_batch.py "$dir" --check-with "$BIN"
  fi
  rm -rf "$dir"
done
dir=$(mktemp -d)
echo "== forbids"
"$BIN" bench cedar --workload forbids --requests "$REQUESTS" --write "$dir"
python3 bench/cedarpy_batch.py "$dir" --check-with "$BIN" "${WHOLE[@]}"
rm -rf "$dir"
echo "load average: $(cat /proc/loadavg)"
