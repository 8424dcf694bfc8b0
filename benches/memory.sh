#!/usr/bin/env bash
# Memory side by side: loads the same data into redis-server and
# basalt-server (no persistence) and prints RSS and used_memory.
# Data sets (issue 7): 1M hashes of 10 small fields; 1M sorted sets of 10
# members; (issue 9) one stream of 1M entries (`XADD events * sensor sN
# temp T seq I`). Needs python3 and redis-cli.
#
# usage: benches/memory.sh [N] [SETS]   (N keys / entries per data set,
#        default 1000000; SETS default "hashes zsets streams")
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000000}
sets=${2:-hashes zsets streams}
cargo build --release -q --bin basalt-server
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 - "$n" "$work" "$sets" <<'PY'
import sys
n, work, sets = int(sys.argv[1]), sys.argv[2], sys.argv[3].split()
def enc(args):
    return b"".join([b"*%d\r\n" % len(args)] + [b"$%d\r\n%s\r\n" % (len(a), a) for a in args])
with open(work + "/hashes.resp", "wb") as f:
    for i in range(n if "hashes" in sets else 0):
        a = [b"HSET", b"session:%d" % i]
        for j in range(10):
            a += [b"field%d" % j, b"value%d" % j]
        f.write(enc(a))
with open(work + "/streams.resp", "wb") as f:
    for i in range(n if "streams" in sets else 0):
        f.write(enc([b"XADD", b"events", b"*", b"sensor", b"s%d" % (i % 16),
                     b"temp", b"%d" % (i % 97 - 40), b"seq", b"%d" % i]))
with open(work + "/zsets.resp", "wb") as f:
    for i in range(n if "zsets" in sets else 0):
        a = [b"ZADD", b"idx:%d" % i]
        for j in range(10):
            a += [b"%d" % j, b"member%d" % j]
        f.write(enc(a))
PY
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
for set in $sets; do
    bport=$((20000 + RANDOM % 10000)); rport=$((bport + 1))
    mkdir -p "$work/b" "$work/r"
    target/release/basalt-server --port "$bport" --dir "$work/b" --save "" --appendonly no >/dev/null 2>&1 &
    bpid=$!
    redis-server --port "$rport" --dir "$work/r" --save "" --appendonly no >/dev/null 2>&1 &
    rpid=$!
    for p in "$bport" "$rport"; do
        for _ in $(seq 100); do redis-cli -p "$p" ping >/dev/null 2>&1 && break; sleep 0.1; done
    done
    redis-cli -p "$bport" --pipe <"$work/$set.resp" >/dev/null
    redis-cli -p "$rport" --pipe <"$work/$set.resp" >/dev/null
    sleep 1
    b=$(rss "$bpid"); r=$(rss "$rpid")
    bu=$(redis-cli -p "$bport" info memory | awk -F: '/^used_memory:/ {print $2}' | tr -d '\r')
    ru=$(redis-cli -p "$rport" info memory | awk -F: '/^used_memory:/ {print $2}' | tr -d '\r')
    printf "%-7s %8d keys  RSS basalt %7d KB  redis %7d KB  ratio %.3f   used_memory basalt %d  redis %d\n" \
        "$set" "$n" "$b" "$r" "$(echo "$b / $r" | bc -l)" "$bu" "$ru"
    kill "$bpid" "$rpid"; wait "$bpid" "$rpid" 2>/dev/null || true
    rm -rf "$work/b" "$work/r"
done
