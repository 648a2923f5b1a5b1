#!/usr/bin/env bash
# Start a real single-node SLURM cluster on this machine, for CI and for trying profiles/slurm.
#
#   sudo bash scripts/slurm/start_local_cluster.sh      # exits 0 once the node is idle
#   sudo bash scripts/slurm/stop_local_cluster.sh       # stops exactly the daemons started here
#
# Debian 12 (bookworm), as root, no systemd needed. It installs Debian's packages when missing
# (munge, slurmctld, slurmd, slurm-client, slurmdbd, mariadb-server), writes a one-node config,
# and starts munged, mariadbd, slurmdbd, slurmctld and slurmd in the foreground under setsid,
# recording each pid in $STATE/pids/<name>.pid so that the stop script ends them by pid.
#
# slurmdbd + MariaDB are there so that `sacct` works: the Snakemake SLURM plugin asks sacct for job
# states by default, and without accounting it loses its jobs and hangs.
#
# The node declares FAKE_GPUS fake GPUs (gres/gpu backed by dummy character devices), so the
# unmodified GPU requests of profiles/slurm (`gpu: 1` -> sbatch --gpus=1) are accepted. SLURM then
# sets CUDA_VISIBLE_DEVICES, but there is no GPU behind it: torch sees none and runs on CPU.
#
# Settings (environment): LOCAL_SLURM_FAKE_GPUS (2), LOCAL_SLURM_PARTITION (debug),
# LOCAL_SLURM_STATE (/var/lib/lp-local-slurm), LOCAL_SLURM_TIMEOUT (90 s per step).
# Exit status: 0 when the cluster is up (or already was), 1 with "ERROR: ..." otherwise.
set -euo pipefail

FAKE_GPUS="${LOCAL_SLURM_FAKE_GPUS:-2}"
PARTITION="${LOCAL_SLURM_PARTITION:-debug}"
STATE="${LOCAL_SLURM_STATE:-/var/lib/lp-local-slurm}"
TIMEOUT="${LOCAL_SLURM_TIMEOUT:-90}"
CLUSTER=lpcluster
DB_PASS=lp-local-slurm    # MariaDB listens on 127.0.0.1 only; a throwaway test cluster
NODE="$(hostname -s)"
T0=$(date +%s.%N)

