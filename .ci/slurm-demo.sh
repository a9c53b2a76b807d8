#!/usr/bin/env bash
# Runs the demo cohort on a real single-node SLURM cluster started on this machine and checks
# that every result is byte-identical to a local run.
#
#   .ci/slurm-demo.sh [VENV]        VENV: the virtualenv with twinflow installed
#                                  (argument, else $VENV, else .venv in the repository)
#
# What it does (idempotent; run as root, or with passwordless sudo for the package install):
#   1. installs slurm-wlm and munge (apt) if missing, and twinflow's `slurm` extra
#      (snakemake-executor-plugin-slurm) into VENV if missing;
#   2. starts munged (as the munge user), slurmctld and slurmd on 127.0.0.1 with every
#      config, state, log and pid file under one temporary folder, on free ports, and waits
#      until the node is idle (no systemd, no cgroups: proctrack/linuxproc, task/none);
#   3. runs the demo twice in fresh folders: locally (snakemake --cores 2) and through
#      `--executor slurm --workflow-profile profiles/slurm`;
#   4. compares every file under results/ except logs/, benchmarks/, pipeline_info/ and
#      ro-crate-metadata.json (run-level records) by sha256, and names any difference;
#   5. always stops exactly the daemons it started (by pid) and prints a timing table.
# Exit status is non-zero on any failure.
#
# Environment: SLURM_DEMO_KEEP=1 keeps the temporary folder (logs, both runs) for inspection;
# SLURM_DEMO_TMP=DIR puts it under DIR (default: $TMPDIR or /tmp);
# SLURM_DEMO_TIMEOUT=SECONDS limits each snakemake run (default 1200);
# SLURM_DEMO_PATIENTS=ID,ID restricts both runs to these demo patients (CI uses one of each
# twin model to keep its cost down; unset = the whole demo cohort).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV_ARG="${1:-${VENV:-.venv}}"
case "$VENV_ARG" in
  /*) VENV="$VENV_ARG" ;;
  *) if [ -d "$VENV_ARG" ]; then VENV="$(cd "$VENV_ARG" && pwd)"; else VENV="$REPO/$VENV_ARG"; fi ;;
esac
PY="$VENV/bin/python"
RUN_TIMEOUT="${SLURM_DEMO_TIMEOUT:-1200}"
INIT_SECONDS=2            # --slurm-init-seconds-before-status-checks
MIN_JOB_AGE=300           # see the note at slurm.conf below

say() { printf '[slurm-demo %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { say "FAIL: $*"; exit 1; }

declare -a T_NAMES=() T_SECS=()
T0=$SECONDS
timed() {  # timed LABEL CMD...: runs CMD, records its wall time under LABEL
  local label="$1" t=$SECONDS rc=0
  shift
  "$@" || rc=$?
  T_NAMES+=("$label"); T_SECS+=($((SECONDS - t)))
  return $rc
}
print_timings() {
  printf '\n| step | seconds |\n|---|---:|\n'
  local i
  for i in "${!T_NAMES[@]}"; do printf '| %s | %s |\n' "${T_NAMES[$i]}" "${T_SECS[$i]}"; done
  printf '| total | %s |\n\n' "$((SECONDS - T0))"
}

[ -x "$PY" ] || die "no python in $VENV (create it: python3 -m venv .venv && .venv/bin/pip install -e .)"

# ---------------------------------------------------------------------------- 1. install
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi; }
install_packages() {
  local missing=0 b
  for b in munged slurmctld slurmd sbatch squeue sinfo scontrol; do
    command -v "$b" >/dev/null 2>&1 || [ -x "/usr/sbin/$b" ] || missing=1
  done
  if [ $missing = 1 ]; then
    say "installing slurm-wlm and munge (apt)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      slurm-wlm munge >/dev/null
  fi
  if ! "$PY" -c "import snakemake_executor_plugin_slurm" 2>/dev/null; then
    say "installing twinflow's slurm extra into $VENV (pip install -e '.[slurm]')"
    "$PY" -m pip install -q -e "$REPO[slurm]"
  fi
  "$PY" -c "import twinflow" 2>/dev/null || PYTHONPATH="$REPO" "$PY" -c "import twinflow" \
    || die "twinflow is not importable from $VENV"
}
timed install install_packages
export PATH="/usr/sbin:/sbin:$PATH"

# ---------------------------------------------------------------- 2. cluster in a temp dir
TMPBASE="${SLURM_DEMO_TMP:-${TMPDIR:-/tmp}}"
WORK="$(mktemp -d "$TMPBASE/twinflow-slurm-demo.XXXXXX")"
chmod 755 "$WORK"                      # munged (user munge) must reach its own folder
M="$WORK/munge" S="$WORK/slurm"
mkdir -p "$M" "$S/state" "$S/spool"
declare -A PIDS=()                     # daemon name -> pid we started

stop_daemons() {
  local rc=$?
  set +e
  if [ -n "${PIDS[slurmctld]:-}" ] && [ -f "$S/slurm.conf" ]; then
    # cancel whatever is left of our jobs on our own cluster (our SLURM_CONF) first
    SLURM_CONF="$S/slurm.conf" timeout 10 scancel --full --quiet --user="$(id -un)" 2>/dev/null
  fi
  local name pid i
  for name in slurmd slurmctld munged; do
    pid="${PIDS[$name]:-}"
    [ -n "$pid" ] || continue
    # kill only if that pid is still the program we started
    if [ -r "/proc/$pid/comm" ] && [ "$(cat "/proc/$pid/comm")" = "$name" ]; then
      kill -TERM "$pid" 2>/dev/null
      for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      if kill -0 "$pid" 2>/dev/null; then say "$name ($pid) ignored TERM, sending KILL"; kill -KILL "$pid"; fi
      say "stopped $name (pid $pid)"
    fi
  done
  print_timings
  if [ "${SLURM_DEMO_KEEP:-0}" = 1 ] || [ $rc != 0 ]; then
    say "kept $WORK (logs: $S/*.log, $M/munged.log, runs: $WORK/local $WORK/slurm)"
  else
    rm -rf "$WORK"
  fi
  [ $rc = 0 ] && say "OK: SLURM results are byte-identical to the local run" || say "FAILED (exit $rc)"
  exit $rc
}
trap stop_daemons EXIT
trap 'exit 130' INT TERM

wait_for() {  # wait_for SECONDS DESCRIPTION CMD...
  local limit="$1" what="$2" i
  shift 2
  for i in $(seq $((limit * 5))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  die "timed out after ${limit}s waiting for $what"
}
pid_from() {  # pid_from NAME PIDFILE: record the pid a daemon wrote
  wait_for 20 "$1 pid file" test -s "$2"
  PIDS[$1]="$(tr -dc 0-9 <"$2")"
  say "started $1 (pid ${PIDS[$1]})"
}

start_cluster() {
  # munge: own key, socket, pid, log and seed, running as the munge user
  dd if=/dev/urandom of="$M/munge.key" bs=1024 count=1 status=none
  chown -R munge:munge "$M"; chmod 755 "$M"; chmod 400 "$M/munge.key"   # socket dir: x for all
  runuser -u munge -- munged --socket="$M/munge.socket" --key-file="$M/munge.key" \
    --pid-file="$M/munged.pid" --log-file="$M/munged.log" --seed-file="$M/munged.seed"
  pid_from munged "$M/munged.pid"
  wait_for 20 "munge socket" sh -c "munge -n -S '$M/munge.socket' | unmunge -S '$M/munge.socket'"

  # two free loopback ports, the node's CPUs and memory
  local ports cpus mem_mb
  ports="$("$PY" -c 'import socket
s=[socket.socket() for _ in range(2)]
[x.bind(("127.0.0.1", 0)) for x in s]
print(*[x.getsockname()[1] for x in s])')"
  set -- $ports
  cpus="$(nproc)"
  mem_mb=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
  # MinJobAge: with --slurm-status-command squeue the plugin only sees a finished job while
  # slurmctld still lists it; the plugin's poll interval backs off up to 180 s when nothing
  # finishes, so keep finished jobs listed longer than that (and >= 3 x init seconds, below
  # which the plugin silently falls back to sacct, which has no data without slurmdbd).
  cat >"$S/slurm.conf" <<EOF
ClusterName=twinflowci
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$1
SlurmdPort=$2
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$M/munge.socket
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$S/state
SlurmdSpoolDir=$S/spool
SlurmctldPidFile=$S/slurmctld.pid
SlurmdPidFile=$S/slurmd.pid
SlurmctldLogFile=$S/slurmctld.log
SlurmdLogFile=$S/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
SwitchType=switch/none
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
ReturnToService=2
MinJobAge=$MIN_JOB_AGE
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
Waittime=0
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=ci Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
  export SLURM_CONF="$S/slurm.conf"
  # Inside a job, snakemake-executor-plugin-slurm-jobstep starts `srun` with every SLURM_*
  # variable removed, SLURM_CONF included; srun then finds no config (not in /etc/slurm).
  # A wrapper first in PATH (exported to the jobs) puts SLURM_CONF back for srun alone.
  mkdir -p "$WORK/bin"
  printf '#!/bin/sh\nSLURM_CONF=%q exec %q "$@"\n' "$SLURM_CONF" "$(command -v srun)" >"$WORK/bin/srun"
  chmod 755 "$WORK/bin/srun"
  export PATH="$WORK/bin:$PATH"
  slurmctld -f "$SLURM_CONF"
  pid_from slurmctld "$S/slurmctld.pid"
  wait_for 30 "slurmctld to answer" scontrol ping
  slurmd -f "$SLURM_CONF" -N localhost
  pid_from slurmd "$S/slurmd.pid"
  wait_for 60 "node localhost to be idle" sh -c '[ "$(sinfo -h -n localhost -o %t)" = idle ]'
  say "cluster up: $(sinfo -h -o '%P %D %c cpus %m MB %t')"
  NODE_CPUS=$cpus
}
timed "daemon start" start_cluster

# --------------------------------------------------------------------------- 3. two runs
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
new_workdir() {  # a fresh folder with the demo sheets (optionally a subset) and the repository's config
  mkdir -p "$1"
  cp "$REPO/config/config.yaml" "$1/config.yaml"
  "$PY" -c 'import sys; from pathlib import Path; from twinflow.demo import cohort
d = Path(sys.argv[1]) / "demo"
cohort.write_sheets(d)
keep = [p for p in sys.argv[2].split(",") if p]
if keep:
    for name in ("patients.tsv", "imaging.tsv", "treatments.tsv", "pregnancies.tsv"):
        lines = (d / name).read_text().splitlines(True)
        (d / name).write_text("".join([lines[0]] + [l for l in lines[1:] if l.split("\t", 1)[0] in keep]))
' "$1" "${SLURM_DEMO_PATIENTS:-}"
}
snake() {  # snake WORKDIR LOGNAME ARGS...
  local wd="$1" log="$2"
  shift 2
  (cd "$wd" && timeout "$RUN_TIMEOUT" "$PY" -m snakemake -s "$REPO/Snakefile" -d "$wd" \
      --configfile "$wd/config.yaml" "$@") >"$WORK/$log.log" 2>&1 \
    || { tail -n 30 "$WORK/$log.log" >&2; say "$log run failed (log: $WORK/$log.log)"; return 1; }
}
new_workdir "$WORK/local"
new_workdir "$WORK/slurm"
say "local run"
timed "local run" snake "$WORK/local" local --cores 2 || die "local run failed"
say "SLURM run"
# --cores: one group job may use at most the CPUs of this one node.
timed "slurm run" snake "$WORK/slurm" slurm \
  --executor slurm --workflow-profile "$REPO/profiles/slurm" --cores "$NODE_CPUS" \
  --slurm-status-command squeue --slurm-init-seconds-before-status-checks "$INIT_SECONDS" \
  --slurm-keep-successful-logs || die "SLURM run failed"
say "SLURM jobs per rule/group: $(cd "$WORK/slurm/.snakemake/slurm_logs" 2>/dev/null \
  && for d in *; do printf '%s=%s ' "$d" "$(find "$d" -name '*.log' | wc -l)"; done)"

# -------------------------------------------------------------------------- 4. compare
results_dir() { "$PY" -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["results"].rstrip("/"))' "$1/config.yaml"; }
checksums() {  # sorted "sha256  path" list of every compared file of one run
  local r
  r="$(results_dir "$1")"
  (cd "$1" && find "$r" -type f \
      -not -path "$r/logs/*" -not -path "$r/benchmarks/*" -not -path "$r/pipeline_info/*" \
      -not -name ro-crate-metadata.json -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum)
}
compare() {
  checksums "$WORK/local" >"$WORK/local.sha256"
  checksums "$WORK/slurm" >"$WORK/slurm.sha256"
  local n
  n="$(wc -l <"$WORK/local.sha256")"
  [ "$n" -gt 0 ] || die "the local run produced no results to compare"
  if ! diff -q "$WORK/local.sha256" "$WORK/slurm.sha256" >/dev/null; then
    say "results differ (sha256, local vs slurm):"
    diff "$WORK/local.sha256" "$WORK/slurm.sha256" | sed -n 's/^[<>] [0-9a-f]*  //p' | sort -u >&2
    return 1
  fi
  say "$n result files identical"
}
timed compare compare || die "SLURM results differ from the local run"
