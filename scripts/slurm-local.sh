#!/usr/bin/env bash
# A real single-node SLURM cluster on this machine (slurmctld + slurmd, munge for auth), to run
# the workflow through profiles/slurm exactly as on a cluster. Needs root.
#
#   bash scripts/slurm-local.sh install   # Debian's slurm-wlm and munge (apt-get)
#   bash scripts/slurm-local.sh start     # configure and start the daemons; waits for the node
#   bash scripts/slurm-local.sh stop
#
# The cluster has no accounting database (status comes from squeue, jobs are kept 10 minutes
# after they end: MinJobAge=600) and no GPU, so GPU requests must be switched off for it.
set -euo pipefail
conf_dir=/etc/slurm
node="$(hostname -s)"

install() {
    if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge
    fi
}

start() {
    command -v slurmctld >/dev/null || { echo "slurm-local: slurmctld not installed (run: $0 install)" >&2; exit 2; }
    if [ ! -s /etc/munge/munge.key ]; then
        mkdir -p /etc/munge
        dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
    fi
    chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
    mkdir -p /run/munge /var/lib/munge /var/log/munge && chown munge:munge /run/munge /var/lib/munge /var/log/munge
    pgrep -x munged >/dev/null || runuser -u munge -- /usr/sbin/munged
    mem_mb=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
    mkdir -p "$conf_dir" /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
    cat > "$conf_dir/slurm.conf" <<CONF
ClusterName=cellbench
SlurmctldHost=$node
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
MpiDefault=none
ReturnToService=2
MinJobAge=600
NodeName=$node CPUs=$(nproc) RealMemory=$mem_mb State=UNKNOWN
PartitionName=main Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
    pgrep -x slurmctld >/dev/null || slurmctld
    pgrep -x slurmd >/dev/null || slurmd
    for _ in $(seq 60); do
        if sinfo -h -o %t 2>/dev/null | grep -qE '^(idle|mix|alloc)'; then
            echo "slurm-local: node $node is up"; sinfo; return 0
        fi
        sleep 1
    done
    echo "slurm-local: the node did not come up; see /var/log/slurm/" >&2
    tail -20 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log >&2 || true
    exit 1
}

stop() {
    pkill -x slurmd || true
    pkill -x slurmctld || true
}

case "${1:-start}" in
    install) install ;;
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 install|start|stop" >&2; exit 2 ;;
esac
