#!/bin/bash
# soak-interrupts.sh: many `kregress run --suite smoke` runs, each ended at
# a random moment in a random way (none, SIGINT or SIGTERM to kregress,
# SIGKILL to kregress, SIGKILL or SIGTERM to QEMU), then checks what each
# left: no process, no scratch directory once the next run swept it, a
# result.json in every run directory that is valid JSON and whose verdict
# and exit code match what was done.
#
# usage: [MAXDELAY=ms] scripts/soak-interrupts.sh [RUNS] [KERNEL]
#   MAXDELAY (default 15000) bounds the random moment; a boot takes 3-10 s
#   under TCG on an idle 2-core machine, more when it is loaded.
#   (from a checkout with bin/kregress and bin/kregress-agent built: make)
# A documented command, not a test: it takes about 10 s a run under TCG.
set -u
RUNS=${1:-50}
MAXDELAY=${MAXDELAY:-15000}
KERNEL=${2:-$(ls /boot/vmlinuz-* | tail -1)}
K=$(pwd)/bin/kregress
WORK=$(mktemp -d /tmp/kregress-soak-XXXXXX)
export TMPDIR=$WORK/tmp
TAG=soak$$  # in the environment of kregress and all it starts, not of this script
mkdir -p "$TMPDIR"
tagged() { grep -l "KREGRESS_SOAK_TAG=$TAG" /proc/[0-9]*/environ 2>/dev/null | cut -d/ -f3 |
	while read -r p; do s=$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null); [ -n "$s" ] && [ "$s" != Z ] && echo "$p"; done; }
qemu_pid() { for p in $(tagged); do tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q '^qemu-system' && echo "$p"; done | head -1; }
bad=0; declare -A count
say() { echo "run $i: $*"; }
for i in $(seq 1 "$RUNS"); do
	actions=(none sigint sigterm sigkill qemu-kill qemu-term)
	act=${actions[$((RANDOM % ${#actions[@]}))]}
	delay=$(((RANDOM * 32768 + RANDOM) % MAXDELAY))  # ms after start
	out=$WORK/out/$i
	mkdir -p "$out"
	KREGRESS_SOAK_TAG=$TAG "$K" run --kernel "$KERNEL" --suite smoke --accel tcg --out "$out" >"$out.stdout" 2>"$out.stderr" &
	kp=$!
	sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"
	done_early=0; kill -0 $kp 2>/dev/null || done_early=1
	case $act in
	sigint) kill -INT $kp 2>/dev/null ;;
	sigterm) kill -TERM $kp 2>/dev/null ;;
	sigkill) kill -KILL $kp 2>/dev/null ;;
	qemu-kill) q=$(qemu_pid); [ -n "$q" ] && kill -KILL "$q" || act="$act(no qemu)" ;;
	qemu-term) q=$(qemu_pid); [ -n "$q" ] && kill -TERM "$q" || act="$act(no qemu)" ;;
	esac
	wait $kp 2>/dev/null; rc=$?
	sleep 3
	left=$(tagged)
	if [ -n "$left" ]; then say "$act after ${delay}ms: processes left: $left"; bad=$((bad + 1)); kill -KILL $left 2>/dev/null; fi
	dir=$(ls -d "$out"/*/ 2>/dev/null | head -1)
	if [ -z "$dir" ]; then say "$act after ${delay}ms: no run directory (exit $rc)"; bad=$((bad + 1)); continue; fi
	verdict=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["status"], "|", r.get("reason",""))' "$dir/result.json" 2>&1) ||
		{ say "$act: result.json: $verdict"; bad=$((bad + 1)); continue; }
	status=${verdict%% |*}; reason=${verdict#*| }
	ok=1
	case $act in
	none*|*"(no qemu)") [ "$status" = pass ] && [ $rc = 0 ] || ok=0 ;;
	sigint|sigterm)
		if [ $done_early = 1 ]; then [ "$status" = pass ] || ok=0
		else [ "$status" = infra ] && [ $rc = 2 ] && [[ "$reason" == *"SIG"*" received"* || "$reason" == *"signal received"* ]] || ok=0; fi ;;
	sigkill)
		if [ $done_early = 1 ]; then [ "$status" = pass ] || ok=0
		else [ "$status" = infra ] && [[ "$reason" == *"did not finish"* ]] || ok=0; fi ;;
	qemu-kill) [ "$status" = infra ] && [ $rc = 2 ] && [[ "$reason" == *"killed by SIGKILL"* ]] || ok=0 ;;
	# QEMU stops cleanly on SIGTERM and says so, unless it is still
	# starting, when it dies of it.
	qemu-term) [ "$status" = infra ] && [ $rc = 2 ] && [[ "$reason" == *"terminating on signal 15"* || "$reason" == *"killed by SIGTERM"* ]] || ok=0 ;;
	esac
	count[$act]=$((${count[$act]:-0} + 1))
	if [ $ok = 0 ]; then say "$act after ${delay}ms: exit $rc, $status: $reason"; bad=$((bad + 1)); fi
done
# One more clean run sweeps the scratch directories of SIGKILLed runs.
"$K" run --kernel "$KERNEL" --suite smoke --accel tcg --out "$WORK/out/final" >/dev/null 2>&1 || { echo "final run failed"; bad=$((bad + 1)); }
scratch=$(ls -d "$TMPDIR"/kregress-vm-* 2>/dev/null)
[ -n "$scratch" ] && { echo "scratch directories left: $scratch"; bad=$((bad + 1)); }
for a in "${!count[@]}"; do echo "  $a: ${count[$a]}"; done
echo "$RUNS runs, $bad problems (work dir $WORK)"
[ $bad = 0 ]
