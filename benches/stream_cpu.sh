#!/usr/bin/env bash
# Streams, Basalt vs redis-server: server CPU time (utime+stime ticks from
# /proc, robust on a busy shared machine) and redis-benchmark's ops/s
# (only meaningful on a quiet machine) for
#   XADD s * (50 clients, pipeline 16), XREADGROUP ... COUNT 1 > on a
#   pre-filled stream (each call delivers one entry into the PEL), and
#   XACK of random pending IDs; SET first, as a baseline of per-command
#   server overhead.
# Both servers log with appendfsync everysec.
# usage: benches/stream_cpu.sh [N] [basalt-binary]     (N default 200000)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-200000}
bin=${2:-target/release/basalt-server}
work=$(mktemp -d)
bport=$((26000 + RANDOM % 3000)); rport=$((bport + 1))
trap 'redis-cli -p $bport shutdown nosave >/dev/null 2>&1; redis-cli -p $rport shutdown nosave >/dev/null 2>&1; rm -rf "$work"' EXIT
mkdir -p "$work/b" "$work/r"
"$bin" --port "$bport" --dir "$work/b" --appendonly yes --appendfsync everysec --save "" >"$work/b.log" 2>&1 &
bpid=$!
redis-server --port "$rport" --dir "$work/r" --appendonly yes --appendfsync everysec --save "" >"$work/r.log" 2>&1 &
rpid=$!
for p in $bport $rport; do for _ in $(seq 100); do [[ $(redis-cli -p $p ping 2>/dev/null) == PONG ]] && break; sleep 0.05; done; done
cpu() { awk '{print $14+$15}' /proc/$1/stat; }
python3 - "$n" "$work/fill.resp" <<'PY'
import sys
n, out = int(sys.argv[1]), sys.argv[2]
def enc(args):
    return b"".join([b"*%d\r\n" % len(args)] + [b"$%d\r\n%s\r\n" % (len(a), a) for a in args])
with open(out, "wb") as f:
    for i in range(1, n + 1):
        f.write(enc([b"XADD", b"q", b"%d-0" % i, b"job", b"payload-%d" % i]))
    f.write(enc([b"XGROUP", b"CREATE", b"q", b"g", b"0"]))
PY
echo "test,basalt ticks,redis ticks,redis/basalt,basalt ops/s,redis ops/s"
run() { # name, benchmark args...
    local name=$1; shift
    local args=("$@") tb tr qb qr c0
    c0=$(cpu "$bpid")
    qb=$(redis-benchmark -p "$bport" -q "${args[@]}" 2>/dev/null | tr '\r' '\n' | grep -o '[0-9.]* requests per second' | tail -1 | cut -d' ' -f1)
    sleep 0.3; tb=$(( $(cpu "$bpid") - c0 ))
    c0=$(cpu "$rpid")
    qr=$(redis-benchmark -p "$rport" -q "${args[@]}" 2>/dev/null | tr '\r' '\n' | grep -o '[0-9.]* requests per second' | tail -1 | cut -d' ' -f1)
    sleep 0.3; tr=$(( $(cpu "$rpid") - c0 ))
    echo "$name,$tb,$tr,$(echo "$tr / $tb" | bc -l | cut -c1-4),$qb,$qr"
}
run "SET (baseline) x$n c50 P16" -c 50 -P 16 -n "$n" SET k value-0123456789
run "XADD x$n c50 P16" -c 50 -P 16 -n "$n" XADD s '*' field value-0123456789
for p in $bport $rport; do redis-cli -p $p --pipe <"$work/fill.resp" >/dev/null; done
run "XREADGROUP COUNT 1 x$n c50 P16" -c 50 -P 16 -n "$n" XREADGROUP GROUP g c COUNT 1 STREAMS q '>'
run "XACK random x$n c50 P16" -c 50 -P 16 -n "$n" -r "$n" XACK q g __rand_int__-0
