#!/usr/bin/env bash
# Start two throw-away Slurm clusters on loopback, without systemd, after the verified recipe in
# shared/engines/slurm-up.sh:
#   alpha: slurmctld :6917, slurmd a100-0 :6918 and a100-1 :6919 (gpu:a100:8 each), 910b-0 :6920 (gpu:910b:8)
#   beta:  slurmctld :6927, slurmd 910b-1 :6928 (gpu:910b:8)
# with one munged, and accounting (mariadbd 127.0.0.1:3317 + slurmdbd :6909) so sacct works on both.
# Fake GPUs are character devices (gres/gpu drops file-less GPUs). Each GPU is also 100 `shard`s (gres/shard):
# a job's share of one GPU (zhisuan's A100:0.5) is --gres=shard:K, K = hundredths of the GPU, and jobs on
# shards of one GPU run side by side. Writes $ROOT/env-<cluster>.sh with SLURM_CONF.
# Each cluster lives in a network namespace of its own (scripts/wan-up.sh: alpha in zs-alpha at 198.18.1.2, beta in
# zs-beta at 198.18.2.2): its controller and nodes listen there, reached from this host over the veth link only, as
# a remote center is; slurmdbd stays on this host (the clusters reach it at 198.18.K.1). A center's agent runs in
# its namespace (`ip netns exec zs-alpha zhisuan agent ...`).
# Knobs: ZHISUAN_SLURM_ROOT (/tmp/zhisuan-slurm), ZHISUAN_SLURM_CLUSTERS ("alpha beta"), ZHISUAN_SLURM_PORT_OFFSET
# (0; added to every port above, so a second set of clusters can run beside the first; kept in $ROOT/port-offset
# for a restart; such a second set stays on loopback), ZHISUAN_SLURM_NETNS (1; 0: every cluster on loopback).
# About 10 s when installed.
set -euo pipefail
unset SLURM_CLUSTERS SLURM_CONF
ROOT=${ZHISUAN_SLURM_ROOT:-/tmp/zhisuan-slurm}
CLUSTERS=${ZHISUAN_SLURM_CLUSTERS:-"alpha beta"}
OFFSET=${ZHISUAN_SLURM_PORT_OFFSET:-$(cat "$ROOT/port-offset" 2>/dev/null || echo 0)}
DB_PORT=$((3317 + OFFSET))
DBD_PORT=$((6909 + OFFSET))
SHARDS=100  # shards per GPU: the engine's SHARDS_PER_GPU (src/zhisuan/engines/slurm.py)
NETNS=${ZHISUAN_SLURM_NETNS:-1}
((OFFSET == 0)) || NETNS=0
HERE=$(cd "$(dirname "$0")" && pwd)
M=$ROOT/munge
log() { printf '[slurm-up] %s\n' "$*"; }
alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }
wait_for() {  # wait_for <seconds> <what> <command...>
  local t=$1 what=$2 i; shift 2
  for ((i = 0; i < t * 5; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  echo "timeout waiting for $what (logs under $ROOT)" >&2; return 1
}
index() { case "$1" in alpha) echo 1 ;; beta) echo 2 ;; *) echo 3 ;; esac; }
addr() {  # the cluster's own address (its namespace's side of the link), or loopback
  if ((NETNS)); then echo "198.18.$(index "$1").2"; else echo 127.0.0.1; fi
}
host_addr() {  # this host as the cluster reaches it
  if ((NETNS)); then echo "198.18.$(index "$1").1"; else echo 127.0.0.1; fi
}
in_ns() {  # run a daemon of cluster $1 in its namespace
  local c=$1; shift
  # nsenter, not `ip netns exec`: only the network changes (ip netns exec remounts /sys, without cgroups)
  if ((NETNS)); then nsenter --net="/var/run/netns/zs-$c" "$@"; else "$@"; fi
}
spec() {  # <slurmctld port>|<node>:<gpu type>:<count> ...   (slurmd ports: ctld+1, ctld+2, ...)
  case "$1" in
    alpha) echo "$((6917 + OFFSET))|a100-0:a100:8 a100-1:a100:8 910b-0:910b:8" ;;
    beta) echo "$((6927 + OFFSET))|910b-1:910b:8" ;;
    *) echo "unknown cluster $1" >&2; exit 2 ;;
  esac
}

