# Sourced by the bench scripts that start servers: the repository root, this build's binary,
# and a scratch folder whose servers (their pids appended to `pids`) are stopped and which is
# removed however the script ends.
#
#   . "$(dirname "$0")/scratch.sh" NAME      (the folder is /tmp/custos-NAME-bench.XXXXXX)
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
custos=$root/.build/release/custos
[ -x "$custos" ] || { echo "build first: swift build -c release" >&2; exit 2; }
dir=$(mktemp -d "/tmp/custos-$1-bench.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT
