#!/usr/bin/env bash
# PUBLISH with N subscribers and EXEC of 10-command transactions, Basalt vs
# redis-server, same machine, one after the other.
#   PUBLISH: redis-benchmark -c 50 -n 200000 [-P 16] PUBLISH ch <26 bytes>
#            with N idle subscribers (benches/subscribers.py) reading it all
#   EXEC:    benches/txn_load.py PORT 50 P 5: 50 connections, each sending
#            MULTI, 10 x SET, EXEC (P transactions per round trip)
# Both servers: appendonly yes, appendfsync everysec, no save points.
# usage: benches/txn_pubsub.sh [basalt-binary]
#   PIN=1: each server on core 0, every client process on core 1 (per-core
#   figures; Basalt then runs one IO thread). ROUNDS=n repeats each line.
set -euo pipefail
spin=(); cpin=(); extra=()
if [[ ${PIN:-0} == 1 ]]; then spin=(taskset -c 0); cpin=(taskset -c 1); extra=(--io-threads 1); fi
rounds=${ROUNDS:-1}
cd "$(dirname "$0")/.."
bin=${1:-target/release/basalt-server}
work=$(mktemp -d); trap 'redis-cli -p $bport shutdown nosave >/dev/null 2>&1; redis-cli -p $rport shutdown nosave >/dev/null 2>&1; kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
bport=$((21000 + RANDOM % 5000)); rport=$((bport + 1))
mkdir -p "$work/b" "$work/r"
"${spin[@]}" "$bin" "${extra[@]}" --port "$bport" --dir "$work/b" --appendonly yes --appendfsync everysec --save "" >"$work/b.log" 2>&1 &
(cd "$work/r" && "${spin[@]}" redis-server --port "$rport" --appendonly yes --appendfsync everysec --save "" --dir "$work/r" >"$work/r.log" 2>&1 &)
for p in $bport $rport; do for _ in $(seq 100); do [[ $(redis-cli -p $p ping 2>/dev/null) == PONG ]] && break; sleep 0.05; done; done
rps() { "${cpin[@]}" redis-benchmark -p "$1" -c 50 -n "$2" --csv "${@:3}" 2>/dev/null | tail -1 | cut -d, -f2 | tr -d '"'; }
echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), load: $(cut -d' ' -f1-3 /proc/loadavg), PIN=${PIN:-0}"
echo "test,basalt,redis,ratio"
for n in 0 1 10 50; do
  for pipe in 1 16; do
   for _ in $(seq "$rounds"); do
    declare -A r=()
    for port in $bport $rport; do
      sp=""
      if [[ $n -gt 0 ]]; then "${cpin[@]}" python3 benches/subscribers.py "$port" "$n" ch >/dev/null & sp=$!; sleep 1; fi
      r[$port]=$(rps "$port" $((pipe == 1 ? 100000 : 400000)) -P "$pipe" PUBLISH ch hello-message-0123456789)
      if [[ -n $sp ]]; then kill "$sp"; wait "$sp" 2>/dev/null || true; fi
    done
    echo "PUBLISH N=$n P=$pipe,${r[$bport]},${r[$rport]},$(echo "${r[$bport]} / ${r[$rport]}" | bc -l | cut -c1-4)"
   done
  done
done
for pipe in 1 8; do
 for _ in $(seq "$rounds"); do
  b=$("${cpin[@]}" python3 benches/txn_load.py "$bport" 50 "$pipe" 5 | awk '{print $(NF-1)}')
  r=$("${cpin[@]}" python3 benches/txn_load.py "$rport" 50 "$pipe" 5 | awk '{print $(NF-1)}')
  echo "EXEC 10xSET P=$pipe (txn/s),$b,$r,$(echo "$b / $r" | bc -l | cut -c1-4)"
 done
done
for port in $bport $rport; do echo "PING_MBULK P=1 $port: $(rps $port 100000 -t ping_mbulk)"; done