bash "$(dirname "$0")/apt-ensure.sh" munge slurmctld slurmd slurm-client slurmdbd mariadb-server mariadb-client
# the cluster account zhisuan's jobs run as (never root): examples/networks/slurm2.yaml names it in run_as
id zhisuan-job >/dev/null 2>&1 || useradd --system --user-group --no-create-home --shell /usr/sbin/nologin zhisuan-job

mkdir -p "$M" "$ROOT/jobs"; chmod 1777 "$ROOT/jobs"
echo "$OFFSET" >"$ROOT/port-offset"
chown munge:munge "$M"; chmod 0755 "$M"
[[ -f $M/munge.key ]] || runuser -u munge -- mungekey --create --keyfile="$M/munge.key"
if ! alive "$M/munged.pid"; then
  rm -f "$M/munged.pid"
  runuser -u munge -- munged --socket="$M/munge.socket" --key-file="$M/munge.key" --log-file="$M/munged.log" \
    --pid-file="$M/munged.pid" --seed-file="$M/munged.seed"
fi

for c in $CLUSTERS; do
  IFS='|' read -r ctld nodes <<<"$(spec "$c")"
  ((NETNS)) && bash "$HERE/wan-up.sh" "$c" "$(index "$c")" >/dev/null
  A=$(addr "$c")
  R=$ROOT/$c
  mkdir -p "$R"/{etc,state,spool,log,run,dev}
  cat >"$R/etc/slurm.conf" <<CONF
ClusterName=$c
SlurmctldHost=localhost($A)
SlurmctldPort=$ctld
$( ((NETNS)) || echo CommunicationParameters=NoCtldInAddrAny,NoInAddrAny )
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$M/munge.socket
CredType=cred/munge
StateSaveLocation=$R/state
SlurmdSpoolDir=$R/spool/%n
SlurmctldPidFile=$R/run/slurmctld.pid
SlurmdPidFile=$R/run/slurmd-%n.pid
SlurmctldLogFile=$R/log/slurmctld.log
SlurmdLogFile=$R/log/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=5
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
SlurmdParameters=config_overrides
GresTypes=gpu,shard
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=$(host_addr "$c")
AccountingStoragePort=$DBD_PORT
AccountingStoragePass=$M/munge.socket
AccountingStorageTRES=gres/gpu,gres/gpu:a100,gres/gpu:910b,gres/shard
JobCompType=jobcomp/none
CONF
  : >"$R/etc/gres.conf"; echo "AutoDetect=off" >>"$R/etc/gres.conf"
  i=0
  for n in $nodes; do
    IFS=: read -r name gtype cnt <<<"$n"
    i=$((i + 1))
    echo "NodeName=$name NodeAddr=$A NodeHostname=localhost Port=$((ctld + i)) CPUs=32 RealMemory=256000 Gres=gpu:$gtype:$cnt,shard:$((cnt * SHARDS)) State=UNKNOWN" >>"$R/etc/slurm.conf"
    mkdir -p "$R/dev/$name" "$R/spool/$name"
    for ((g = 0; g < cnt; g++)); do [[ -e $R/dev/$name/gpu$g ]] || mknod "$R/dev/$name/gpu$g" c 1 3; done
    echo "NodeName=$name Name=gpu Type=$gtype File=$R/dev/$name/gpu[0-$((cnt - 1))]" >>"$R/etc/gres.conf"
    for ((g = 0; g < cnt; g++)); do  # each GPU's shards on its own device file, so a share is on one known GPU
      echo "NodeName=$name Name=shard Count=$SHARDS File=$R/dev/$name/gpu$g" >>"$R/etc/gres.conf"
    done
  done
  echo "PartitionName=gpu Nodes=ALL Default=YES MaxTime=INFINITE State=UP" >>"$R/etc/slurm.conf"
  echo "CgroupPlugin=autodetect" >"$R/etc/cgroup.conf"
  echo "export SLURM_CONF=$R/etc/slurm.conf" >"$ROOT/env-$c.sh"
