#!/usr/bin/env bash
# Side-by-side throughput: redis-server vs basalt-server, same machine,
# same redis-benchmark arguments, alternating runs (A B A B ...), medians
# and ratios. Not part of `cargo test`.
#
# usage: benches/compare.sh [options] -- [redis-benchmark args]
#   --rounds N          rounds per server (default 5)
#   --pin               pin each server to core 0 and the client to core 1
#   --cores S,C         with --pin: the server's core and the client's core
#                       (default 0,1). Check /proc/interrupts first: the
#                       core that takes the disk's interrupts loses time
#                       to every fsync's completion.
#   --mode MODE         memory (no persistence, default) | always | everysec
#   --basalt-args "..." extra basalt-server arguments (e.g. "--io-threads 1")
#   --redis-args "..."  extra redis-server arguments
#   --cpu               also report each server's CPU time (utime+stime,
#                       clock ticks) per test: runs the -t tests one by one.
#                       When both servers outrun the client (redis-benchmark
#                       saturates its core), throughput cannot separate
#                       them; the CPU each needed for the same work can.
#   --client-cpu        also report how busy redis-benchmark kept its own
#                       core: (user+sys CPU) / elapsed, median per server.
#                       Near 100%, the client is the bottleneck and no
#                       server can be measured faster (needs GNU time).
# example (issue 2's per-core figure):
#   benches/compare.sh --pin --basalt-args "--io-threads 1" -- -c 50 -r 100000 -d 64 -t set,get -P 16 -n 2000000
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=5; pin=0; cores=0,1; mode=memory; basalt_args=""; redis_args=""; cpu=0; client_cpu=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --rounds) rounds=$2; shift 2 ;;
        --pin) pin=1; shift ;;
        --cores) cores=$2; shift 2 ;;
        --mode) mode=$2; shift 2 ;;
        --basalt-args) basalt_args=$2; shift 2 ;;
        --redis-args) redis_args=$2; shift 2 ;;
        --cpu) cpu=1; shift ;;
        --client-cpu) client_cpu=1; shift ;;
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
if [[ $pin == 1 ]]; then server_pin=(taskset -c "${cores%%,*}"); client_pin=(taskset -c "${cores##*,}"); fi

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

client_time=()
if [[ $client_cpu == 1 ]]; then
    [[ -x /usr/bin/time ]] || { echo "--client-cpu needs GNU time (/usr/bin/time)" >&2; exit 2; }
fi
bench() { # port args... -> lines "TEST rps p50 p99"
    local port=$1; shift
    if [[ $client_cpu == 1 ]]; then
        # One line per run in client.PORT: the client's CPU share of its run.
        client_time=(/usr/bin/time -a -o "$work/client.$port" -f "%U %S %e")
    fi
    "${client_time[@]}" "${client_pin[@]}" redis-benchmark -p "$port" "$@" --csv 2>/dev/null |
        tr -d '"' | awk -F, 'NR>1 { gsub(/ /, "_", $1); print $1, $2, $5, $7 }'
}
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
run() { # port pid -> lines "TEST rps p50 p99 [ticks]"
    if [[ $cpu == 0 ]]; then
        bench "$1" "${bench_args[@]}"
        return
    fi
    # One redis-benchmark per test, the server's CPU ticks around each.
    local tests="" rest=() i=0
    while (( i < ${#bench_args[@]} )); do
        if [[ ${bench_args[i]} == -t ]]; then tests=${bench_args[i + 1]}; i=$((i + 2)); continue; fi
        rest+=("${bench_args[i]}"); i=$((i + 1))
    done
    [[ -n $tests ]] || { echo "--cpu needs -t" >&2; exit 2; }
    for t in ${tests//,/ }; do
        local c0; c0=$(ticks "$2")
        local out; out=$(bench "$1" "${rest[@]}" -t "$t")
        # A test with a setup step (lrange_100's LPUSH) reports two
        # lines: the ticks cover both and go on the last.
        echo "$out" | awk -v d=$(( $(ticks "$2") - c0 )) '{ l[NR] = $0 } END { for (i = 1; i <= NR; i++) print l[i], (i == NR ? d : "-") }'
    done
}
for i in $(seq "$rounds"); do
    run "$rport" "$rpid" | sed 's/^/redis /' >>"$work/results"
    run "$bport" "$bpid" | sed 's/^/basalt /' >>"$work/results"
    redis-cli -p "$rport" flushall >/dev/null; redis-cli -p "$bport" flushall >/dev/null
done

echo "redis-benchmark ${bench_args[*]}  (mode=$mode, pin=$pin, cores=$cores, rounds=$rounds, basalt: $basalt_args)"
printf "%-8s %12s %12s %7s %10s %10s %10s %10s" test redis_rps basalt_rps ratio r_p50 b_p50 r_p99 b_p99
[[ $cpu == 1 ]] && printf " %8s %8s %9s" r_ticks b_ticks r/b_cpu
echo
median() { sort -n | awk '{a[NR]=$1} END { if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2 }'; }
for t in $(awk '{print $2}' "$work/results" | sort -u); do
    r=$(awk -v t="$t" '$1=="redis" && $2==t {print $3}' "$work/results" | median)
    b=$(awk -v t="$t" '$1=="basalt" && $2==t {print $3}' "$work/results" | median)
    rl=$(awk -v t="$t" '$1=="redis" && $2==t {print $4}' "$work/results" | median)
    bl=$(awk -v t="$t" '$1=="basalt" && $2==t {print $4}' "$work/results" | median)
    r9=$(awk -v t="$t" '$1=="redis" && $2==t {print $5}' "$work/results" | median)
    b9=$(awk -v t="$t" '$1=="basalt" && $2==t {print $5}' "$work/results" | median)
    printf "%-8s %12.0f %12.0f %6.2fx %10s %10s %10s %10s" "$t" "$r" "$b" "$(echo "$b / $r" | bc -l)" "$rl" "$bl" "$r9" "$b9"
    if [[ $cpu == 1 ]]; then
        rc=$(awk -v t="$t" '$1=="redis" && $2==t {print $6}' "$work/results" | median)
        bc_=$(awk -v t="$t" '$1=="basalt" && $2==t {print $6}' "$work/results" | median)
        if [[ $rc =~ ^[0-9.]+$ && $bc_ =~ ^[0-9.]+$ && $bc_ != 0 ]]; then
            printf " %8s %8s %8.2fx" "$rc" "$bc_" "$(echo "$rc / $bc_" | bc -l)"
        else
            printf " %8s %8s %9s" - - -
        fi
    fi
    echo
done
if [[ $client_cpu == 1 ]]; then
    for s in redis:$rport basalt:$bport; do
        echo "client core busy against ${s%%:*}: $(awk '$3 > 0 { printf "%.0f\n", 100 * ($1 + $2) / $3 }' "$work/client.${s##*:}" | median)% (median of $rounds runs)"
    done
fi
if [[ $mode != memory ]]; then
    echo "basalt log: $(redis-cli -p "$bport" info persistence | grep -E 'aof_fsyncs|aof_records_per_fsync' | tr -d '\r' | tr '\n' ' ')"
fi
