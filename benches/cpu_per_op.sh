#!/usr/bin/env bash
# Server CPU time per operation (utime+stime from /proc, in clock ticks),
# Basalt vs redis-server: less sensitive than throughput to a busy,
# shared machine. PUBLISH with N subscribers, and 10-command EXECs.
# usage: benches/cpu_per_op.sh [basalt-binary]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/release/basalt-server}
work=$(mktemp -d); trap 'redis-cli -p $bport shutdown nosave >/dev/null 2>&1; redis-cli -p $rport shutdown nosave >/dev/null 2>&1; kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
bport=$((26000 + RANDOM % 3000)); rport=$((bport + 1))
mkdir -p "$work/b" "$work/r"
"$bin" --port "$bport" --dir "$work/b" --appendonly yes --appendfsync everysec --save "" >"$work/b.log" 2>&1 &
(cd "$work/r" && redis-server --port "$rport" --appendonly yes --appendfsync everysec --save "" --dir "$work/r" >"$work/r.log" 2>&1 &)
for p in $bport $rport; do for _ in $(seq 100); do [[ $(redis-cli -p $p ping 2>/dev/null) == PONG ]] && break; sleep 0.05; done; done
bpid=$(pgrep -f -- "--port $bport --dir"); rpid=$(pgrep -f "redis-server.*:$rport")
cpu() { awk '{print $14+$15}' /proc/$1/stat; }
echo "test,basalt ticks,redis ticks,redis/basalt"
for n in 1 10 50; do
  declare -A t=()
  for pp in "$bport $bpid" "$rport $rpid"; do
    set -- $pp
    python3 benches/subscribers.py "$1" "$n" ch >/dev/null & sp=$!; sleep 1
    c0=$(cpu "$2"); redis-benchmark -p "$1" -c 50 -n 500000 -P 16 -q PUBLISH ch hello-message-0123456789 >/dev/null 2>&1; sleep 0.5; c1=$(cpu "$2")
    kill $sp; wait $sp 2>/dev/null || true
    t[$1]=$((c1 - c0))
  done
  echo "PUBLISH x500k N=$n P=16,${t[$bport]},${t[$rport]},$(echo "${t[$rport]} / ${t[$bport]}" | bc -l | cut -c1-4)"
done
declare -A t=()
for pp in "$bport $bpid" "$rport $rpid"; do
  set -- $pp
  c0=$(cpu "$2"); python3 benches/txn_load.py "$1" 20 8 6 > "$work/tx.$1"; c1=$(cpu "$2")
  t[$1]="$((c1 - c0)) $(awk '{print $1}' "$work/tx.$1")"
done
read -r bt bn <<<"${t[$bport]}"; read -r rt rn <<<"${t[$rport]}"
echo "EXEC 10xSET P=8: ticks per 100k txn,$(echo "$bt * 100000 / $bn" | bc -l | cut -c1-6),$(echo "$rt * 100000 / $rn" | bc -l | cut -c1-6),$(echo "($rt / $rn) / ($bt / $bn)" | bc -l | cut -c1-4)"
