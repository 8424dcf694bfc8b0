#!/usr/bin/env bash
# Server CPU, context switches and syscalls per operation, Basalt vs
# redis-server in one run, for the txn_pubsub.sh loads at any pipeline
# depth (CPU ticks are utime+stime from /proc; meaningful on a busy
# machine where throughput is not). Syscall counts need `perf` (tracepoints).
# usage: benches/txn_pubsub_cpu.sh BIN SCENARIO...
#   SCENARIO: pubN:P (PUBLISH with N subscribers, -P P), exec:P (MULTI +
#   10 SET + EXEC, P per round trip), ping:P
#   e.g. benches/txn_pubsub_cpu.sh target/release/basalt-server pub1:1 pub10:1 exec:8
# OPS1 / OPS16 (default 100000 / 400000) set the request count at -P1 / deeper
# pipelines (a tick is 10 ms: use more at -P16 for a usable resolution).
# The subscriber process's own CPU (sub_ticks) is reported too: a server
# that sends more, smaller writes costs its subscribers more wakeups.
set -uo pipefail
cd "$(dirname "$0")/.."
bin=$1; shift
work=$(mktemp -d); trap 'kill $bpid $rpid 2>/dev/null; rm -rf "$work"' EXIT
bport=$((21000 + RANDOM % 5000)); rport=$((bport + 1))
mkdir -p "$work/b" "$work/r"
"$bin" --port "$bport" --dir "$work/b" --appendonly yes --appendfsync everysec --save "" >"$work/b.log" 2>&1 &
bpid=$!
(cd "$work/r" && exec redis-server --port "$rport" --appendonly yes --appendfsync everysec --save "" --dir "$work/r" >"$work/r.log" 2>&1) &
rpid=$!
for p in $bport $rport; do for _ in $(seq 100); do [[ $(redis-cli -p $p ping 2>/dev/null) == PONG ]] && break; sleep 0.05; done; done
ticks() { awk '{print $14+$15}' /proc/$1/stat; }
csw() { cat /proc/$1/task/*/status | awk '/^voluntary_ctxt/{v+=$2} /^nonvoluntary_ctxt/{n+=$2} END{print v+n}'; }
for sc in "$@"; do
  kind=${sc%%:*}; pipe=${sc##*:}
  for port in $bport $rport; do
    pid=$([[ $port == $bport ]] && echo $bpid || echo $rpid)
    sp=""
    if [[ $kind == pub* ]]; then
      n=${kind#pub}
      if [[ $n -gt 0 ]]; then python3 benches/subscribers.py "$port" "$n" ch >/dev/null & sp=$!; sleep 1; fi
    fi
    perf stat -x, -e syscalls:sys_enter_read,syscalls:sys_enter_recvfrom,syscalls:sys_enter_write,syscalls:sys_enter_sendto,syscalls:sys_enter_writev,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_futex -p $pid -o $work/stat 2>/dev/null & pst=$!; sleep 0.3
    if [[ $kind == pub* ]]; then
      ops=$((pipe == 1 ? ${OPS1:-100000} : ${OPS16:-400000}))
      t0=$(ticks $pid); c0=$(csw $pid)
      rps=$(redis-benchmark -p "$port" -c 50 -n $ops --csv -P "$pipe" PUBLISH ch hello-message-0123456789 2>/dev/null | tail -1 | cut -d, -f2 | tr -d '"')
      t1=$(ticks $pid); c1=$(csw $pid)
      st=0; if [[ -n $sp ]]; then st=$(ticks $sp); kill "$sp"; wait "$sp" 2>/dev/null; fi
    elif [[ $kind == ping ]]; then
      ops=$((pipe == 1 ? 100000 : 400000)); t0=$(ticks $pid); c0=$(csw $pid)
      rps=$(redis-benchmark -p "$port" -c 50 -n $ops --csv -P "$pipe" -t ping_mbulk 2>/dev/null | tail -1 | cut -d, -f2 | tr -d '"')
      t1=$(ticks $pid); c1=$(csw $pid)
    else
      t0=$(ticks $pid); c0=$(csw $pid)
      out=$(python3 benches/txn_load.py "$port" 50 "$pipe" 3)
      t1=$(ticks $pid); c1=$(csw $pid)
      ops=$(echo "$out" | awk '{print $1}'); rps=$(echo "$out" | awk '{print $(NF-1)}')
    fi
    kill -INT $pst 2>/dev/null; wait $pst 2>/dev/null; touch $work/stat
    sys=$(awk -F, -v ops=$ops '/sys_enter/{split($3,a,"_enter_"); printf "%s=%.3f ", a[2], $1/ops}' $work/stat)
    name=$([[ $port == $bport ]] && echo basalt || echo redis)
    echo "$sc $name ops=$ops ticks=$((t1-t0)) ticks/100kops=$(echo "($t1-$t0)*100000/$ops" | bc -l | cut -c1-6) csw/op=$(echo "($c1-$c0)/$ops" | bc -l | cut -c1-5) sub_ticks=${st:-0} rps=$rps"; echo "    $sys"
  done
done
kill $bpid $rpid; wait 2>/dev/null