log() { echo "[start_local_cluster $(date +%T)] $*"; }
die() {
    echo "[start_local_cluster] ERROR: $*" >&2
    for f in /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log /var/log/slurm/slurmdbd.log "$STATE"/logs/*.out; do
        [ -s "$f" ] && { echo "--- last lines of $f" >&2; tail -n 10 "$f" >&2; }
    done
    exit 1
}
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

[ "$(id -u)" = 0 ] || die "must run as root"
command -v apt-get >/dev/null || die "apt-get not found: this script needs Debian or Ubuntu"
mkdir -p "$STATE/pids" "$STATE/logs"

# Daemon name -> the program name that /proc/<pid>/comm shows for it.
DAEMONS=(munged mariadbd slurmdbd slurmctld slurmd)

# running NAME: print the recorded pid of daemon NAME if that process is alive and runs NAME.
running() {
    local pid
    pid="$(cat "$STATE/pids/$1.pid" 2>/dev/null)" || return 0
    # A zombie (state Z) counts as stopped: PID 1 here reaps exited processes late.
    if [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$1" ]; then
        echo "$pid"
    fi
}

all_running=1
for d in "${DAEMONS[@]}"; do [ -n "$(running "$d")" ] || all_running=0; done
if [ "$all_running" = 1 ] && [ "$(sinfo -h -n "$NODE" -o %T 2>/dev/null)" = idle ]; then
    log "already running: $(for d in "${DAEMONS[@]}"; do printf '%s=%s ' "$d" "$(running "$d")"; done)"
    exit 0
fi
for d in "${DAEMONS[@]}"; do
    # Half a cluster from an earlier run, or daemons somebody else started: refuse rather than guess.
    for pid in $(pgrep -x "$d" || true); do
        [ "$pid" = "$(running "$d")" ] && continue
        die "a $d process not started by this script runs (pid $pid); stop it first"
    done
    [ -z "$(running "$d")" ] || die "$d runs but the cluster is not idle; run scripts/slurm/stop_local_cluster.sh first"
done

# --- packages ---------------------------------------------------------------------------------
PACKAGES=(munge slurmctld slurmd slurm-client slurmdbd mariadb-server)
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    t=$(date +%s.%N)
    log "installing ${missing[*]}"
    # Keep the packages' maintainer scripts from starting daemons that would not be ours.
    own_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && own_policy=1
    fi
    ok=1
    { DEBIAN_FRONTEND=noninteractive apt-get update -q && DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "${missing[@]}"; } >"$STATE/logs/apt.log" 2>&1 || ok=0
    [ "$own_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
    [ "$ok" = 1 ] || { tail -n 20 "$STATE/logs/apt.log" >&2; die "apt-get failed (log: $STATE/logs/apt.log)"; }
    log "packages installed in $(elapsed "$t") s"
fi

# --- configuration ----------------------------------------------------------------------------
install -d -o munge -g munge -m 0755 /run/munge
install -d -o slurm -g slurm -m 0755 /run/slurm /var/log/slurm /var/lib/slurm /var/lib/slurm/slurmctld
install -d -m 0755 /var/lib/slurm/slurmd /etc/slurm
install -d -o mysql -g mysql -m 0755 /run/mysqld
[ -s /etc/munge/munge.key ] || mungekey --create --keyfile=/etc/munge/munge.key
chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key

MEM_MB=$(free -m | awk '/^Mem:/ { print $2 }')
# Leave the OS some memory; what is left is what jobs may ask for.
REAL_MEM=$(( MEM_MB - (MEM_MB / 20 > 512 ? MEM_MB / 20 : 512) ))
GRES_NODE=""
echo "# no GPUs" > /etc/slurm/gres.conf
if [ "$FAKE_GPUS" -gt 0 ]; then
    # gres/gpu needs File= entries that are character devices; SLURM only stat()s them here.
    install -d -m 0755 /var/lib/slurm/fake-gpu
    for i in $(seq 0 $((FAKE_GPUS - 1))); do
        [ -c /var/lib/slurm/fake-gpu/nvidia$i ] || mknod /var/lib/slurm/fake-gpu/nvidia$i c 195 "$i"
    done
    GRES_NODE="Gres=gpu:$FAKE_GPUS"
    printf 'AutoDetect=off\nNodeName=%s Name=gpu File=/var/lib/slurm/fake-gpu/nvidia[0-%d]\n' "$NODE" $((FAKE_GPUS - 1)) > /etc/slurm/gres.conf
fi

cat > /etc/slurm/slurm.conf <<CONF
# Written by scripts/slurm/start_local_cluster.sh: a one-node test cluster.
ClusterName=$CLUSTER
SlurmctldHost=$NODE(127.0.0.1)
AuthType=auth/munge
CredType=cred/munge
SlurmUser=slurm
SlurmdUser=root
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
# No cgroups and no systemd on a CI machine.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
MpiDefault=none
SwitchType=switch/none
ReturnToService=2
# Seconds between SIGTERM and SIGKILL when a job is cancelled or times out.
KillWait=15
MinJobAge=300
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# Without it a job that gives no --mem takes the whole node.
DefMemPerCPU=512
GresTypes=gpu
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStorageTRES=gres/gpu
JobCompType=jobcomp/filetxt
JobCompLoc=/var/log/slurm/jobcomp.log
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=$REAL_MEM $GRES_NODE State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
CONF

cat > /etc/slurm/slurmdbd.conf <<CONF
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
SlurmUser=slurm
LogFile=/var/log/slurm/slurmdbd.log
PidFile=/run/slurm/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
CONF
# slurmdbd refuses a config that others can read.
chown slurm:slurm /etc/slurm/slurmdbd.conf && chmod 0600 /etc/slurm/slurmdbd.conf

# --- daemons ----------------------------------------------------------------------------------
# start NAME COMMAND...: run a daemon in the foreground, detached from this shell, record its pid.
start() {
    local name="$1" pid
    shift
    # Non-interactive shell: setsid execs in place, so $! is the daemon itself.
    setsid "$@" >>"$STATE/logs/$name.out" 2>&1 </dev/null &
    pid=$!
    for _ in $(seq 50); do
        [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ] && break
        sleep 0.1
    done
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ] || die "$name did not start (see $STATE/logs/$name.out)"
    echo "$pid" > "$STATE/pids/$name.pid"
    log "started $name (pid $pid)"
}

# wait_until NAME COMMAND...: poll COMMAND until it succeeds, failing if daemon NAME died.
wait_until() {
    local name="$1" deadline=$(( $(date +%s) + TIMEOUT ))
    shift
    until "$@" >/dev/null 2>&1; do
        [ -n "$(running "$name")" ] || die "$name died during start-up"
        [ "$(date +%s)" -lt "$deadline" ] || die "timed out after $TIMEOUT s waiting for $name"
        sleep 0.3
    done
}

rm -f /run/munge/munge.socket.2 /run/munge/munge.socket.2.lock
start munged setpriv --reuid=munge --regid=munge --init-groups /usr/sbin/munged --foreground
wait_until munged sh -c "munge -n | unmunge"

[ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql --datadir=/var/lib/mysql >"$STATE/logs/mariadb-install-db.out" 2>&1
start mariadbd /usr/sbin/mariadbd --user=mysql --bind-address=127.0.0.1 --innodb-buffer-pool-size=128M
wait_until mariadbd mariadb-admin ping
mariadb <<SQL || die "could not create the accounting database in MariaDB"
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
SQL
start slurmdbd /usr/sbin/slurmdbd -D
wait_until slurmdbd sacctmgr -n list cluster
sacctmgr -n -P list cluster format=cluster | grep -qx "$CLUSTER" || sacctmgr -i add cluster "$CLUSTER" >/dev/null

start slurmctld /usr/sbin/slurmctld -D -i
wait_until slurmctld scontrol ping
SLURMD_STARTED=$(( $(date +%s) - 1 ))
start slurmd /usr/sbin/slurmd -D -N "$NODE"

# The node must be idle as registered by the slurmd just started, not from slurmctld's saved state.
deadline=$(( $(date +%s) + TIMEOUT ))
while :; do
    node_state="$(sinfo -h -n "$NODE" -o %T 2>/dev/null || true)"
    registered="$(scontrol show node "$NODE" 2>/dev/null | sed -n 's/.*SlurmdStartTime=\([^ ]*\).*/\1/p')"
    registered_s="$(date -d "$registered" +%s 2>/dev/null || echo 0)"
    if [ "$registered_s" -ge "$SLURMD_STARTED" ]; then
        [ "$node_state" = idle ] && break
        # A node drained by an earlier run (e.g. another GPU count) stays drained until resumed.
        case "$node_state" in drain*|down*|inval*) scontrol update nodename="$NODE" state=resume >/dev/null 2>&1 || true ;; esac
    fi
    [ -n "$(running slurmd)" ] || die "slurmd died during start-up"
    [ "$(date +%s)" -lt "$deadline" ] || die "node $NODE is '$node_state', not idle, after $TIMEOUT s"
    sleep 0.5
done
log "cluster up in $(elapsed "$T0") s: $(sinfo -h -o '%P %T %N gres=%G')"
