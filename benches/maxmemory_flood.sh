#!/usr/bin/env bash
# A write flood against `maxmemory` under each eviction policy (issue 10):
# 1M SETs of 1000-byte values with EX (so volatile-* policies have keys to
# evict), 50 clients, pipeline 16 — 10x the limit. Reports the server's
# base RSS, peak RSS (VmHWM), used_memory at the end, evicted keys, and
# whether any write was refused.
#
#   benches/maxmemory_flood.sh [limit] [appendfsync] [policy...]
#   benches/maxmemory_flood.sh 100mb always allkeys-lru volatile-ttl
#
# Needs the release build (cargo build --release) and redis-benchmark.
set -uo pipefail
cd "$(dirname "$0")/.."
LIMIT=${1:-100mb}
FSYNC=${2:-always}
shift 2 2>/dev/null || shift $#
POLICIES=${*:-noeviction allkeys-lru allkeys-lfu allkeys-random volatile-lru volatile-lfu volatile-random volatile-ttl}
BIN=${BIN:-target/release/basalt-server}
PORT=${PORT:-16499}
VAL=$(printf 'x%.0s' $(seq 1 1000))
for P in $POLICIES; do
    D=$(mktemp -d)
    $BIN --port $PORT --dir "$D" --appendfsync "$FSYNC" --maxmemory "$LIMIT" --maxmemory-policy "$P" >"$D/log" 2>&1 &
    PID=$!
    until [[ $(redis-cli -p $PORT ping 2>/dev/null) == PONG ]]; do sleep 0.1; done
    BASE=$(awk '/VmRSS/ {print $2}' /proc/$PID/status)
    START=$(date +%s.%N)
    redis-benchmark -p $PORT -r 100000000 -n 1000000 -P 16 -c 50 \
        set key:__rand_int__ "$VAL" EX 100000 >"$D/bench" 2>&1
    END=$(date +%s.%N)
    HWM=$(awk '/VmHWM/ {print $2}' /proc/$PID/status)
    field() { redis-cli -p $PORT info "$1" | tr -d '\r' | awk -F: -v f="$2" '$1 == f {print $2}'; }
    echo "$P ($LIMIT, appendfsync $FSYNC): base rss $((BASE / 1024)) MB, peak rss $((HWM / 1024)) MB," \
        "used_memory $(($(field memory used_memory) / 1048576)) MB, evicted $(field stats evicted_keys)," \
        "keys $(redis-cli -p $PORT dbsize), OOM replies: $(grep -c OOM "$D/bench")," \
        "$(echo "$END - $START" | bc) s"
    kill $PID
    wait $PID 2>/dev/null
    rm -rf "$D"
done
