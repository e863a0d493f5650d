#!/usr/bin/env bash
# The daemon's figures (docs/benchmarks.md, "The daemon: `custos bench socket`"): daemons of
# this build over the example policies in three audit modes (--no-audit, --audit-sync off,
# always), and the same three of a BASELINE binary when one is given, then `custos bench
# socket --socket` against each, rounds alternating between the builds. Figures only; nothing
# is asserted. Everything is stopped and removed at the end.
#
#   bench/socket_rounds.sh [BASELINE_BINARY]     (ROUNDS=5 by default; MODES="none off always" by
#                                                 default, a subset to time only those; run `swift build -c release` first)
#
# ON=tmpfs puts the daemons' state folders (their audit logs) on /dev/shm, where fdatasync
# costs nothing; ON=both runs every build both ways (`new` and `new-tmpfs`, ...). The tmpfs
# figures are what the daemon does when the disk is free: the part of a commit that is CPU and
# wake-ups, not syncing.
set -euo pipefail
. "$(dirname "$0")/scratch.sh" socket
baseline=${1:-}
rounds=${ROUNDS:-5}
read -r -a modes <<< "${MODES:-none off always}"
[ -z "$baseline" ] || [ -x "$baseline" ] || { echo "$baseline: not an executable" >&2; exit 2; }
builds=(new); [ -n "$baseline" ] && builds=(base new)
case ${ON:-disk} in
  disk) ;;
  tmpfs) builds=("${builds[@]/%/-tmpfs}") ;;
  both) b=(); for x in "${builds[@]}"; do b+=("$x" "$x-tmpfs"); done; builds=("${b[@]}") ;;
  *) echo "ON=${ON}: disk, tmpfs or both" >&2; exit 2 ;;
esac
if [[ " ${builds[*]}" == *-tmpfs* ]]; then
  shm=$(mktemp -d /dev/shm/custos-socket-bench.XXXXXX)
  trap 'cleanup; rm -rf "$shm"' EXIT
fi
binary() { if [ "${1%-tmpfs}" = base ]; then echo "$baseline"; else echo "$custos"; fi; }
folder() { if [[ $1 == *-tmpfs ]]; then echo "$shm/$1-$2"; else echo "$dir/$1-$2"; fi; }  # build mode
for b in "${builds[@]}"; do
  for m in "${modes[@]}"; do
    case $m in none) a=(--no-audit);; off) a=(--audit-sync off);; always) a=(--audit-sync always);; esac
    f=$(folder "$b" "$m")
    mkdir -p "$f"
    "$(binary "$b")" serve --policies "$root/policies" --state "$f" --socket "$f/c.sock" "${a[@]}" > "$f/log" 2>&1 &
    pids+=($!)
  done
done
for b in "${builds[@]}"; do for m in "${modes[@]}"; do
  for _ in $(seq 1 100); do [ -S "$(folder "$b" "$m")/c.sock" ] && break; sleep 0.1; done
done; done
run() { # mode label bench-options...
  local m=$1 label=$2; shift 2
  for r in $(seq 1 "$rounds"); do for b in "${builds[@]}"; do
    echo "$label $b [$r] $("$custos" bench socket --socket "$(folder "$b" "$m")/c.sock" "$@" 2>&1 | grep '^daemon .*requests')"
  done; done
}
has() { [[ " ${modes[*]} " == *" $1 "* ]]; }
if has none; then
  run none "none-c1" --clients 1 --requests 20000
  run none "none-c4" --clients 4 --requests 20000
fi
if has off; then
  run off "off-c1" --clients 1 --requests 20000
  run off "off-c4" --clients 4 --requests 20000
fi
if has always; then
  run always "always-c1" --clients 1 --requests 3000
  run always "always-c4x1" --clients 4 --requests 3000
  run always "always-c16x1" --clients 16 --requests 3000
  run always "always-c16x64" --clients 16 --requests 2000 --pipeline 64
fi
echo "load average: $(cat /proc/loadavg)"
