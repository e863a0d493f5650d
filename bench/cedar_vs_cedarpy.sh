#!/usr/bin/env bash
# In-process Cedar speed, 20 and 1,000 policies over the same 10,000 entities, beside the
# reference engine (cedarpy's is_authorized_batch) on the identical workload, with every
# decision cross-checked. Workload: docs/benchmarks.md. Figures only; nothing is asserted.
#
#   bench/cedar_vs_cedarpy.sh [REQUESTS]      (default 20000; cedarpy needs ~1 ms a decision at 1,000 policies)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${CUSTOS:-.build/release/custos}
REQUESTS=${1:-20000}
[ -x "$BIN" ] || swift build -c release
for n in 20 1000; do
  dir=$(mktemp -d)
  echo "== $n policies"
  "$BIN" bench cedar --policies "$n" --requests "$REQUESTS" --write "$dir"
  python3 bench/cedarpy_batch.py "$dir" --check-with "$BIN"
  rm -rf "$dir"
done