done

D=$ROOT/mysql
mkdir -p "$D"; chown mysql:mysql "$D"
if [[ ! -d $D/data/mysql ]]; then
  mariadb-install-db --no-defaults --user=mysql --datadir="$D/data" --skip-test-db \
    --auth-root-authentication-method=socket >"$D/install.log" 2>&1
fi
if ! alive "$D/mariadbd.pid"; then
  rm -f "$D/mariadbd.pid"
  setsid nohup mariadbd --no-defaults --user=mysql --datadir="$D/data" --socket="$D/mysql.sock" --port=$DB_PORT \
    --bind-address=127.0.0.1 --pid-file="$D/mariadbd.pid" --log-error="$D/error.log" --skip-name-resolve \
    --skip-log-bin --performance-schema=OFF --innodb-buffer-pool-size=64M --max-connections=50 \
    </dev/null >/dev/null 2>&1 &
fi
wait_for 60 mariadbd mariadb-admin --no-defaults -S "$D/mysql.sock" -u root ping
mariadb --no-defaults -S "$D/mysql.sock" -u root -e "CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurmpw';
  GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1'; FLUSH PRIVILEGES;"
mkdir -p "$ROOT/dbd"
cat >"$ROOT/dbd/slurmdbd.conf" <<CONF
AuthType=auth/munge
AuthInfo=socket=$M/munge.socket
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$DBD_PORT
$( ((NETNS)) || echo CommunicationParameters=NoInAddrAny )
SlurmUser=root
LogFile=$ROOT/dbd/slurmdbd.log
PidFile=$ROOT/dbd/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=slurmpw
StorageLoc=slurm_acct_db
CONF
chmod 0600 "$ROOT/dbd/slurmdbd.conf"
alive "$ROOT/dbd/slurmdbd.pid" || SLURM_CONF=$ROOT/dbd/slurm.conf slurmdbd
first=${CLUSTERS%% *}
export SLURM_CONF=$ROOT/$first/etc/slurm.conf
wait_for 60 slurmdbd sacctmgr -n list cluster
for c in $CLUSTERS; do
  sacctmgr -n -P list cluster format=cluster | grep -qx "$c" || sacctmgr -i add cluster "$c" >/dev/null
done

for c in $CLUSTERS; do
  R=$ROOT/$c; export SLURM_CONF=$R/etc/slurm.conf
  IFS='|' read -r ctld nodes <<<"$(spec "$c")"
  alive "$R/run/slurmctld.pid" || in_ns "$c" slurmctld -f "$SLURM_CONF"
  wait_for 30 "slurmctld $c" scontrol ping
  for n in $nodes; do
    name=${n%%:*}
    alive "$R/run/slurmd-$name.pid" || in_ns "$c" slurmd -f "$SLURM_CONF" -N "$name"
  done
done
for c in $CLUSTERS; do
  export SLURM_CONF=$ROOT/$c/etc/slurm.conf
  # a controller that crashed may drain nodes it finds running jobs it forgot: bring them back
  for n in $(sinfo -h -N -t drain,drained,draining -o %N); do scontrol update NodeName="$n" State=RESUME; done
  wait_for 60 "nodes of $c" bash -c '! sinfo -h -N -o "%T" | grep -qvE "^(idle|mixed|allocated)$"'
  log "$c up: $(sinfo -h -N -o '%N=%T/%G' | tr '\n' ' ')"
done
