#!/usr/bin/env bash
# Fleet mode's figures (docs/fleet.md, docs/benchmarks.md): a throwaway PostgreSQL server from
# Debian's postgresql package (initdb in a scratch folder, Unix socket only, scram-sha-256 with
# the password in a PGPASSFILE), three daemons on it, then `custos bench fleet`: N hold.set
# changes through the first daemon, writes per second and the propagation delay to the other
# two. Everything is stopped and removed at the end.
#
#   bench/fleet.sh [CHANGES]        (default 1000; run `swift build -c release` first)
set -euo pipefail
changes=${1:-1000}
. "$(dirname "$0")/scratch.sh" fleet
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
[ -x "$pgbin/postgres" ] || { echo "install Debian's postgresql (make deps)" >&2; exit 2; }

# PostgreSQL refuses to run as root: under root it runs as the package's postgres user.
as_pg=()
if [ "$(id -u)" -eq 0 ]; then as_pg=(setpriv --reuid=postgres --regid=postgres --clear-groups); fi
mkdir -p "$dir/data" "$dir/s"
chmod 700 "$dir/data"
password="bench-$RANDOM$RANDOM"
echo "$password" > "$dir/pwinit"
[ ${#as_pg[@]} -eq 0 ] || chown postgres:postgres "$dir" "$dir/data" "$dir/s" "$dir/pwinit"
"${as_pg[@]}" "$pgbin/initdb" -D "$dir/data" -U custos --auth-local=scram-sha-256 --auth-host=reject \
  --pwfile="$dir/pwinit" -E UTF8 --no-sync --no-instructions > "$dir/initdb.log"
rm -f "$dir/pwinit"
echo "$dir/s:5432:*:custos:$password" > "$dir/pgpass"
chmod 600 "$dir/pgpass"
export PGPASSFILE=$dir/pgpass
"${as_pg[@]}" "$pgbin/postgres" -D "$dir/data" -c listen_addresses= -c unix_socket_directories="$dir/s" \
  > "$dir/postgres.log" 2>&1 &
pids+=($!)
until "$pgbin/psql" -h "$dir/s" -U custos -d postgres -qAtc 'SELECT 1' >/dev/null 2>&1; do sleep 0.1; done
"$pgbin/psql" -h "$dir/s" -U custos -d postgres -qc 'CREATE DATABASE custos'

cat > "$dir/config.json" <<EOF
{"state": {"store": "postgresql:///custos?host=$dir/s&user=custos"}}
EOF
sockets=()
for i in 1 2 3; do
  "$custos" serve --policies "$root/policies" --state "$dir/state$i" --socket "$dir/d$i.sock" \
    --config "$dir/config.json" 2> "$dir/daemon$i.log" &
  pids+=($!)
  sockets+=(--socket "$dir/d$i.sock")
done
for i in 1 2 3; do
  until "$custos" call health --socket "$dir/d$i.sock" >/dev/null 2>&1; do sleep 0.1; done
done
"$custos" bench fleet "${sockets[@]}" --changes "$changes"
