#!/usr/bin/env bash
# Start a throw-away Slurm cluster on loopback (munge + slurmctld + one slurmd with 8 fake a100 GPUs),
# without systemd and without accounting. After the verified recipe in shared/engines/slurm-up.sh.
# Writes $ROOT/env.sh with SLURM_CONF. Knobs: ZHISUAN_SLURM_ROOT (/tmp/zhisuan-slurm), ZHISUAN_SLURM_PORT (6917).
set -euo pipefail
unset SLURM_CLUSTERS SLURM_CONF
ROOT=${ZHISUAN_SLURM_ROOT:-/tmp/zhisuan-slurm}
CTLD=${ZHISUAN_SLURM_PORT:-6917}
log() { printf '[slurm-up] %s\n' "$*"; }
alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

missing=()
for p in munge slurmctld slurmd slurm-client; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  log "apt-get install ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

M=$ROOT/munge
mkdir -p "$M" "$ROOT"/{etc,state,spool,log,run,dev,jobs}
chown munge:munge "$M"; chmod 0755 "$M"
[[ -f $M/munge.key ]] || runuser -u munge -- mungekey --create --keyfile="$M/munge.key"
if ! alive "$M/munged.pid"; then
  rm -f "$M/munged.pid"
  runuser -u munge -- munged --socket="$M/munge.socket" --key-file="$M/munge.key" --log-file="$M/munged.log" \
    --pid-file="$M/munged.pid" --seed-file="$M/munged.seed"
fi
# gres/gpu drops file-less GPUs: each fake GPU gets a /dev/null-like character device
for g in 0 1 2 3 4 5 6 7; do [[ -e $ROOT/dev/gpu$g ]] || mknod "$ROOT/dev/gpu$g" c 1 3; done
cat >"$ROOT/etc/slurm.conf" <<CONF
ClusterName=zhisuan
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$CTLD
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$M/munge.socket
CredType=cred/munge
StateSaveLocation=$ROOT/state
SlurmdSpoolDir=$ROOT/spool/%n
SlurmctldPidFile=$ROOT/run/slurmctld.pid
SlurmdPidFile=$ROOT/run/slurmd-%n.pid
SlurmctldLogFile=$ROOT/log/slurmctld.log
SlurmdLogFile=$ROOT/log/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
SchedulerType=sched/backfill
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
SlurmdParameters=config_overrides
GresTypes=gpu
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
NodeName=a100-0 NodeAddr=127.0.0.1 NodeHostname=localhost Port=$((CTLD + 1)) CPUs=32 RealMemory=256000 Gres=gpu:a100:8 State=UNKNOWN
PartitionName=gpu Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
printf 'AutoDetect=off\nNodeName=a100-0 Name=gpu Type=a100 File=%s/dev/gpu[0-7]\n' "$ROOT" >"$ROOT/etc/gres.conf"
echo "CgroupPlugin=autodetect" >"$ROOT/etc/cgroup.conf"
mkdir -p "$ROOT/spool/a100-0"
export SLURM_CONF=$ROOT/etc/slurm.conf
alive "$ROOT/run/slurmctld.pid" || slurmctld -f "$SLURM_CONF"
for i in $(seq 150); do scontrol ping >/dev/null 2>&1 && break; sleep 0.2; done
alive "$ROOT/run/slurmd-a100-0.pid" || slurmd -f "$SLURM_CONF" -N a100-0
for i in $(seq 300); do sinfo -h -N -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)$' && break; sleep 0.2; done
echo "export SLURM_CONF=$SLURM_CONF" >"$ROOT/env.sh"
log "slurm $(slurmctld -V | awk '{print $2}') up: $(sinfo -h -N -o '%N=%T/%G')"
