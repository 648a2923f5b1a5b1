#!/usr/bin/env bash
# Stop the cluster of scripts/slurm/start_local_cluster.sh: cancel its leftover jobs, then end each
# daemon by the pid recorded at start (SIGTERM, SIGKILL after 30 s). Nothing is killed by name.
# Exit status: 0 when every recorded daemon is gone, 1 otherwise.
set -uo pipefail

STATE="${LOCAL_SLURM_STATE:-/var/lib/lp-local-slurm}"
log() { echo "[stop_local_cluster $(date +%T)] $*"; }

# running NAME: print the recorded pid of daemon NAME if that process is alive and runs NAME.
running() {
    local pid
    pid="$(cat "$STATE/pids/$1.pid" 2>/dev/null)" || return 0
    if [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$1" ]; then
        echo "$pid"
    fi
}

[ -d "$STATE/pids" ] || { log "nothing to stop (no $STATE/pids)"; exit 0; }

# Jobs still queued or running would otherwise leave orphaned job processes behind.
if [ -n "$(running slurmctld)" ]; then
    jobs="$(squeue -h -o %i 2>/dev/null | tr '\n' ' ')"
    if [ -n "${jobs// /}" ]; then
        log "cancelling jobs $jobs"
        # shellcheck disable=SC2086
        scancel $jobs 2>/dev/null
        for _ in $(seq 60); do [ -z "$(squeue -h -t R,CG -o %i 2>/dev/null)" ] && break; sleep 0.5; done
    fi
fi

rc=0
for name in slurmd slurmctld slurmdbd mariadbd munged; do   # reverse start order
    pid="$(running "$name")"
    [ -n "$pid" ] || { rm -f "$STATE/pids/$name.pid"; continue; }
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 60); do [ -n "$(running "$name")" ] || break; sleep 0.5; done
    if [ -n "$(running "$name")" ]; then
        log "$name (pid $pid) ignored SIGTERM; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null
        sleep 1
    fi
    if [ -n "$(running "$name")" ]; then
        log "ERROR: could not stop $name (pid $pid)"
        rc=1
    else
        rm -f "$STATE/pids/$name.pid"
        log "stopped $name (pid $pid)"
    fi
done
exit "$rc"
