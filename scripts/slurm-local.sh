#!/usr/bin/env bash
# slurm-local.sh: a one-node Slurm cluster on this machine, for kregress's
# tests and for trying --executor slurm without a real cluster.
#
#   scripts/slurm-local.sh up       install (Debian: slurm-wlm, munge) and start
#   scripts/slurm-local.sh down     stop slurmctld, slurmd and munged
#   scripts/slurm-local.sh status   sinfo
#
# The node is this host under its short hostname, with the CPUs and memory
# slurmd detects; state lives under $KREGRESS_SLURM_DIR (default
# /var/tmp/kregress-slurm). It needs root (the daemons run as root, which is
# fine for a throwaway test cluster, not for a site's). `up` waits until
# sinfo shows the node idle and fails if it does not within a minute.
set -euo pipefail

dir=${KREGRESS_SLURM_DIR:-/var/tmp/kregress-slurm}
conf=$dir/slurm.conf
export SLURM_CONF=$conf

die() { echo "slurm-local: $*" >&2; exit 1; }

install() {
	local missing=()
	for p in slurm-wlm munge; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed' || missing+=("$p")
	done
	if [ ${#missing[@]} -gt 0 ]; then
		echo "slurm-local: installing ${missing[*]}"
		apt-get update -q >/dev/null
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
	fi
}

write_conf() {
	local node cpus mem
	node=$(hostname -s)
	read -r cpus mem < <(slurmd -C | awk '/^NodeName/ { for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } print v["CPUs"], v["RealMemory"] }')
	[ -n "$cpus" ] && [ -n "$mem" ] || die "slurmd -C did not report CPUs and RealMemory"
	mkdir -p "$dir"/{state,spool,log}
	cat >"$conf" <<EOF
# Written by kregress scripts/slurm-local.sh: a one-node test cluster.
ClusterName=kregress
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=16817
SlurmdPort=16818
AuthType=auth/munge
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
MinJobAge=300
DefMemPerCPU=1024
KillWait=5
Waittime=0
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
}

up() {
	install
	command -v slurmctld >/dev/null || die "slurmctld not found after install"
	down quiet
	write_conf
	# munge: a key of our own (the package's may be missing on a fresh
	# machine), the daemon with its socket where the clients look.
	if [ ! -s /etc/munge/munge.key ]; then
		mungekey --create --force >/dev/null 2>&1 || dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
	fi
	chown munge:munge /etc/munge/munge.key 2>/dev/null || true
	chmod 0400 /etc/munge/munge.key
	mkdir -p /run/munge /var/log/munge /var/lib/munge
	chown munge:munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null || true
	if ! munge -n >/dev/null 2>&1; then
		if id munge >/dev/null 2>&1; then
			su -s /bin/sh munge -c /usr/sbin/munged || die "munged did not start"
		else
			/usr/sbin/munged --force || die "munged did not start"
		fi
	fi
	for _ in $(seq 50); do munge -n >/dev/null 2>&1 && break; sleep 0.1; done
	munge -n | unmunge >/dev/null || die "munge does not work"
	slurmctld -f "$conf" || die "slurmctld did not start; see $dir/log/slurmctld.log"
	slurmd -f "$conf" || die "slurmd did not start; see $dir/log/slurmd.log"
	for _ in $(seq 60); do
		state=$(sinfo -h -o '%T' 2>/dev/null | head -n 1)
		case "$state" in
		idle*) echo "slurm-local: up: node $(hostname -s) idle (SLURM_CONF=$conf)"; return 0 ;;
		down*|drain*) scontrol update nodename="$(hostname -s)" state=resume >/dev/null 2>&1 || true ;;
		esac
		sleep 1
	done
	die "the node is not idle after 60 s (sinfo: ${state:-nothing}); see $dir/log/"
}

down() {
	local quiet=${1:-}
	for d in slurmd slurmctld; do
		if [ -s "$dir/$d.pid" ]; then
			kill "$(cat "$dir/$d.pid")" 2>/dev/null || true
		fi
	done
	pkill -x slurmd 2>/dev/null || true
	pkill -x slurmctld 2>/dev/null || true
	for _ in $(seq 50); do pgrep -x slurmctld >/dev/null || pgrep -x slurmd >/dev/null || break; sleep 0.1; done
	pkill -9 -x slurmctld 2>/dev/null || true
	pkill -9 -x slurmd 2>/dev/null || true
	rm -rf "$dir/state"
	[ -n "$quiet" ] || echo "slurm-local: down"
}

case "${1:-}" in
up) up ;;
down) down ;;
status) sinfo ;;
*) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
