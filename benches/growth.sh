#!/usr/bin/env bash
# SET latency while the keyspace grows from empty: every new key can make a
# hash table resize. Redis rehashes incrementally; Basalt does too (since
# the incremental resize in storage/src/dict.rs; before it, a shard's
# table was rehashed in one go, a stall of milliseconds each time).
# Fresh servers each round (no persistence, server pinned to core 0, the
# client to core 1), alternating Basalt and Redis, medians of the rounds:
#   redis-benchmark -t set -c 50 -d 64 -r N -n N
# usage: benches/growth.sh [ROUNDS] [N]        (default 3 3000000)
#   OLD_BIN=path/to/basalt-server  adds a column for another Basalt build
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}; n=${2:-3000000}
cargo build --release -q --bin basalt-server
work=$(mktemp -d)
pid=""
cleanup() { [[ -n $pid ]] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
port=$((22000 + RANDOM % 5000))
one() { # name -> "rps p99 max" for one fresh server
    rm -rf "$work/d"; mkdir -p "$work/d"
    case $1 in
        basalt) taskset -c 0 target/release/basalt-server --port "$port" --dir "$work/d" --appendonly no --save "" >"$work/log" 2>&1 & ;;
        old) taskset -c 0 "$OLD_BIN" --port "$port" --dir "$work/d" --appendonly no --save "" >"$work/log" 2>&1 & ;;
        redis) taskset -c 0 redis-server --port "$port" --dir "$work/d" --appendonly no --save "" >"$work/log" 2>&1 & ;;
    esac
    pid=$!
    for _ in $(seq 100); do [[ $(redis-cli -p "$port" ping 2>/dev/null) == PONG ]] && break; sleep 0.05; done
    taskset -c 1 redis-benchmark -p "$port" -t set -c 50 -d 64 -r "$n" -n "$n" --csv 2>/dev/null |
        tr -d '"' | awk -F, 'NR>1 {print $2, $7, $8}'
    kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
}
names=(basalt redis); [[ -n ${OLD_BIN:-} ]] && names=(basalt old redis)
for r in $(seq "$rounds"); do
    for name in "${names[@]}"; do
        echo "$name $(one "$name")" | tee -a "$work/all" >&2
    done
done
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "server,rps,p99_ms,max_ms (medians of $rounds rounds, $n SETs into an empty server)"
for name in "${names[@]}"; do
    rps=$(awk -v s="$name" '$1==s {print $2}' "$work/all" | median)
    p99=$(awk -v s="$name" '$1==s {print $3}' "$work/all" | median)
    max=$(awk -v s="$name" '$1==s {print $4}' "$work/all" | median)
    echo "$name,$rps,$p99,$max"
done
