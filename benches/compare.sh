#!/usr/bin/env bash
# Side-by-side throughput: redis-server vs basalt-server, same machine,
# same redis-benchmark arguments, alternating runs (A B A B ...), medians
# and ratios. Not part of `cargo test`.
#
# usage: benches/compare.sh [options] -- [redis-benchmark args]
#   --rounds N          rounds per server (default 5)
#   --pin               pin each server to core 0 and the client to core 1
#   --mode MODE         memory (no persistence, default) | always | everysec
#   --basalt-args "..." extra basalt-server arguments (e.g. "--io-threads 1")
#   --redis-args "..."  extra redis-server arguments
# example (issue 2's per-core figure):
#   benches/compare.sh --pin --basalt-args "--io-threads 1" -- -c 50 -r 100000 -d 64 -t set,get -P 16 -n 2000000
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=5; pin=0; mode=memory; basalt_args=""; redis_args=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --rounds) rounds=$2; shift 2 ;;
        --pin) pin=1; shift ;;
        --mode) mode=$2; shift 2 ;;
        --basalt-args) basalt_args=$2; shift 2 ;;
        --redis-args) redis_args=$2; shift 2 ;;
        --) shift; break ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
bench_args=("$@")
[[ ${#bench_args[@]} -eq 0 ]] && bench_args=(-c 50 -r 100000 -d 64 -t set,get -n 1000000)

cargo build --release -q --bin basalt-server
work=$(mktemp -d)
bport=$((20000 + RANDOM % 10000)); rport=$((bport + 1))
server_pin=(); client_pin=()
if [[ $pin == 1 ]]; then server_pin=(taskset -c 0); client_pin=(taskset -c 1); fi

case "$mode" in
    memory)   b_persist=(--appendonly no); r_persist=(--appendonly no) ;;
    always)   b_persist=(--appendonly yes --appendfsync always); r_persist=(--appendonly yes --appendfsync always) ;;
    everysec) b_persist=(--appendonly yes --appendfsync everysec); r_persist=(--appendonly yes --appendfsync everysec) ;;
    *) echo "unknown mode $mode" >&2; exit 2 ;;
esac

mkdir -p "$work/b" "$work/r"
"${server_pin[@]}" target/release/basalt-server --port "$bport" --dir "$work/b" --save "" "${b_persist[@]}" $basalt_args >"$work/b.log" 2>&1 &
bpid=$!
"${server_pin[@]}" redis-server --port "$rport" --dir "$work/r" --save "" "${r_persist[@]}" $redis_args >"$work/r.log" 2>&1 &
rpid=$!
cleanup() { kill "$bpid" "$rpid" 2>/dev/null || true; wait "$bpid" "$rpid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
for p in "$bport" "$rport"; do
    for _ in $(seq 100); do redis-cli -p "$p" ping >/dev/null 2>&1 && break; sleep 0.1; done
done

run() { # port -> lines "TEST rps p50"
    "${client_pin[@]}" redis-benchmark -p "$1" "${bench_args[@]}" --csv 2>/dev/null |
        tr -d '"' | awk -F, 'NR>1 { gsub(/ /, "_", $1); print $1, $2, $5, $7 }'
}
for i in $(seq "$rounds"); do
    run "$rport" | sed 's/^/redis /' >>"$work/results"
    run "$bport" | sed 's/^/basalt /' >>"$work/results"
    redis-cli -p "$rport" flushall >/dev/null; redis-cli -p "$bport" flushall >/dev/null
done

echo "redis-benchmark ${bench_args[*]}  (mode=$mode, pin=$pin, rounds=$rounds, basalt: $basalt_args)"
printf "%-8s %12s %12s %7s %10s %10s %10s %10s\n" test redis_rps basalt_rps ratio r_p50 b_p50 r_p99 b_p99
median() { sort -n | awk '{a[NR]=$1} END { if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2 }'; }
for t in $(awk '{print $2}' "$work/results" | sort -u); do
    r=$(awk -v t="$t" '$1=="redis" && $2==t {print $3}' "$work/results" | median)
    b=$(awk -v t="$t" '$1=="basalt" && $2==t {print $3}' "$work/results" | median)
    rl=$(awk -v t="$t" '$1=="redis" && $2==t {print $4}' "$work/results" | median)
    bl=$(awk -v t="$t" '$1=="basalt" && $2==t {print $4}' "$work/results" | median)
    r9=$(awk -v t="$t" '$1=="redis" && $2==t {print $5}' "$work/results" | median)
    b9=$(awk -v t="$t" '$1=="basalt" && $2==t {print $5}' "$work/results" | median)
    printf "%-8s %12.0f %12.0f %6.2fx %10s %10s %10s %10s\n" "$t" "$r" "$b" "$(echo "$b / $r" | bc -l)" "$rl" "$bl" "$r9" "$b9"
done
if [[ $mode != memory ]]; then
    echo "basalt log: $(redis-cli -p "$bport" info persistence | grep -E 'aof_fsyncs|aof_records_per_fsync' | tr -d '\r' | tr '\n' ' ')"
fi
