#!/usr/bin/env bash
# Every side-by-side benchmark the issues ask for, in one run; prints the
# exact commands and their results. Takes about 15 minutes on 2 cores.
set -uo pipefail
cd "$(dirname "$0")/.."
run() { echo; echo "\$ $*"; "$@" 2>&1 | grep -v '^\s*$' | tail -14; }
echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg)"
# Issue 2: per core (server on core 0, client on core 1), io-threads 1.
run benches/compare.sh --pin --rounds 3 --basalt-args "--io-threads 1" -- -c 50 -r 100000 -d 64 -t set,get -P 16 -n 1000000
run benches/compare.sh --pin --rounds 3 --basalt-args "--io-threads 1" -- -c 50 -r 100000 -d 64 -t set,get -n 200000
# Issue 2: unpinned, default settings (io-threads = cores).
run benches/compare.sh --rounds 3 -- -c 50 -r 100000 -d 64 -t set,get -P 16 -n 1000000
# Issue 3: durable writes, both servers appendfsync always, pinned.
run benches/compare.sh --pin --rounds 3 --mode always --basalt-args "--io-threads 1" -- -c 50 -r 100000 -d 64 -t set,incr -n 200000
run benches/compare.sh --pin --rounds 3 --mode always --basalt-args "--io-threads 1" -- -c 50 -r 100000 -d 64 -t set,incr -P 16 -n 1000000
# Issue 3: Basalt always vs Redis everysec at -P 16.
run benches/compare.sh --pin --rounds 3 --mode always --basalt-args "--io-threads 1" --redis-args "--appendfsync everysec" -- -c 50 -r 100000 -d 64 -t set,incr -P 16 -n 1000000
# Issue 4: forkless snapshot vs fork, 2 M keys x 100 bytes.
run benches/snapshot.sh 2000000 100
# Issue 8: PUBLISH with N subscribers and 10-command EXECs (throughput),
# then server CPU time per operation (steadier on a busy machine).
run benches/txn_pubsub.sh
run benches/cpu_per_op.sh
# Issue 3: log replay speed (2 M SET records, restart).
dir=$(mktemp -d)
target/release/basalt-server --port 0 --dir "$dir" --appendfsync no --save "" >"$dir/log" 2>&1 &
pid=$!; sleep 1
port=$(grep -o 'tcp 127.0.0.1:[0-9]*' "$dir/log" | cut -d: -f2)
redis-benchmark -p "$port" -t set -r 2000000 -n 2000000 -d 64 -P 64 -c 20 -q >/dev/null 2>&1
kill "$pid"; wait "$pid" 2>/dev/null
target/release/basalt-server --port 0 --dir "$dir" --save "" >"$dir/log2" 2>&1 &
pid=$!
for _ in $(seq 600); do grep -q "log replayed" "$dir/log2" && break; sleep 0.1; done
echo; echo "\$ (2 M SET records, restart)"; grep -o 'log replayed.*' "$dir/log2"
kill "$pid"; wait "$pid" 2>/dev/null; rm -rf "$dir"
