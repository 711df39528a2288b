#!/usr/bin/env bash
# A one-node Slurm cluster on this host, for tests and CI.
#
#   scripts/local-slurm.sh start    install (Debian slurm-wlm + munge, as root) if missing,
#                                   write slurm.conf, start munged, slurmctld, slurmd and
#                                   wait until `sinfo` shows the node idle (idempotent)
#   scripts/local-slurm.sh stop     stop slurmd, slurmctld and munged started by `start`
#   scripts/local-slurm.sh status   print `sinfo` and exit 0 when the node is usable
#
# Environment: LOCAL_SLURM_TIMEOUT (seconds to wait for the node, default 60).
set -euo pipefail

CONF_DIR=/etc/slurm
CONF="$CONF_DIR/slurm.conf"
STATE=/var/spool/slurmctld
SPOOL=/var/spool/slurmd
LOGDIR=/var/log/slurm
RUNDIR=/run/local-slurm
PARTITION=debug
TIMEOUT="${LOCAL_SLURM_TIMEOUT:-60}"

die() {
  echo "local-slurm: $*" >&2
  exit 1
}
log() { echo "local-slurm: $*" >&2; }

need_root() {
  [ "$(id -u)" = 0 ] || die "must run as root to $1 (current uid $(id -u))"
}

install_if_missing() {
  if command -v slurmctld >/dev/null && command -v slurmd >/dev/null &&
    command -v sbatch >/dev/null && command -v munged >/dev/null; then
    return 0
  fi
  need_root "install slurm-wlm and munge"
  command -v apt-get >/dev/null || die "slurm is not installed and apt-get is not available"
  log "installing slurm-wlm and munge from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null ||
    die "apt-get update failed"
  apt-get -o DPkg::Lock::Timeout=600 install -y -q slurm-wlm munge >/dev/null ||
    die "apt-get install slurm-wlm munge failed"
}

pid_alive() { # name
  local f="$RUNDIR/$1.pid"
  [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null
}

node_line() {
  # NodeName=... CPUs=... RealMemory=... from slurmd's own view of the hardware.
  local line host
  host="$(hostname)"
  line="$(slurmd -C 2>/dev/null | head -n 1)" || true
  if [ -z "$line" ]; then
    local cpus mem
    cpus="$(nproc)"
    mem="$(awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo)"
    line="NodeName=$host CPUs=$cpus RealMemory=$mem"
  fi
  # Keep a margin on memory so the node is never drained for "Low RealMemory".
  local mem
  mem="$(echo "$line" | sed -nE 's/.*RealMemory=([0-9]+).*/\1/p')"
  if [ -n "$mem" ]; then
    line="$(echo "$line" | sed -E "s/RealMemory=[0-9]+/RealMemory=$((mem * 9 / 10))/")"
  fi
  echo "$line" | sed -E "s/NodeName=[^ ]+/NodeName=$host/"
}

write_conf() {
  local host
  host="$(hostname)"
  mkdir -p "$CONF_DIR" "$STATE" "$SPOOL" "$LOGDIR" "$RUNDIR"
  local tmp="$CONF.tmp.$$"
  cat >"$tmp" <<CONF
# Written by funcx-endpoint scripts/local-slurm.sh: a one-node cluster for tests.
ClusterName=localcluster
SlurmctldHost=$host
AuthType=auth/munge
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
SlurmctldPidFile=$RUNDIR/slurmctld.pid
SlurmdPidFile=$RUNDIR/slurmd.pid
SlurmctldLogFile=$LOGDIR/slurmctld.log
SlurmdLogFile=$LOGDIR/slurmd.log
StateSaveLocation=$STATE
SlurmdSpoolDir=$SPOOL
SlurmctldTimeout=30
SlurmdTimeout=60
InactiveLimit=0
MinJobAge=300
KillWait=5
Waittime=0
SchedulerParameters=sched_interval=2
$(node_line) State=UNKNOWN
PartitionName=$PARTITION Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF
  if [ -f "$CONF" ] && cmp -s "$tmp" "$CONF"; then
    rm -f "$tmp"
  else
    mv "$tmp" "$CONF"
  fi
}

start_munge() {
  if munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then return 0; fi
  if [ ! -s /etc/munge/munge.key ]; then
    log "creating /etc/munge/munge.key"
    if command -v mungekey >/dev/null; then
      mungekey --create --force >/dev/null
    else
      dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
    fi
  fi
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown -R munge:munge /etc/munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null || true
  chmod 0700 /etc/munge
  chmod 0400 /etc/munge/munge.key
  if id munge >/dev/null 2>&1; then
    su -s /bin/sh munge -c "munged" 2>/dev/null || munged --force || die "munged failed to start"
  else
    munged --force || die "munged failed to start"
  fi
  for _ in $(seq 1 50); do
    if munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  die "munged does not answer (see /var/log/munge/munged.log)"
}

node_state() {
  sinfo --noheader -N -o "%t" 2>/dev/null | head -n 1 | tr -d ' *'
}

wait_idle() {
  local deadline=$((SECONDS + TIMEOUT)) st=""
  while [ $SECONDS -lt $deadline ]; do
    st="$(node_state || true)"
    case "$st" in
      idle | mix | alloc) return 0 ;;
      down | drain | drained | fail) scontrol update nodename="$(hostname)" state=resume \
        >/dev/null 2>&1 || true ;;
    esac
    sleep 0.5
  done
  die "node not idle after ${TIMEOUT}s (state '${st:-none}'; see $LOGDIR/slurmctld.log, slurmd.log)"
}

cmd_start() {
  install_if_missing
  need_root "start slurmctld and slurmd"
  write_conf
  start_munge
  if ! pid_alive slurmctld; then
    log "starting slurmctld"
    slurmctld -f "$CONF" || die "slurmctld failed to start (see $LOGDIR/slurmctld.log)"
  fi
  for _ in $(seq 1 100); do
    scontrol ping 2>/dev/null | grep -q UP && break
    sleep 0.2
  done
  scontrol ping 2>/dev/null | grep -q UP || die "slurmctld does not answer (see $LOGDIR/slurmctld.log)"
  if ! pid_alive slurmd; then
    log "starting slurmd"
    slurmd -f "$CONF" || die "slurmd failed to start (see $LOGDIR/slurmd.log)"
  fi
  wait_idle
  log "ready: $(sinfo --noheader -o '%P %D %t %c' | head -n 1)"
}

stop_daemon() { # name
  local f="$RUNDIR/$1.pid" pid
  [ -f "$f" ] || return 0
  pid="$(cat "$f")"
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

cmd_stop() {
  need_root "stop slurm"
  stop_daemon slurmd
  stop_daemon slurmctld
  if [ -f /run/munge/munged.pid ]; then
    local pid
    pid="$(cat /run/munge/munged.pid)"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
  fi
  log "stopped"
}

cmd_status() {
  command -v sinfo >/dev/null || die "slurm is not installed"
  sinfo || die "slurmctld is not reachable"
  case "$(node_state)" in
    idle | mix | alloc) exit 0 ;;
    *) exit 1 ;;
  esac
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
