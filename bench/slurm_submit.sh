#!/usr/bin/env bash
# A Slurm submission's added latency (docs/benchmarks.md, docs/schedulers.md): two one-host
# Slurm controllers from Debian's packages in a scratch folder, loopback only, one munged for
# both, the same slurm.conf as Tests/IntegrationTests/SlurmJobSubmitTests.swift (nodes
# eu-gpu-01 in eu-central-1 and us-gpu-01 in us-west-2) except that only the first runs the
# shipped contrib/slurm/job_submit.lua, which asks a running `custos serve` (the example
# policies with the submitting user added to ONC-301, its audit log on, both nodes in its
# inventory). Rounds alternate: N `sbatch --hold` of an allowed ONC-301 job to each controller,
# timed around the sbatch process (its own start-up is in both figures, so the difference is
# what job_submit.lua and Custos add). No slurmd runs: held jobs are accepted or refused at
# submission, which is what is timed. Everything is stopped and removed at the end.
#
#   bench/slurm_submit.sh [ROUNDS] [N]      (default 5 rounds of 40; `swift build -c release` first)
set -euo pipefail
rounds=${1:-5}
n=${2:-40}
. "$(dirname "$0")/scratch.sh" slurm
for t in /usr/sbin/slurmctld /usr/sbin/munged /usr/bin/sbatch /usr/bin/scontrol /usr/bin/lua5.1; do
  [ -x "$t" ] || { echo "$t is missing: make deps installs Debian's slurmctld, munge, lua5.1, lua-socket and lua-cjson" >&2; exit 2; }
done

