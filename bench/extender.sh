#!/usr/bin/env bash
# The Kubernetes scheduler extender's figures (docs/benchmarks.md, "The scheduler extender over
# HTTP"): daemons with a front door on a Unix socket and a `kubernetes` gateway, the example
# policies, the 1,000 nodes of sync-1000.json in each inventory, then `custos bench extender`
# POSTing filter-names-1000-args.json (1,000 named nodes) to /scheduler/k8s/filter, rounds
# alternating over the daemons: this build without and with an audit log (--audit-sync always),
# and the same pair of a BASELINE binary when one is given (an older build to compare with).
# Everything is stopped and removed at the end.
#
#   bench/extender.sh [BASELINE_BINARY] [-- BENCH_OPTIONS...]
#   (run `swift build -c release` first; e.g. bench/extender.sh /tmp/custos-main -- --rounds 7)
set -euo pipefail
. "$(dirname "$0")/scratch.sh" extender
baseline=
if [ $# -gt 0 ] && [ "$1" != "--" ]; then baseline=$1; shift; fi
[ $# -gt 0 ] && [ "$1" = "--" ] && shift
[ -z "$baseline" ] || [ -x "$baseline" ] || { echo "$baseline: not an executable" >&2; exit 2; }

targets=()
start() {  # name binary serve-options...
  local name=$1 bin=$2; shift 2
  mkdir -p "$dir/$name"
  cat > "$dir/$name/config.json" <<JSON
{"http": {"listeners": [{"unix": "$dir/$name/http.sock"}],
          "gateways": {"k8s": {"kind": "kubernetes", "region_label": "node-restriction.kubernetes.io/region"}}}}
JSON
  "$bin" serve --policies "$root/policies" --state "$dir/$name/state" --socket "$dir/$name/c.sock" \
    --config "$dir/$name/config.json" "$@" > "$dir/$name/daemon.out" 2> "$dir/$name/daemon.log" &
  pids+=($!)
  until "$custos" call health --socket "$dir/$name/c.sock" >/dev/null 2>&1; do sleep 0.1; done
  "$custos" call nodes.sync - --socket "$dir/$name/c.sock" \
    < "$root/Tests/SchedulerExtenderTests/Fixtures/sync-1000.json" > /dev/null
  echo "$name: $bin $*"
  targets+=(--http "$dir/$name/http.sock")
}
if [ -n "$baseline" ]; then
  start base-no-audit "$baseline" --no-audit
fi
start no-audit "$custos" --no-audit
if [ -n "$baseline" ]; then
  start base-audit "$baseline" --audit-sync always
fi
start audit "$custos" --audit-sync always
echo "load average: $(cat /proc/loadavg)"
cd "$root"
"$custos" bench extender "${targets[@]}" "$@"
echo "load average: $(cat /proc/loadavg)"