user=$(id -un)
host=$(hostname -s)
ports=($(python3 -c 'import socket
s=[socket.socket() for _ in range(4)]
[x.bind(("127.0.0.1",0)) for x in s]
print(" ".join(str(x.getsockname()[1]) for x in s))'))

# Custos: the example policies, the submitting user a data scientist of ONC-301.
mkdir -p "$dir/custos"
cp -r "$root/policies" "$dir/custos/policies"
python3 - "$dir/custos/policies/entities.json" "$user" <<'PY'
import json, sys
path, user = sys.argv[1], sys.argv[2]
entities = json.load(open(path))
entities.insert(0, {"uid": {"type": "User", "id": user}, "attrs": {"studies": [{"__entity": {"type": "Study", "id": "ONC-301"}}]},
                    "parents": [{"type": "Role", "id": "data_scientist"}]})
json.dump(entities, open(path, "w"))
PY
"$custos" serve --policies "$dir/custos/policies" --state "$dir/custos/state" --socket "$dir/custos/c.sock" \
  > "$dir/custos/daemon.out" 2> "$dir/custos/daemon.log" &
pids+=($!)
until "$custos" call health --socket "$dir/custos/c.sock" >/dev/null 2>&1; do sleep 0.1; done
"$custos" call nodes.sync --socket "$dir/custos/c.sock" \
  '{"nodes": [{"name": "eu-gpu-01", "region": "eu-central-1"}, {"name": "us-gpu-01", "region": "us-west-2"}]}' > /dev/null

mkdir -p "$dir/munge"
chmod 700 "$dir/munge"
head -c 1024 /dev/urandom > "$dir/munge/munge.key"
chmod 600 "$dir/munge/munge.key"
/usr/sbin/munged -F -f --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.sock" --pid-file="$dir/munge/munged.pid" \
  --log-file="$dir/munge/munged.log" --seed-file="$dir/munge/munged.seed" > /dev/null 2>&1 &
pids+=($!)
until [ -S "$dir/munge/munge.sock" ]; do sleep 0.1; done

controller() {  # name port plugin(yes|no)
  local c=$dir/$1
  mkdir -p "$c/ctld" "$c/log"
  cat > "$c/slurm.conf" <<CONF
ClusterName=bench$1
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$2
SlurmdPort=${ports[3]}
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.sock
CredType=cred/munge
SlurmUser=$user
SlurmdUser=$user
StateSaveLocation=$c/ctld
SlurmdSpoolDir=$c/spool/%n
SlurmctldPidFile=$c/ctld/slurmctld.pid
SlurmdPidFile=$c/spool/slurmd-%n.pid
SlurmctldLogFile=$c/log/slurmctld.log
ProctrackType=proctrack/pgid
TaskPlugin=task/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
SwitchType=switch/none
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
MailProg=/bin/true
NodeName=eu-gpu-01 NodeHostname=$host NodeAddr=127.0.0.1 CPUs=1 RealMemory=100 Features=region=eu-central-1
NodeName=us-gpu-01 NodeHostname=$host NodeAddr=127.0.0.1 CPUs=1 RealMemory=100 Features=region=us-west-2
PartitionName=gpu Nodes=eu-gpu-01,us-gpu-01 Default=YES State=UP MaxTime=INFINITE
CONF
  if [ "$3" = yes ]; then
    echo "JobSubmitPlugins=lua" >> "$c/slurm.conf"
    cp "$root/contrib/slurm/job_submit.lua" "$c/job_submit.lua"
  fi
  SLURM_CONF=$c/slurm.conf CUSTOS_SOCKET=$dir/custos/c.sock /usr/sbin/slurmctld -D -i > "$c/log/slurmctld.out" 2>&1 &
  pids+=($!)
  until SLURM_CONF=$c/slurm.conf /usr/bin/scontrol ping 2>/dev/null | grep -q UP; do sleep 0.2; done
}
controller with "${ports[0]}" yes
controller without "${ports[1]}" no
mkdir -p "$dir/jobs"
cd "$dir/jobs"

# One submission, checked: with the plugin it must have been placed by Custos.
SLURM_CONF=$dir/with/slurm.conf /usr/bin/sbatch --parsable --hold -A ONC-301 \
  --comment "purpose=primary_research datasets=onc301-de-clinical" --wrap true > "$dir/first"
SLURM_CONF=$dir/with/slurm.conf /usr/bin/scontrol show job "$(cat "$dir/first")" | grep -q 'AdminComment=custos' \
  || { echo "the job_submit.lua controller did not ask Custos:"; tail -20 "$dir/with/log/slurmctld.log"; exit 1; }

submit() {  # conf -> prints one wall time in microseconds per sbatch
  local conf=$1 t0 t1
  for _ in $(seq "$n"); do
    t0=$(date +%s%N)
    SLURM_CONF=$conf /usr/bin/sbatch --parsable --hold -A ONC-301 \
      --comment "purpose=primary_research datasets=onc301-de-clinical" --wrap true > /dev/null
    t1=$(date +%s%N)
    echo $(( (t1 - t0) / 1000 ))
  done
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2 ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2)}'; }
echo "load average: $(cat /proc/loadavg)"
echo "rounds: $rounds x $n sbatch --hold per controller, alternating; milliseconds, median per round"
withs=(); withouts=(); diffs=()
for r in $(seq "$rounds"); do
  w=$(submit "$dir/with/slurm.conf" | median)
  wo=$(submit "$dir/without/slurm.conf" | median)
  d=$(( ${w%.*} - ${wo%.*} ))
  printf 'round %d: with job_submit.lua + custos %.2f ms, without %.2f ms, added %.2f ms\n' "$r" \
    "$(echo "$w / 1000" | bc -l)" "$(echo "$wo / 1000" | bc -l)" "$(echo "$d / 1000" | bc -l)"
  withs+=("$w"); withouts+=("$wo"); diffs+=("$d")
done
mw=$(printf '%s\n' "${withs[@]}" | median)
mwo=$(printf '%s\n' "${withouts[@]}" | median)
md=$(printf '%s\n' "${diffs[@]}" | median)
lo=$(printf '%s\n' "${diffs[@]}" | sort -n | head -1)
hi=$(printf '%s\n' "${diffs[@]}" | sort -n | tail -1)
printf 'median over rounds: with %.2f ms, without %.2f ms, added %.2f ms (rounds %.2f to %.2f ms)\n' \
  "$(echo "$mw / 1000" | bc -l)" "$(echo "$mwo / 1000" | bc -l)" "$(echo "$md / 1000" | bc -l)" \
  "$(echo "$lo / 1000" | bc -l)" "$(echo "$hi / 1000" | bc -l)"
echo "load average: $(cat /proc/loadavg)"
